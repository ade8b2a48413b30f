"""Prediction intervals calibrated on the author's cross-validation (docs/intervals.md).

Split-conformal prediction, per gene: on the out-of-fold rows of `evaluate --cv`, the residual of
every row and gene is divided by a scale, and the per-gene quantiles of |residual| / scale make the
half-widths: bounds = prediction -+ scale x quantile. The scale is the ensemble's spread (how far its
reps and entries disagree, `ensemble.Ensemble.spread`) plus beta times the gene's median spread:
beta = 0 follows the spread alone, beta = inf gives every pair the same width per gene (plain
per-gene intervals). Which beta is chosen by the folds themselves: each fold's rows get bounds
calibrated on the other folds' rows, and the beta with the lowest interval score at the 0.9 level
wins (the interval score is the width plus 2 / (1 - level) times any miss: narrow intervals that
still cover). The cross-fitted coverage is what the report states.

A pair's uncertainty score is its expected row RMSE: the row RMS of its spread times the median ratio
of row RMSE to row RMS spread on the out-of-fold rows. It ranks pairs, next to the trivial ranking
by the size of the prediction, which `Coverage` measures too.
"""
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from pertnet import schemas, tablefile
from pertnet.pace import Pace
from pertnet.errors import UserError
from pertnet.files import load_npz, save_npz

LEVELS = np.round(np.arange(50, 100) / 100, 2)   # the levels a calibration keeps: 0.50 ... 0.99
BETAS = (0.0, 0.25, 1.0, np.inf)                 # the scales tried: spread + beta x the gene's median spread
CHOSEN_AT = 0.9                                  # the level whose interval score chooses beta
REPORTED = (0.8, 0.9)                            # the levels the CV report measures


def conformal_quantiles(scores, levels=LEVELS):
    """Per column of scores (rows, genes): at each level q the ceil((n + 1) q)-th smallest of its n values,
    the split-conformal quantile that covers a new row with probability >= q; inf where that exceeds n."""
    ordered = np.sort(scores, axis=0)
    n = len(ordered)
    ranks = np.ceil((n + 1) * np.asarray(levels) - 1e-9).astype(int)
    out = np.full((len(ranks), ordered.shape[1]), np.inf, np.float32)
    within = ranks <= n
    out[within] = ordered[ranks[within] - 1]
    return out


def scale(spread, spread_median, beta):
    """What a gene's residuals are divided by: spread + beta x the gene's median spread (beta inf: 1)."""
    if np.isinf(beta):
        return np.ones_like(spread)
    return spread + np.float32(beta) * spread_median


def _interval_scores(lower, upper, truth, level):
    """Each value's interval score (Gneiting & Raftery): width + 2 / (1 - level) x the distance to a missed truth."""
    penalty = 2 / (1 - level)
    return (upper - lower) + penalty * np.maximum(lower - truth, 0) + penalty * np.maximum(truth - upper, 0)


def interval_score(lower, upper, truth, level):
    """The mean interval score of the values."""
    return float(np.mean(_interval_scores(lower, upper, truth, level)))


class _Assessment:
    """Cross-fitted coverage, width and interval score of each beta at `levels`, summed over blocks of genes:
    each group's rows (a fold's, in every repeat) get bounds calibrated on the other groups' rows."""

    def __init__(self, groups, levels):
        self.groups, self.levels, self.elements = np.asarray(groups), levels, 0
        self.sums = {beta: {q: np.zeros(3) for q in levels} for beta in BETAS}  # covered, width, interval score

    def add(self, residuals, spreads, betas):
        """A block of genes: (rows, genes in the block) of residuals and spreads, assessed for `betas`."""
        self.elements += residuals.size
        for group in np.unique(self.groups):
            held = self.groups == group
            median = np.median(spreads[~held], axis=0)
            for beta in betas:
                quantiles = conformal_quantiles(np.abs(residuals[~held]) / scale(spreads[~held], median, beta),
                                                self.levels)
                half = scale(spreads[held], median, beta)
                for q, quantile in zip(self.levels, quantiles):
                    h = half * quantile
                    self.sums[beta][q] += (np.count_nonzero(np.abs(residuals[held]) <= h), 2 * h.sum(dtype=np.float64),
                                           interval_score(-h, h, residuals[held], q) * h.size)

    def result(self, beta):
        return {str(q): dict(coverage=float(covered / self.elements), mean_width=float(width / self.elements),
                             interval_score=float(score / self.elements))
                for q, (covered, width, score) in self.sums[beta].items()}


class Bounds(NamedTuple):
    """Intervals of a prediction: lower and upper (rows, genes), each row's uncertainty score, the level."""
    lower: np.ndarray
    upper: np.ndarray
    uncertainty: np.ndarray
    level: float

    def columns(self, order):
        """The same with the gene columns picked by index array `order` (each gene's values contiguous)."""
        return self._replace(lower=self.lower.T[order].T, upper=self.upper.T[order].T)


@dataclass
class Calibration:
    """What a stage's cross-validation learnt about its errors: enough to give any pair bounds at any
    of LEVELS, and its uncertainty score. Saved as models/<stage>/calibration.npz (schemas.CALIBRATION)."""
    stage: str
    genes: list
    entries: list             # the entries' hyperparameters as cross-validated (reps, epochs applied)
    beta: float               # the chosen scale (inf: per-gene intervals)
    spread_median: np.ndarray  # (genes,) each gene's median spread on the out-of-fold rows
    quantiles: np.ndarray     # (LEVELS, genes) quantiles of |residual| / scale
    error_per_spread: float   # median row RMSE / row RMS spread: turns a spread into an expected RMSE
    rows: int                 # out-of-fold rows it was made from
    summary: dict             # the cross-fitted comparison of the betas (the CV report's "intervals")

    @property
    def method(self):
        return "per_gene" if np.isinf(self.beta) else "spread"

    @classmethod
    def fit(cls, stage, genes, entries, residuals, spreads, groups, log=lambda line: None, every=30.0):
        """From the out-of-fold rows' residuals (truth - prediction) and spreads (rows, genes: pertnet/tablefile.py
        tables or arrays, read a block of genes at a time, as every gene's quantiles are its own), rows grouped by
        fold (`groups`). A line at least every `every` seconds says how far it is."""
        rows, n_genes = np.shape(residuals)
        levels = sorted({CHOSEN_AT, *REPORTED})
        assessment, candidates = _Assessment(groups, levels), list(BETAS)  # the betas usable in every block so far
        median = np.empty(n_genes, np.float32)
        quantiles = {beta: np.empty((len(LEVELS), n_genes), np.float32) for beta in BETAS}
        row_spread, row_rmse = np.zeros(rows), np.zeros(rows)  # sums of squares over genes, then the row RMS
        pace = Pace(log, every)
        for (columns, residual), (_, spread) in zip(tablefile.gene_blocks(residuals), tablefile.gene_blocks(spreads)):
            median[columns] = np.median(spread, axis=0)
            candidates = [beta for beta in candidates if _usable(beta, spread)]
            for beta in candidates:
                quantiles[beta][:, columns] = conformal_quantiles(
                    np.abs(residual) / scale(spread, median[columns], beta))
            assessment.add(residual, spread, candidates)
            row_spread += np.sum(np.square(spread, dtype=np.float64), axis=1)
            row_rmse += np.sum(np.square(residual, dtype=np.float64), axis=1)
            pace.tick(columns.stop, n_genes, f"[{stage}] calibration: {columns.stop} of {n_genes} genes")
        assessed = {_beta_name(beta): assessment.result(beta) for beta in candidates}
        best = min(candidates, key=lambda b: (assessed[_beta_name(b)][str(CHOSEN_AT)]["interval_score"], -b))
        row_spread, row_rmse = np.sqrt(row_spread / n_genes), np.sqrt(row_rmse / n_genes)
        ratio = float(np.median(row_rmse[row_spread > 0] / row_spread[row_spread > 0])) if (row_spread > 0).any() else 0.0
        why = ("the ensemble has no spread (a single member), so only per-gene intervals" if len(candidates) == 1 else
               f"the lowest cross-fitted interval score at {CHOSEN_AT} of beta {', '.join(map(_beta_name, candidates))}")
        summary = dict(method="per_gene" if np.isinf(best) else "spread", beta=_beta_name(best), chosen_by=why,
                       rows=int(rows), folds=int(len(np.unique(groups))), candidates=assessed)
        return cls(stage, list(genes), [e.as_dict() for e in entries], float(best), median, quantiles[best], ratio,
                   int(rows), summary)

    # ------------------------------------------------------------ using it

    def check(self, stage, path):
        """Refuse (one line) a calibration made for other genes or other entries than `stage`'s."""
        fix = f"rerun `python -m evaluate --stage {stage.name} --cv` with the --reps / --epochs the models were trained with"
        if list(stage.genes) != list(self.genes):
            raise UserError(f"{path}: made for other genes than the models ({schemas.differences(self.genes, stage.genes)}); {fix}")
        trained = [e.as_dict() for e in stage.entries]
        if [_but_n_dim(e) for e in trained] != [_but_n_dim(e) for e in self.entries]:  # n_dim: as the rows allow
            shown = lambda entries: ", ".join(f"{e['id']}: {e['reps']} reps x {e['epochs']} epochs" for e in entries)
            raise UserError(f"{path}: made with other entries than the models' ({shown(self.entries)}; the models: "
                            f"{shown(trained)}, or other hyperparameters); {fix}")

    def max_level(self):
        """The highest level the out-of-fold rows support (finite bounds in every gene)."""
        finite = np.isfinite(self.quantiles).all(axis=1)
        return float(LEVELS[finite].max()) if finite.any() else None

    def half_widths(self, spread, level):
        """(rows, genes) half-widths at `level`, interpolated between the kept LEVELS."""
        position = round((level - LEVELS[0]) * 100, 6)
        low = min(int(np.floor(position)), len(LEVELS) - 2)
        fraction = np.float32(position - low)
        quantile = self.quantiles[low] * (1 - fraction) + self.quantiles[low + 1] * fraction if fraction else self.quantiles[low]
        return scale(spread, self.spread_median, self.beta) * quantile

    def predict(self, stage, inputs, level, source):
        """(prediction, `Bounds`) of a stage's label codes at `level`; a calibration that does not fit the
        stage or the level is refused in one line naming `source`."""
        self.require_fit(stage, level, source)
        values, spread = stage.predict(inputs, with_spread=True)
        return values, self.bounds(values, spread, level)

    def predict_blocks(self, stage, inputs, level, source, log=lambda line: None):
        """`predict` a block of pairs at a time (`Stage.predict_blocks`): yields (rows: a slice, prediction,
        `Bounds` of those rows), so that tens of thousands of pairs are written with their bounds as they come.
        The fit is checked here, before the first block is asked for."""
        self.require_fit(stage, level, source)
        return ((rows, values, self.bounds(values, spread, level))
                for rows, values, spread in stage.predict_blocks(inputs, with_spread=True, log=log))

    def require_fit(self, stage, level, source):
        self.check(stage, source)
        self.require_level(level, source)

    def require_level(self, level, path):
        """Refuse (one line) a level the out-of-fold rows cannot support."""
        supported = self.max_level()
        if supported is None or level > supported + 1e-9:
            raise UserError(f"--interval {level}: {path} holds {self.rows} out-of-fold rows, which support levels up to "
                            f"{supported if supported is not None else 'none'}; ask for a lower level, or calibrate on "
                            "more training rows")

    def bounds(self, prediction, spread, level):
        """`Bounds` of predictions (rows, genes) with their spread: per pair and gene, float32, and each
        pair's uncertainty score (its expected row RMSE)."""
        half = self.half_widths(spread, level)
        uncertainty = self.error_per_spread * np.sqrt(np.mean(np.square(spread, dtype=np.float64), axis=1))
        return Bounds((prediction - half).astype(np.float32), (prediction + half).astype(np.float32), uncertainty, level)

    # ------------------------------------------------------------ on disk

    def save(self, path):
        save_npz(path, stage=np.asarray(self.stage), genes=np.asarray(self.genes, dtype=str),
                 entries=np.asarray(json.dumps(self.entries)), beta=np.float64(self.beta), levels=LEVELS,
                 spread_median=self.spread_median, quantiles=self.quantiles,
                 error_per_spread=np.float64(self.error_per_spread), rows=np.int64(self.rows),
                 summary=np.asarray(json.dumps(self.summary)))
        return path

    @classmethod
    def load(cls, path, stage_name):
        fix = f"run `python -m evaluate --stage {stage_name} --cv` to make it"
        if not path.is_file():
            raise UserError(f"--interval needs a calibration, {path}, and there is none; {fix} (with the --reps / "
                            "--epochs the models were trained with)")
        arrays = load_npz(path, fix, schemas.CALIBRATION)
        if not np.array_equal(arrays["levels"], LEVELS):
            raise UserError(f"{path}: kept at other levels than this version's; {fix}")
        return cls(str(arrays["stage"]), arrays["genes"].tolist(), json.loads(str(arrays["entries"])),
                   float(arrays["beta"]), arrays["spread_median"], arrays["quantiles"],
                   float(arrays["error_per_spread"]), int(arrays["rows"]), json.loads(str(arrays["summary"])))


def _but_n_dim(entry):
    return {key: value for key, value in entry.items() if key != "n_dim"}


def _usable(beta, spreads):
    """Whether every scale of `beta` is positive: beta 0 needs a spread everywhere, a positive beta in each gene."""
    if np.isinf(beta):
        return True
    return bool((spreads > 0).all() if beta == 0 else (np.median(spreads, axis=0) > 0).all())


def _beta_name(beta):
    return "inf" if np.isinf(beta) else f"{beta:g}"


def level_problem(value):
    """Why `value` is not a coverage level the calibration serves ("" where it is one)."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = -1.0
    return "" if LEVELS[0] <= level <= LEVELS[-1] else \
        f"must be a coverage level from {LEVELS[0]} to {LEVELS[-1]}, e.g. 0.9; got {value!r}"


def checked_level(value, name):
    """The coverage level `value` as a float, given as argument `name`; a UserError naming it where it is none."""
    problem = level_problem(value)
    if problem:
        raise UserError(f"{name}: {problem}")
    return float(value)


# ---------------------------------------------------------------- measuring intervals against a truth

def _spearman(a, b):
    return float(pd.Series(a).corr(pd.Series(b), method="spearman"))


class Coverage:
    """How well bounds at nominal `level` hold on a truth of `genes` genes, measured a block of rows at a time
    (`add`): coverage overall, by cell type and by decile of genes (ordered by their mean width), the mean
    width and interval score, and how well the uncertainty score ranks the pairs' row RMSE next to the
    trivial ranking by the row RMS of the prediction (`report`)."""

    def __init__(self, genes, level):
        self.level, self.rows, self.score = level, 0, 0.0
        self.inside, self.width = np.zeros(genes, np.int64), np.zeros(genes)  # per gene, summed over rows
        self.cell_types = {}  # cell type: [values inside, values]
        self.row_rmse, self.size = [], []

    def add(self, lower, upper, truth, prediction, cell_types):
        """A block of rows: their bounds, truth, prediction (rows, genes) and cell types."""
        truth = np.asarray(truth, np.float64)
        inside = (truth >= lower) & (truth <= upper)
        width = np.asarray(upper, np.float64) - lower
        cell_types = np.asarray(cell_types)
        self.rows += len(truth)
        self.inside += inside.sum(axis=0)
        self.width += width.sum(axis=0)
        self.score += float(np.sum(_interval_scores(lower, upper, truth, self.level)))
        for cell_type in set(cell_types):
            counts = self.cell_types.setdefault(cell_type, [0, 0])
            counts[0] += int(inside[cell_types == cell_type].sum())
            counts[1] += int(inside[cell_types == cell_type].size)
        self.row_rmse.append(np.sqrt(np.mean(np.square(truth - prediction), axis=1)))
        self.size.append(np.sqrt(np.mean(np.square(np.asarray(prediction, np.float64)), axis=1)))

    def report(self, uncertainty):
        """The measures of every row added; uncertainty: each row's uncertainty score, in the order added."""
        values = self.rows * len(self.width)
        deciles = np.array_split(np.argsort(self.width / self.rows, kind="stable"), 10)
        row_rmse, size = np.concatenate(self.row_rmse), np.concatenate(self.size)
        return dict(
            level=self.level, coverage=float(self.inside.sum() / values), mean_width=float(self.width.sum() / values),
            interval_score=self.score / values,
            by_cell_type={c: inside / total for c, (inside, total) in sorted(self.cell_types.items())},
            by_gene_decile=[dict(decile=number, genes=int(len(genes)),
                                 mean_width=float(self.width[genes].sum() / (self.rows * len(genes))),
                                 coverage=float(self.inside[genes].sum() / (self.rows * len(genes))))
                            for number, genes in enumerate(deciles, 1) if len(genes)],
            ranking=dict(uncertainty_spearman=_spearman(uncertainty, row_rmse) if np.ptp(uncertainty) > 0 else None,
                         prediction_size_spearman=_spearman(size, row_rmse)))


def format_coverage(report):
    """The coverage report as lines under the score table."""
    ranking = report["ranking"]
    by_cell_type = ", ".join(f"{c} {v:.1%}" for c, v in report["by_cell_type"].items())
    deciles = " ".join(f"{d['coverage']:.0%}" for d in report["by_gene_decile"])
    rank = ranking["uncertainty_spearman"]
    return "\n".join([
        f"  intervals at {report['level']:g}: coverage {report['coverage']:.1%} (nominal {report['level']:.0%}), "
        f"mean width {report['mean_width']:.4f}, interval score {report['interval_score']:.4f}",
        f"  coverage by cell type: {by_cell_type}",
        f"  coverage by gene decile (narrowest to widest intervals): {deciles}",
        f"  ranking the pairs' row RMSE (Spearman): uncertainty score "
        f"{'-' if rank is None else f'{rank:.3f}'}, size of the prediction {ranking['prediction_size_spearman']:.3f}"])


def format_calibration(summary):
    """The CV report's interval lines: each beta's cross-fitted coverage and width, and the one chosen."""
    lines = [f"  intervals (cross-fitted over the {summary['folds']} folds): {summary['method']} "
             f"(beta {summary['beta']}), chosen by {summary['chosen_by']}"]
    for beta, levels in summary["candidates"].items():
        lines.append(f"    beta {beta:>4}: " + "; ".join(
            f"at {q}: coverage {v['coverage']:.1%}, width {v['mean_width']:.3f}, score {v['interval_score']:.3f}"
            for q, v in levels.items()))
    return "\n".join(lines)
