"""Cross-validation of a stage on its training data, with folds from the data's own design
(pertnet/folds.py): what `evaluate --cv` reports and calibrates intervals with, what `tune` minimises,
and `pertnet.cross_validate` in Python (docs/method.md, section 7).

Each fold is a `PertNet` estimator fitted on its training rows (a view of the training table, never a
copy); the folds of a group (as many training rows and labels) fit side by side, entry by entry, each
entry's outputs for the held-out rows kept on disk as the next one trains. The held-out rows are then
ensembled, scored and written for the calibration a block at a time, so that memory holds a block, not
the table. Tuning keeps each entry's out-of-fold predictions in a cache named by a digest of
everything that decides them (`CrossValidation.cache_path`).
"""
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from pertnet import (bundle, cluster, data, ensemble, intervals, memory, metrics, outputs, report as reports, schemas,
                     tablefile)
from pertnet.entries import departure
from pertnet.pace import Pace
from pertnet.estimator import PertNet, fit_side_by_side
from pertnet.files import load_npz, nearest_existing, require_writable, save_npz
from pertnet.folds import REPEATS, Fold, design_scheme, fold_groups, folds
from pertnet.stage import encode_rows

CACHED = ("entries", "variances", "truth", "clip_low", "clip_high")  # per fold, in an out-of-fold cache
ROWS_AT_ONCE = 128  # held-out rows ensembled and scored at a time: each of their float64 arrays 19 MB at 18,211 genes


def _once(log):
    """`log`, but each distinct line only the first time."""
    said = set()

    def log_once(line):
        if line not in said:
            said.add(line)
            log(line)
    return log_once


@dataclass
class HeldOut:
    """A block of a fold's held-out rows, as its model predicts them."""
    rows: np.ndarray              # their indices into the training table
    prediction: np.ndarray        # the stage's prediction (rows, genes)
    spread: np.ndarray            # the ensemble's spread over reps and entries (`ensemble.Ensemble.spread`)
    truth: np.ndarray             # their true values, float64
    entry_predictions: list       # each entry's prediction, where asked for (weight tuning)
    entry_variances: list         # and each entry's variance over its reps


@dataclass
class FoldResult:
    fold: Fold
    blocks: Iterable              # its held-out rows, `HeldOut` blocks of at most ROWS_AT_ONCE rows, to read once
    clip_low: np.ndarray          # the fold's clip bounds (its training rows' per-gene min / max)
    clip_high: np.ndarray


class CrossValidation:
    """The training rows, genes and pseudolabels of a stage's CV, and its folds; a context manager, whose
    work folder (the table read from a file, each entry's held-out outputs, the calibration's residuals)
    goes at its end.

    pairs: the training rows' validated canonical pairs; table: their values (rows, genes), a
    pertnet/tablefile.py table or an array, read by blocks; id_map: the pairs to predict, whose design sets
    the folds; pseudolabels: rows every fold trains on (stage_2's: (pairs, values: a table or an array), or
    None); source: the training data's name in messages; work_parent: where the work folder goes (default:
    the system's temporary folder). `from_files` reads them as the commands do."""

    def __init__(self, pairs, table, genes, id_map, pseudolabels, stage_name, seed, source, log=print,
                 work_parent=None):
        self.pairs, self.table, self.genes = pairs.reset_index(drop=True), table, list(genes)
        self.pseudolabels, self.stage_name, self.source = pseudolabels, stage_name, source
        self.scheme = design_scheme(self.pairs, id_map, source)
        self.folds = folds(self.scheme, seed)
        self._work = tempfile.TemporaryDirectory(prefix=".pertnet-cv-", dir=work_parent)
        self.work = Path(self._work.name)
        log(f"[cv] {len(self.scheme.folds)} folds x {REPEATS} repeats, scheme {self.scheme.name}: {self.scheme.reason}")
        for note in self.scheme.notes:
            log(f"[cv] note: {note}")

    def __enter__(self):
        return self

    def __exit__(self, *error):
        self._work.cleanup()

    @classmethod
    def from_files(cls, options, log=print, work_parent=None):
        """The CV of the stage's files in options.data_dir (and stage_2's stage_1 submission): the training
        values read by blocks of genes into a table in its work folder, under `work_parent`."""
        data_dir = Path(options.data_dir)
        train_path = data.training_file(data_dir, options.train_file)
        data.require_inputs(data_dir, (data.ID_MAP_FILE,) if options.train_file
                            else (train_path.name, data.ID_MAP_FILE))
        pairs, genes, blocks, _ = data.training_values(train_path, options.label_columns(), options.layer)
        id_map = data.read_id_map(data_dir / data.ID_MAP_FILE, options.label_columns())
        outputs.pseudolabel_source(options.stage, options.submissions_dir)  # there, before the work folder is made
        cv = cls(pairs, None, genes, id_map, None, options.stage, options.seed, train_path, log,
                 None if work_parent is None else nearest_existing(work_parent))  # nothing created but the work folder
        try:
            cv.pseudolabels = outputs.pseudolabels(options.stage, options.submissions_dir, id_map, genes, cv.work, log)
            with tablefile.TableWriter(cv.work / "table.npy", (len(pairs), len(genes)), log) as writer:
                for columns, values in blocks:
                    writer.write(slice(0, len(pairs)), columns, values)
        except BaseException:
            cv.__exit__()
            raise
        cv.table = tablefile.TableFile(cv.work / "table.npy")
        return cv

    @property
    def fold_names(self):
        return [name for name, _ in self.scheme.folds]

    def n_dim_limit(self):
        """The most SVD components every fold's training targets allow (rows x genes: their rank at most)."""
        return min(min(int((~fold.held_out).sum()) + self.pseudolabel_rows, len(self.genes)) for fold in self.folds)

    @property
    def pseudolabel_rows(self):
        return 0 if self.pseudolabels is None else len(self.pseudolabels[0])

    @cached_property
    def data_digest(self):
        """A digest of the data this CV scores on: the training rows (labels and values), the pseudolabel rows,
        and each fold's name and held-out rows (what the design of the pairs to predict made of them). Two CVs
        with the same digest hold out the same rows of the same data."""
        digest = hashlib.sha256(json.dumps([(name, np.flatnonzero(held_out).tolist())
                                            for name, held_out in self.scheme.folds]).encode())
        for _, values in tablefile.row_windows(self.table):  # the bytes of data.update_digest's frame, row by row
            digest.update(np.ascontiguousarray(values).data)
        digest.update("\n".join(self.pairs["cell_type"] + "/" + self.pairs["sm_name"]).encode())
        if self.pseudolabel_rows:
            digest.update("\n".join(self.pseudolabels[0]["cell_type"] + "/" + self.pseudolabels[0]["sm_name"]).encode())
            tablefile.update_digest(digest, self.pseudolabels[1])
        return digest.hexdigest()

    def describe(self):
        """The data in one phrase, for the lines that say which data a study or cache belongs to."""
        pseudolabels = f" and {self.pseudolabel_rows} pseudolabel rows" if self.pseudolabel_rows else ""
        return (f"data {self.data_digest[:8]} ({self.source}: {len(self.pairs)} rows x {len(self.genes)} genes"
                f"{pseudolabels}; {len(self.scheme.folds)} folds, scheme {self.scheme.name})")

    def cache_path(self, entries, folder):
        """Where the out-of-fold predictions of this CV with `entries` are cached in `folder`: named by a
        digest of the stage, the folds' seeds, the entries and `data_digest` (any change, another file)."""
        digest = hashlib.sha256(json.dumps(["with variances", self.stage_name, [f.seed for f in self.folds],
                                            [e.as_dict() for e in entries], self.data_digest]).encode())
        return Path(folder) / f"oof-{self.stage_name}-{digest.hexdigest()[:16]}.npz"

    def cached(self, entries, folder):
        """The out-of-fold predictions cached in `folder` (see `out_of_fold`), or None where there are none."""
        path = self.cache_path(entries, folder)
        if not path.is_file():
            return None
        arrays = load_npz(path, f"delete {path}: it is recomputed")
        return [{key: arrays[f"{number}_{key}"] for key in CACHED} for number in range(len(self.folds))]

    def out_of_fold(self, entries, folder, log=print, executor=None):
        """Per fold: each entry's prediction of the held-out rows and its variance over reps, their truth and
        the fold's clip bounds; computed once per data, seed and entries, and cached in `folder` (tuning's,
        where `python -m evaluate --cv` finds them too). Weight tuning combines them whole: entries x
        out-of-fold rows x genes in memory."""
        path = self.cache_path(entries, folder)
        folds = self.cached(entries, folder)
        if folds is not None:
            log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from {path}")
            return folds
        log(f"[cv] out-of-fold predictions of {len(entries)} entries, trained once")
        folds = {}
        for result in self.results(entries, log, keep_entry_predictions=True, executor=executor):
            blocks = list(result.blocks)
            folds[result.fold.repeat, result.fold.number] = dict(
                entries=np.concatenate([np.stack(b.entry_predictions) for b in blocks], axis=1),
                variances=np.concatenate([np.stack(b.entry_variances) for b in blocks], axis=1),
                truth=np.concatenate([b.truth for b in blocks]), clip_low=result.clip_low, clip_high=result.clip_high)
        folds = [folds[key] for key in sorted(folds)]
        save_npz(path, **{f"{number}_{key}": value for number, fold in enumerate(folds) for key, value in fold.items()})
        log(f"[cv] out-of-fold predictions -> {path}")
        return folds

    def cached_results(self, entries, cached):
        """The `FoldResult`s of out-of-fold entry predictions cached by tuning (pertnet/tuning.py), ensembled
        as `results` ensembles them: the same numbers, without training."""
        for fold, arrays in zip(self.folds, cached):
            mean = ensemble.Ensemble(arrays["clip_low"], arrays["clip_high"])
            for entry, prediction, variance in zip(entries, arrays["entries"], arrays["variances"]):
                mean.add(prediction, entry.weight, variance)
            block = HeldOut(np.flatnonzero(fold.held_out), mean.result(), mean.spread(), arrays["truth"],
                            list(arrays["entries"]), list(arrays["variances"]))
            yield FoldResult(fold, [block], arrays["clip_low"], arrays["clip_high"])

    def results(self, entries, log=print, keep_entry_predictions=False, executor=None):
        """Yield a `FoldResult` per fold, as its group of folds finishes: each fold is a `PertNet` estimator,
        each entry is fitted once per group, the group's folds side by side, and its reps' outputs for the
        held-out rows are kept in the work folder; then, a block of held-out rows at a time, the entries'
        predictions make the stage's prediction as `Stage.predict` ensembles them. Read each result's blocks
        before asking for the next result. executor: a Dask cluster's (pertnet/cluster.py): a group's
        entries are then tasks, all sent at once, and taken in the entries' order, so the sums are the
        serial run's."""
        from pertnet import training  # TensorFlow loads only where something trains

        groups = fold_groups(self.folds, self.pairs, None if self.pseudolabels is None else self.pseudolabels[0])
        flops = [{e.id: training.training_flops(e, group.rows) * len(group.folds) for e in entries} for group in groups]
        progress = training.Progress(self.stage_name, sum(sum(f.values()) for f in flops), log)
        log_once = _once(log)  # the folds of a group depart alike (n_dim): said once
        for left, group, group_flops in zip(range(len(groups), 0, -1), groups, flops):
            log(f"[cv] {len(group.folds)} folds side by side, {group.rows} training rows each: "
                f"{', '.join(f'{fold.name} (repeat {fold.repeat + 1})' for fold in group.folds)}")
            models = [PertNet(self.stage_name, entries=entries, seed=fold.seed, verbose=log_once)
                      for fold in group.folds]
            training_sets = [encode_rows(self.pairs, self.genes, self.table, np.flatnonzero(~fold.held_out), model.seed,
                                         self.pseudolabels, model.labels().as_json())
                             for model, fold in zip(models, group.folds)]
            for model, training_set in zip(models, training_sets):
                model.start(training_set)
                memory.give_back()  # its basis's and encoding's blocks: what the folds side by side are measured against
            inputs = [model.encode_pairs(self.pairs[fold.held_out], source=f"{fold.label} held-out rows")
                      for fold, model in zip(group.folds, models)]
            group_entries = models[0].stage_.entries  # as the data allows them (n_dim): the same in every fold
            sent = {entry.id: fit_side_by_side(models, training_sets, entry, share=1 / left, executor=executor)
                    for entry in group_entries} if executor is not None else {}
            for entry in group_entries:
                label = f"[cv] entry {entry.id} ({len(group.folds)} folds x {entry.reps} reps)"
                if not sent:
                    fit_side_by_side(models, training_sets, entry,
                                     progress.epoch_callback(label, entry, group_flops[entry.id]), share=1 / left)
                else:
                    try:
                        sent[entry.id].wait()
                    except BaseException:  # a stop or an error: the group's other tasks are not wanted any more
                        for work in sent.values():
                            work.cancel()
                        raise
                    log(f"{label}: trained on the cluster, about {progress.eta(group_flops[entry.id])} left")
                progress.done += group_flops[entry.id]
                for fold, model, x in zip(group.folds, models, inputs):  # its weights go, its outputs stay on disk
                    np.save(self._components_path(fold, entry), model.entry_components(entry, x))
            for fold, model in zip(group.folds, models):
                model.stage_.encoded_targets = None  # trained: what is left to hold is the codec
                yield FoldResult(fold, self._held_out(fold, model.stage_, keep_entry_predictions),
                                 model.stage_.clip_low, model.stage_.clip_high)

    def _components_path(self, fold, entry):
        return self.work / f"components-{fold.repeat}-{fold.number}-{entry.id}.npy"

    def _held_out(self, fold, stage, keep_entry_predictions):
        """The fold's `HeldOut` blocks: each entry's kept outputs for a block of rows decoded and ensembled."""
        held = np.flatnonzero(fold.held_out)
        for start in range(0, len(held), ROWS_AT_ONCE):
            block = slice(start, start + ROWS_AT_ONCE)  # a multiple of decoded_median's blocks: the same floats
            mean, kept = stage.ensemble(), ([], [])
            for entry in stage.entries:
                components = np.array(np.load(self._components_path(fold, entry), mmap_mode="r")[:, block])
                prediction, variance = stage.decoded(entry, components, with_variance=True)
                mean.add(prediction, entry.weight, variance)
                if keep_entry_predictions:
                    kept[0].append(prediction)
                    kept[1].append(variance)
            yield HeldOut(held[block], mean.result(), mean.spread(),
                          tablefile.read_rows(self.table, held[block]).astype(np.float64), *kept)


def cross_validate(options, tuning_dir=None, log=print):
    """The cross-validation of the stage's files (folds from the data's design), each
    fold fitted in memory with the estimator `train` and `predict` use, its held-out rows scored beside
    the baselines; what it learnt about its errors saved as the stage's calibration (pertnet/intervals.py),
    which `predict --interval` reads. Out-of-fold predictions tuning cached in `tuning_dir` are reused.
    Its work folder goes under --models-dir."""
    started = time.perf_counter()
    path = bundle.calibration_path(options.models_dir, options.stage)
    require_writable(path.parent, "--models-dir")  # before the training, not after
    cluster.require_reachable(options.cluster)
    with CrossValidation.from_files(options, log, options.models_dir) as cv:
        entries = options.entries()
        cached = cv.cached(entries, tuning_dir) if tuning_dir is not None else None
        if cached is not None:
            log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from "
                f"{cv.cache_path(entries, tuning_dir)}, made for the same entries, seeds and {cv.describe()}")
        trains = cached is None  # a cache read trains nothing: no cluster
        with cluster.executor(options.workers if trains else None, options.cluster if trains else None, log) as executor:
            report, details, calibration = cv_report(cv, entries, options.reps, options.epochs, log, started, cached,
                                                     executor)
    log(f"calibration -> {calibration.save(path)}")
    return report, details


class CrossValidationResult(NamedTuple):
    """`pertnet.cross_validate`'s result: the report `python -m evaluate --cv --json` writes, and every
    held-out row's out-of-fold prediction (repeat, fold, cell_type, sm_name, then the genes)."""
    report: dict
    out_of_fold: pd.DataFrame


def cross_validate_model(model, data_, pairs):
    """The cross-validation of `model` (its stage, entries, reps, epochs, seed; fitted or not) on `data_`, with
    folds from the design of `pairs` (the pairs to predict): a `CrossValidationResult`; its
    report["scores"]["model"]["overall"]["mrrmse"] is the CV score. What it learnt about the errors becomes
    `model.calibration_`, which `model.predict(..., interval=q)` uses once the model is fitted on the same
    data (a `fit` on other data drops it, saying so)."""
    train = data.training_data(data_, model.layer, model.labels())[0]
    pseudolabels = model.pseudolabels(train, pairs)
    pairs = data.pairs_frame(pairs, model.labels())
    genes = schemas.gene_columns(train.columns)
    with CrossValidation(train[schemas.PAIR], train[genes].to_numpy(np.float32), genes, pairs, pseudolabels,
                         model.stage, model.seed, "the training data", model.log) as cv:
        report, details, model.calibration_ = cv_report(cv, model.stage_entries(), model.reps, model.epochs,
                                                        model.log, keep_predictions=True)
    model.calibrated_on_ = model.data_digest(train)
    out_of_fold = pd.concat([details["pairs"].assign(repeat=details["repeat"], fold=details["fold"]),
                             pd.DataFrame(details["prediction"], columns=genes)], axis=1)
    return CrossValidationResult(report, out_of_fold[["repeat", "fold", *schemas.PAIR, *genes]])


@dataclass
class FoldScores:
    """A fold's held-out rows scored: their indices into the training table, where their residuals went
    in the calibration's tables, every metric per row of the model and the baselines, and the model's
    prediction where it is kept."""
    fold: Fold
    rows: np.ndarray
    written: np.ndarray
    scores: dict
    prediction: np.ndarray = None


def score_folds(cv, results, residuals, spreads, log=print, keep_predictions=False, every=30.0):
    """Score each fold's held-out rows (`FoldResult`s, in the order they come) beside the baselines fitted on
    its training rows, a block at a time, writing each row's residual and spread into the calibration's
    tables (pertnet/tablefile.py writers): the `FoldScores`, in the order of the folds."""
    scored, written, pace = [], 0, Pace(log, every)
    total = sum(int(fold.held_out.sum()) for fold in cv.folds)
    for result in results:
        fold = result.fold
        training_rows = np.flatnonzero(~fold.held_out)
        baselines = reports.Baselines(cv.pairs.iloc[training_rows],
                                      tablefile.gene_blocks(tablefile.Rows(cv.table, training_rows)), cv.genes,
                                      cv.pairs[fold.held_out], cv.source)
        parts = []
        for block in result.blocks:
            pairs = cv.pairs.iloc[block.rows]
            place = slice(written, written + len(block.rows))
            residuals.write(place, slice(None), (block.truth - block.prediction).astype(np.float32))
            spreads.write(place, slice(None), block.spread)
            parts.append((block.rows, np.arange(place.start, place.stop),
                          metrics.row_scores({"model": block.prediction, **baselines.predict(pairs)}, block.truth),
                          block.prediction if keep_predictions else None))
            written = place.stop
            pace.tick(written, total, f"[cv] scored {written} of {total} held-out rows")
        rows, places, scores, predictions = zip(*parts)
        scores = metrics.joined(scores)
        scored.append(FoldScores(fold, np.concatenate(rows), np.concatenate(places), scores,
                                 np.concatenate(predictions) if keep_predictions else None))
        del baselines  # before the next fold's
        means = {key: float(np.mean(values["mrrmse"])) for key, values in scores.items()}
        log(f"{fold.label} {len(scored[-1].rows)} held-out rows: MRRMSE {means.pop('model'):.4f}; baselines " +
            ", ".join(f"{key} {value:.4f}" for key, value in means.items()))
    return sorted(scored, key=lambda s: (s.fold.repeat, s.fold.number))


def cv_report(cv, entries, reps=None, epochs=None, log=print, started=None, cached=None, executor=None,
              keep_predictions=False):
    """(report, details, calibration) of `cv` run with `entries` (reps / epochs: the overrides they carry,
    for the report and the departure line); cached: its out-of-fold predictions, where tuning kept them.
    Held-out rows are scored a block at a time; the calibration reads their residuals and spreads back from
    the work folder a block of genes at a time. keep_predictions: the details hold the model's out-of-fold
    prediction (rows, genes) too."""
    started = time.perf_counter() if started is None else started
    stage = cv.stage_name
    if departure(stage, reps, epochs):
        log(departure(stage, reps, epochs))
    results = cv.results(entries, log, executor=executor) if cached is None else cv.cached_results(entries, cached)
    shape = (sum(int(fold.held_out.sum()) for fold in cv.folds), len(cv.genes))
    with tablefile.TableWriter(cv.work / "residuals.npy", shape) as residuals, \
            tablefile.TableWriter(cv.work / "spreads.npy", shape) as spreads:
        scored = score_folds(cv, results, residuals, spreads, log, keep_predictions)
    rows = metrics.joined([s.scores for s in scored])
    pairs = cv.pairs.iloc[np.concatenate([s.rows for s in scored])].reset_index(drop=True)
    per_row = lambda value: np.concatenate([np.full(len(s.rows), value(number, s)) for number, s in enumerate(scored)])
    held_out_rows = [int(fold.held_out.sum()) for fold in cv.folds if fold.repeat == 0]
    report = reports.report_of_rows(
        stage, rows, len(cv.genes), pairs["cell_type"], per_row(lambda number, s: number), mode="cv", stage=stage,
        cv=dict(folds=cv.fold_names, held_out_rows=held_out_rows, repeats=REPEATS,
                scheme=cv.scheme.as_dict(), seeds=sorted({fold.seed for fold in cv.folds}),
                pseudolabels=cv.pseudolabel_rows, reps={e.id: e.reps for e in entries},
                epochs={e.id: e.epochs for e in entries}, overrides=dict(reps=reps, epochs=epochs)),
        title=f"{stage}: cross-validation on {cv.source}, {len(cv.fold_names)} folds "
              f"({cv.scheme.name} scheme) x {REPEATS} repeats ({len(pairs)} held-out rows x "
              f"{len(cv.genes)} genes)")
    residual_table = tablefile.TableFile(cv.work / "residuals.npy")
    groups = np.empty(shape[0], np.int64)  # as written: a fold's rows in both repeats are one group
    for s in scored:
        groups[s.written] = s.fold.number
    calibration = intervals.Calibration.fit(stage, cv.genes, entries, residual_table,
                                            tablefile.TableFile(cv.work / "spreads.npy"), groups, log)
    report["intervals"] = calibration.summary
    report["wall_s"] = round(time.perf_counter() - started, 1)
    written = np.concatenate([s.written for s in scored])  # the sorted rows' places in the residual table
    worst = [(name, -tablefile.read_rows(residual_table, [written[row]])[0])
             for row, name in reports.worst_rows(rows["model"]["mrrmse"], pairs)]
    details = dict(rows=rows, pairs=pairs, worst=worst, repeat=per_row(lambda _, s: s.fold.repeat),
                   fold=per_row(lambda _, s: s.fold.name))
    if keep_predictions:
        details["prediction"] = np.concatenate([s.prediction for s in scored])
    return report, details, calibration
