"""The report of an evaluation: the model beside four baselines, every metric of pertnet/metrics.py overall
and by cell type, as a table and as JSON (docs/evaluate.md has the schema). In cross-validation the
overall score is the mean over folds and repeats of each fold's mean over its rows."""
import json

import numpy as np
import pandas as pd

from pertnet import intervals, metrics, schemas
from pertnet.errors import UserError
from pertnet.files import write_text
from pertnet.pace import Pace


class Baselines:
    """The baselines of training rows (`pairs`, their canonical pairs; `blocks`, their values as (genes: a
    slice, values) blocks of `genes`, as `tablefile.gene_blocks` reads a table) for `pairs_to_predict` (whose
    cell types and compounds must occur in those rows; `source` names them): the mean per gene of the rows of
    each of their compounds and cell types, and of all rows, held for those groups only; `predict` gives them
    to any of those pairs. log: a line every 30 s while the blocks are read."""

    def __init__(self, pairs, blocks, genes, pairs_to_predict, source, log=lambda line: None):
        for column in schemas.PAIR:
            unknown = sorted(set(pairs_to_predict[column]) - set(pairs[column]))
            if unknown:
                raise UserError(f"{source}: no training rows for {column} {unknown[:5]}, so the baselines cannot "
                                "predict their pairs; score pairs whose cell type and compound occur in training")
        keys = {column: pairs[column].to_numpy() if column != "all" else np.zeros(len(pairs), int)
                for _, column in metrics.BASELINES.values() if column is not None}
        self.groups = {column: pd.Index(sorted(set(pairs_to_predict[column])) if column != "all" else [0])
                       for column in keys}  # only the groups of the pairs to predict are kept
        self.means = {column: np.empty((len(self.groups[column]), len(genes)), np.float32) for column in keys}
        pace = Pace(log)
        for columns, values in blocks:
            for column, key in keys.items():  # pandas' mean per group and gene, as over the whole table
                means = pd.DataFrame(values).groupby(key).mean()
                self.means[column][:, columns] = means.loc[self.groups[column]].to_numpy(np.float32)
            pace.tick(columns.stop, len(genes), f"baselines: {columns.stop} of {len(genes)} genes read")

    def predict(self, pairs):
        """Each baseline's prediction of `pairs`: {key: (pairs, genes) float32}."""
        out = {}
        for key, (_, column) in metrics.BASELINES.items():
            if column is None:
                out[key] = np.zeros((len(pairs), self.means["all"].shape[1]), np.float32)
            else:
                group = self.groups[column].get_indexer(np.zeros(len(pairs), int) if column == "all" else pairs[column])
                out[key] = self.means[column][group]
        return out


def label(key, report):
    return report["model_name"] if key == "model" else metrics.BASELINES[key][0]


def _mean_over_groups(row_values, groups):
    """Per metric: the mean over groups of each group's mean over its rows."""
    names = np.unique(groups)
    return {metric: float(np.mean([values[groups == g].mean() for g in names]))
            for metric, values in row_values.items()}


def report_of_rows(model_name, rows, genes, cell_types, groups=None, **context):
    """The report of per-row scores ({"model" or baseline key: {metric: (rows,)}}, `metrics.row_scores`) of
    rows across `genes` genes, grouped (folds) where `groups` is given."""
    cell_types = np.asarray(cell_types)
    groups = np.zeros(len(cell_types)) if groups is None else np.asarray(groups)
    scores = {}
    for key, row_values in rows.items():
        by_cell_type = {cell_type: _mean_over_groups({m: v[cell_types == cell_type] for m, v in row_values.items()},
                                                     groups[cell_types == cell_type])
                        for cell_type in sorted(set(cell_types))}
        overall = _mean_over_groups(row_values, groups)
        scores[key] = dict(overall=overall, by_cell_type=by_cell_type,
                           benchmark={metrics.BENCHMARK_IDS[m]: value for m, value in overall.items()})
    report = dict(context, model_name=model_name, rows=int(len(cell_types)), genes=int(genes),
                  metrics=list(metrics.METRICS), benchmark_metric_ids=metrics.BENCHMARK_IDS, scores=scores,
                  best_baseline=None, improvement=None)
    baseline_keys = [key for key in scores if key != "model"]
    if baseline_keys:
        best = min(baseline_keys, key=lambda k: scores[k]["overall"]["mrrmse"])
        model, reference = scores["model"]["overall"]["mrrmse"], scores[best]["overall"]["mrrmse"]
        report.update(best_baseline=best, improvement=dict(
            mrrmse=reference - model, percent=100 * (reference - model) / reference if reference else 0.0))
    return report


def worst_rows(row_rmse, pairs, count=6):
    """(row, "compound / cell type") of the `count` rows of highest RMSE, each pair once (cross-validation
    repeats pairs): the rows a report's plot shows the errors of."""
    chosen, seen = [], set()
    for row in np.argsort(-np.asarray(row_rmse), kind="stable"):
        name = f"{pairs['sm_name'].iat[row]} / {pairs['cell_type'].iat[row]}"
        if name not in seen:
            seen.add(name)
            chosen.append((row, name))
        if len(chosen) == count:
            break
    return chosen


def format_report(report):
    """The report as the table printed on stdout."""
    scores, names = report["scores"], {key: label(key, report) for key in report["scores"]}
    width = max(len(n) for n in names.values()) + 2
    lines = [f"\n{report['title']}", f"  {'':<{width}}" + "".join(f"{m:>10}" for m in metrics.METRICS)]
    for key, name in names.items():
        lines.append(f"  {name:<{width}}" + "".join(f"{scores[key]['overall'][m]:>10.4f}" for m in metrics.METRICS))
    if report["best_baseline"]:
        gain = report["improvement"]
        lines.append(f"  {report['model_name']} improves MRRMSE by {gain['mrrmse']:.4f} ({gain['percent']:.1f}%) "
                     f"on the best {names[report['best_baseline']]}")
    if "intervals" in report:
        lines.append(intervals.format_calibration(report["intervals"]))
    if report.get("coverage"):
        lines.append(intervals.format_coverage(report["coverage"]))
    cell_types = list(scores["model"]["by_cell_type"])
    if len(cell_types) > 1:
        short = {key: ("model" if key == "model" else key) for key in scores}
        lines.append(f"  MRRMSE by cell type:\n  {'':<20}" + "".join(f"{short[k]:>16}" for k in scores))
        for cell_type in cell_types:
            lines.append(f"  {cell_type:<20}" + "".join(
                f"{scores[k]['by_cell_type'][cell_type]['mrrmse']:>16.4f}" for k in scores))
    return "\n".join(lines)


def write_json(path, report):
    write_text(path, json.dumps(report, indent=1) + "\n")


