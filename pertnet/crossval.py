"""Cross-validation of a stage on its training data, with folds from the data's own design
(pertnet/folds.py): what `evaluate --cv` reports and calibrates intervals with, what `tune` minimises,
and `pertnet.cross_validate` in Python (docs/method.md, section 7).

Each fold is a `PertNet` estimator fitted on its training rows; the folds of a group (as many training
rows and labels) fit side by side, entry by entry, each entry predicting the held-out rows before the
next one trains. Tuning keeps each entry's out-of-fold predictions in a cache named by a digest of
everything that decides them (`CrossValidation.cache_path`).
"""
import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pertnet import bundle, cluster, data, ensemble, intervals, metrics, outputs, report as reports, schemas
from pertnet.entries import departure
from pertnet.estimator import PertNet, fit_side_by_side
from pertnet.files import load_npz, require_writable, save_npz
from pertnet.folds import REPEATS, Fold, design_scheme, fold_groups, folds

CACHED = ("entries", "variances", "truth", "clip_low", "clip_high")  # per fold, in an out-of-fold cache


def _once(log):
    """`log`, but each distinct line only the first time."""
    said = set()

    def log_once(line):
        if line not in said:
            said.add(line)
            log(line)
    return log_once


@dataclass
class FoldResult:
    fold: Fold
    prediction: np.ndarray        # the stage's prediction of the held-out rows (rows, genes)
    truth: np.ndarray             # their true values, float64
    spread: np.ndarray            # the ensemble's spread over reps and entries (`ensemble.Ensemble.spread`)
    entry_predictions: list       # each entry's prediction, where asked for (weight tuning)
    entry_variances: list         # and each entry's variance over its reps
    clip_low: np.ndarray          # the fold's clip bounds (its training rows' per-gene min / max)
    clip_high: np.ndarray


class CrossValidation:
    """The training rows, genes and pseudolabels of a stage's CV, and its folds.

    train: validated training rows (pertnet/data.py); id_map: the pairs to predict, whose design sets
    the folds; pseudolabels: rows every fold trains on (stage_2's); source: the training data's name
    in messages. `from_files` reads them as the commands do."""

    def __init__(self, train, id_map, pseudolabels, stage_name, seed, source, log=print):
        self.train, self.pseudolabels, self.stage_name, self.source = train, pseudolabels, stage_name, source
        self.genes = schemas.gene_columns(train.columns)
        self.scheme = design_scheme(train[schemas.PAIR], id_map, source)
        self.folds = folds(self.scheme, seed)
        log(f"[cv] {len(self.scheme.folds)} folds x {REPEATS} repeats, scheme {self.scheme.name}: {self.scheme.reason}")
        for note in self.scheme.notes:
            log(f"[cv] note: {note}")

    @classmethod
    def from_files(cls, options, log=print):
        """The CV of the stage's files in options.data_dir (and stage_2's stage_1 submission)."""
        data_dir = Path(options.data_dir)
        train_path = data.training_file(data_dir, options.train_file)
        data.require_inputs(data_dir, (data.ID_MAP_FILE,) if options.train_file
                            else (train_path.name, data.ID_MAP_FILE))
        train = data.read_training(train_path, options.layer, options.label_columns())[0]
        id_map = data.read_id_map(data_dir / data.ID_MAP_FILE, options.label_columns())
        pseudolabels = outputs.pseudolabel_rows(options.stage, options.submissions_dir, id_map,
                                                schemas.gene_columns(train.columns))
        return cls(train, id_map, pseudolabels, options.stage, options.seed, train_path, log)

    @property
    def fold_names(self):
        return [name for name, _ in self.scheme.folds]

    def n_dim_limit(self):
        """The most SVD components every fold's training targets allow (rows x genes: their rank at most)."""
        return min(min(int((~fold.held_out).sum()) + len(self.pseudolabels), len(self.genes)) for fold in self.folds)

    def rows(self, fold):
        """(the fold's training rows, its held-out rows)."""
        return self.train[~fold.held_out], self.train[fold.held_out].reset_index(drop=True)

    @cached_property
    def data_digest(self):
        """A digest of the data this CV scores on: the training rows (labels and values), the pseudolabel rows,
        and each fold's name and held-out rows (what the design of the pairs to predict made of them). Two CVs
        with the same digest hold out the same rows of the same data."""
        digest = hashlib.sha256(json.dumps([(name, np.flatnonzero(held_out).tolist())
                                            for name, held_out in self.scheme.folds]).encode())
        for frame in (self.train, self.pseudolabels) if len(self.pseudolabels) else (self.train,):
            data.update_digest(digest, frame, self.genes)
        return digest.hexdigest()

    def describe(self):
        """The data in one phrase, for the lines that say which data a study or cache belongs to."""
        pseudolabels = f" and {len(self.pseudolabels)} pseudolabel rows" if len(self.pseudolabels) else ""
        return (f"data {self.data_digest[:8]} ({self.source}: {len(self.train)} rows x {len(self.genes)} genes"
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
        where `python -m evaluate --cv` finds them too)."""
        path = self.cache_path(entries, folder)
        folds = self.cached(entries, folder)
        if folds is not None:
            log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from {path}")
            return folds
        log(f"[cv] out-of-fold predictions of {len(entries)} entries, trained once")
        results = sorted(self.results(entries, log, keep_entry_predictions=True, executor=executor),
                         key=lambda r: (r.fold.repeat, r.fold.number))
        folds = [dict(entries=np.stack(r.entry_predictions), variances=np.stack(r.entry_variances), truth=r.truth,
                      clip_low=r.clip_low, clip_high=r.clip_high) for r in results]
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
            yield FoldResult(fold, mean.result(), arrays["truth"], mean.spread(), list(arrays["entries"]),
                             list(arrays["variances"]), arrays["clip_low"], arrays["clip_high"])

    def results(self, entries, log=print, keep_entry_predictions=False, executor=None):
        """Yield a `FoldResult` per fold, as its group of folds finishes: each fold is a `PertNet` estimator,
        each entry is fitted once per group, the group's folds side by side, and predicts the held-out rows;
        per fold, the entries' predictions make the stage's prediction as `Stage.predict` ensembles them.
        executor: a Dask cluster's (pertnet/cluster.py): a group's entries are then tasks, all sent at once,
        and taken in the entries' order, so the sums are the serial run's."""
        from pertnet import training  # TensorFlow loads only where something trains

        groups = fold_groups(self.folds, self.train[schemas.PAIR], self.pseudolabels)
        flops = [{e.id: training.training_flops(e, group.rows) * len(group.folds) for e in entries} for group in groups]
        progress = training.Progress(self.stage_name, sum(sum(f.values()) for f in flops), log)
        log_once = _once(log)  # the folds of a group depart alike (n_dim): said once
        for left, group, group_flops in zip(range(len(groups), 0, -1), groups, flops):
            log(f"[cv] {len(group.folds)} folds side by side, {group.rows} training rows each: "
                f"{', '.join(f'{fold.name} (repeat {fold.repeat + 1})' for fold in group.folds)}")
            models = [PertNet(self.stage_name, entries=entries, seed=fold.seed, verbose=log_once)
                      for fold in group.folds]
            training_sets, held_out = [], {}
            for model, fold in zip(models, group.folds):  # the group's folds only, one copy of a fold's rows at a time
                fold_train, held_out[fold] = self.rows(fold)
                training_sets.append(model.training_set(fold_train, self.pseudolabels))
                del fold_train
            for model, training_set in zip(models, training_sets):
                model.start(training_set)
                del training_set["train_targets"]  # in the basis now (the stage's encoded targets): let the rows go
            inputs = [model.encode_pairs(held_out[fold], source=f"{fold.label} held-out rows")
                      for fold, model in zip(group.folds, models)]
            means, kept = [model.stage_.ensemble() for model in models], [([], []) for _ in group.folds]
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
                for number, (model, x) in enumerate(zip(models, inputs)):
                    prediction, variance = model.entry_prediction(entry, x)
                    means[number].add(prediction, entry.weight, variance)
                    if keep_entry_predictions:
                        kept[number][0].append(prediction)
                        kept[number][1].append(variance)
            for fold, model, mean, (entry_predictions, entry_variances) in zip(group.folds, models, means, kept):
                yield FoldResult(fold, mean.result(), held_out[fold][self.genes].to_numpy(np.float64), mean.spread(),
                                 entry_predictions, entry_variances, model.stage_.clip_low, model.stage_.clip_high)


def cross_validate(options, tuning_dir=None, log=print):
    """The cross-validation of the stage's files (folds from the data's design), each
    fold fitted in memory with the estimator `train` and `predict` use, its held-out rows scored beside
    the baselines; what it learnt about its errors saved as the stage's calibration (pertnet/intervals.py),
    which `predict --interval` reads. Out-of-fold predictions tuning cached in `tuning_dir` are reused."""
    started = time.perf_counter()
    path = bundle.calibration_path(options.models_dir, options.stage)
    require_writable(path.parent, "--models-dir")  # before the training, not after
    cluster.require_reachable(options.cluster)
    cv = CrossValidation.from_files(options, log)
    entries = options.entries()
    cached = cv.cached(entries, tuning_dir) if tuning_dir is not None else None
    if cached is not None:
        log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from {cv.cache_path(entries, tuning_dir)}, "
            f"made for the same entries, seeds and {cv.describe()}")
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
    if pseudolabels is None:
        pseudolabels = pd.DataFrame(columns=schemas.PAIR)
    cv = CrossValidation(train, pairs, pseudolabels, model.stage, model.seed, "the training data", model.log)
    report, details, model.calibration_ = cv_report(cv, model.stage_entries(), model.reps, model.epochs, model.log)
    model.calibrated_on_ = model.data_digest(train)
    out_of_fold = pd.concat([details["pairs"].assign(repeat=details["repeat"], fold=details["fold"]),
                             pd.DataFrame(details["predictions"]["model"], columns=cv.genes)], axis=1)
    return CrossValidationResult(report, out_of_fold[["repeat", "fold", *schemas.PAIR, *cv.genes]])


def cv_report(cv, entries, reps=None, epochs=None, log=print, started=None, cached=None, executor=None):
    """(report, details, calibration) of `cv` run with `entries` (reps / epochs: the overrides they carry,
    for the report and the departure line); cached: its out-of-fold predictions, where tuning kept them."""
    started = time.perf_counter() if started is None else started
    stage = cv.stage_name
    if departure(stage, reps, epochs):
        log(departure(stage, reps, epochs))
    results = cv.results(entries, log, executor=executor) if cached is None else cv.cached_results(entries, cached)
    parts = []
    for result in sorted(results, key=lambda result: (result.fold.repeat, result.fold.number)):
        fold_train, fold_test = cv.rows(result.fold)
        part = dict(model=result.prediction, truth=result.truth, spread=result.spread, pairs=fold_test[schemas.PAIR],
                    group=np.full(len(fold_test), len(parts)), fold=np.full(len(fold_test), result.fold.number),
                    repeat=np.full(len(fold_test), result.fold.repeat), fold_name=np.full(len(fold_test), result.fold.name),
                    **reports.baselines(fold_train, fold_test, cv.genes, cv.source))
        fold_scores = {key: metrics.mrrmse(part[key], part["truth"]) for key in ("model", *metrics.BASELINES)}
        log(f"{result.fold.label} {len(fold_test)} held-out rows: MRRMSE {fold_scores.pop('model'):.4f}; baselines " +
            ", ".join(f"{key} {value:.4f}" for key, value in fold_scores.items()))
        parts.append(part)

    stack = {key: np.concatenate([part[key] for part in parts]) for key in ("model", "truth", "spread", "group", "fold",
                                                                            "repeat", "fold_name",
                                                                            *metrics.BASELINES)}
    pairs = pd.concat([part["pairs"] for part in parts], ignore_index=True)
    predictions = {key: stack[key] for key in ("model", *metrics.BASELINES)}
    held_out_rows = [int(fold.held_out.sum()) for fold in cv.folds if fold.repeat == 0]
    report, rows = reports.build_report(
        stage, predictions, stack["truth"], pairs["cell_type"], stack["group"], mode="cv", stage=stage,
        cv=dict(folds=cv.fold_names, held_out_rows=held_out_rows, repeats=REPEATS,
                scheme=cv.scheme.as_dict(), seeds=sorted({fold.seed for fold in cv.folds}),
                pseudolabels=len(cv.pseudolabels), reps={e.id: e.reps for e in entries},
                epochs={e.id: e.epochs for e in entries}, overrides=dict(reps=reps, epochs=epochs)),
        title=f"{stage}: cross-validation on {cv.source}, {len(cv.fold_names)} folds "
              f"({cv.scheme.name} scheme) x {REPEATS} repeats ({len(pairs)} held-out rows x "
              f"{len(cv.genes)} genes)")
    calibration = intervals.Calibration.fit(stage, cv.genes, entries, stack["model"], stack["spread"], stack["truth"],
                                            stack["fold"])  # a fold's rows in both repeats: one group
    report["intervals"] = calibration.summary
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report, dict(rows=rows, predictions=predictions, truth=stack["truth"], pairs=pairs, repeat=stack["repeat"],
                        fold=stack["fold_name"]), calibration


