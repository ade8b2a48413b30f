"""Cross-validation from the data's own design, fitted in memory: what `evaluate --cv` reports and `tune`
minimises (docs/method.md, section 7).

The author's scheme imitates the test. The pairs to predict (id_map) ask for the profiles, in the
*test cell types* (id_map's), of compounds measured only in the other cell types: the *held-out
compounds*, those with no training row in any test cell type. Each other cell type with rows of them
is a fold: it holds out that cell type's rows of the held-out compounds and trains on every other row
(stage_2: plus all pseudolabels). On the competition's design these are the author's four T/NK
folds. Where this gives fewer than two usable folds (every cell type has pairs to predict, say), the
compounds are split into groups as a GroupKFold does, and a fold holds out its compounds' rows in all
but their best-covered cell type. A held-out row must stay predictable: its cell type and compound
occur in the fold's training rows (the models embed labels); other rows stay in training, and a fold
left without held-out rows is skipped with a note. 2 repeats, with seeds seed and seed + 1. Each fold
is a `PertNet` estimator fitted on its rows; folds with as many training rows train side by side.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pertnet import UserError, data, ensemble, schemas
from pertnet.estimator import PertNet
from pertnet.files import load_npz, save_npz
from pertnet.stage import encode, fit_side_by_side

REPEATS = 2
COMPOUND_GROUPS = 4  # folds of the fallback scheme, fewer where fewer compounds can be held out
MIN_FOLDS = 2
CACHED = ("entries", "variances", "truth", "clip_low", "clip_high")  # per fold, in an out-of-fold cache


@dataclass(frozen=True)
class Scheme:
    """The folds of one repeat: [(name, held-out row mask)], and which rule made them and why."""
    name: str     # "cell_type" (the author's) or "compound_groups" (the fallback)
    reason: str
    folds: list
    notes: list   # one line per fold skipped, and why

    def as_dict(self):
        return dict(name=self.name, reason=self.reason, notes=list(self.notes))


def _predictable(pairs, held_out):
    """The held-out rows whose cell type and compound both occur in the rows left to train on."""
    kept = pairs[~held_out]
    return held_out & pairs["cell_type"].isin(set(kept["cell_type"])).to_numpy() \
        & pairs["sm_name"].isin(set(kept["sm_name"])).to_numpy()


def _usable(name, pairs, held_out, notes):
    """(name, predictable held-out mask), or None with a note saying why the fold is skipped."""
    predictable = _predictable(pairs, held_out)
    if not predictable.any():
        notes.append(f"no fold {name}: none of its {int(held_out.sum())} row(s) to hold out would keep its "
                     "cell type and compound in the fold's training rows")
        return None
    if int((~predictable).sum()) < data.MIN_TRAINING_ROWS:
        notes.append(f"no fold {name}: it would leave fewer than {data.MIN_TRAINING_ROWS} training rows")
        return None
    return name, predictable


def cell_type_scheme(pairs, test_cell_types):
    """The author's folds: one per cell type outside the test cell types with rows of the held-out compounds."""
    measured_in_test = set(pairs["sm_name"][pairs["cell_type"].isin(test_cell_types)])
    held_out_compounds = ~pairs["sm_name"].isin(measured_in_test).to_numpy()
    notes, folds = [], []
    for cell_type in sorted(set(pairs["cell_type"]) - set(test_cell_types)):
        held_out = (pairs["cell_type"] == cell_type).to_numpy() & held_out_compounds
        fold = _usable(cell_type, pairs, held_out, notes) if held_out.any() else None
        folds += [fold] if fold else []
    compounds = len(set(pairs["sm_name"][held_out_compounds]))
    reason = (f"the pairs to predict ask for {compounds} compound(s) measured only outside the cell types they are "
              f"asked in ({', '.join(test_cell_types)}); each other cell type with rows of them is a fold that holds "
              "those rows out")
    return Scheme("cell_type", reason, folds, notes)


def compound_group_scheme(pairs):
    """The fallback: the compounds measured in two or more cell types in COMPOUND_GROUPS groups, balanced
    by rows as a GroupKFold does (largest first, each to the group with fewest rows); a fold holds out
    its compounds' rows in every cell type but the best-covered one, which keeps the compound known."""
    rows_per_cell_type = pairs["cell_type"].value_counts()
    coverage = pairs.assign(rows=pairs["cell_type"].map(rows_per_cell_type).to_numpy())
    best = coverage.sort_values(["rows", "cell_type"], ascending=[False, True]).drop_duplicates("sm_name")
    candidates = ~pairs.index.isin(best.index)  # every row but each compound's best-covered one
    sizes = pairs["sm_name"][candidates].value_counts()
    order = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    groups = [[] for _ in range(min(COMPOUND_GROUPS, len(order)))]
    for compound, _ in order:
        min(groups, key=lambda group: sizes[group].sum() if group else 0).append(compound)
    notes, folds = [], []
    for number, group in enumerate(groups, 1):
        fold = _usable(f"compound group {number}", pairs, candidates & pairs["sm_name"].isin(group).to_numpy(), notes)
        folds += [fold] if fold else []
    return Scheme("compound_groups", f"held-out pairs grouped by compound ({len(sizes)} compound(s) measured in two "
                  f"or more cell types, in {len(groups)} group(s))", folds, notes)


def design_scheme(pairs, test_pairs, source):
    """The folds the training rows' and the pairs to predict's design gives: the author's rule where it
    gives at least MIN_FOLDS usable folds, else the compound groups; fewer than MIN_FOLDS is an error."""
    author = cell_type_scheme(pairs, sorted(set(test_pairs["cell_type"])))
    if len(author.folds) >= MIN_FOLDS:
        return author
    fallback = compound_group_scheme(pairs)
    why = "; ".join([f"it gives {len(author.folds)} usable fold(s)", *author.notes])
    fallback = Scheme(fallback.name, f"{fallback.reason}, because the cell-type rule ({author.reason}) does not: "
                      f"{why}", fallback.folds, fallback.notes)
    if len(fallback.folds) < MIN_FOLDS:
        raise UserError(f"{source}: cross-validation needs at least {MIN_FOLDS} folds of held-out rows whose cell "
                        f"type and compound stay in training, and this design gives {len(fallback.folds)}: "
                        f"{fallback.reason}; add training rows (compounds measured in two or more cell types)")
    return fallback


@dataclass(frozen=True, eq=False)
class Fold:
    repeat: int           # 0, 1
    number: int           # 1.., in the scheme's order
    count: int            # folds per repeat
    name: str             # the held-out cell type (or compound group)
    held_out: np.ndarray  # mask over the training rows
    seed: int             # the repeat's seed: --seed + repeat

    @property
    def label(self):
        return f"[cv repeat {self.repeat + 1}/{REPEATS}, fold {self.number}/{self.count} {self.name}]"


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
        self.folds = [Fold(repeat, number, len(self.scheme.folds), name, held_out, seed + repeat)
                      for repeat in range(REPEATS) for number, (name, held_out) in enumerate(self.scheme.folds, 1)]
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
        train = data.read_training(train_path, options.layer)[0]
        id_map = data.read_id_map(data_dir / data.ID_MAP_FILE)
        pseudolabels = data.pseudolabel_rows(options.stage, options.submissions_dir, id_map,
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

    def groups(self):
        """The folds that train side by side: those with as many training rows and labels."""
        groups = {}
        for fold in self.folds:
            fold_train = pd.concat([self.rows(fold)[0][schemas.PAIR], self.pseudolabels[schemas.PAIR]])
            key = (len(fold_train), len(set(fold_train.cell_type) | set(fold_train.sm_name)))
            groups.setdefault(key, []).append(fold)
        return list(groups.values())

    def cache_path(self, entries, folder):
        """Where the out-of-fold predictions of this CV with `entries` are cached in `folder`: named by a
        digest of the stage, the folds' seeds, the entries and the training rows (any change, another file)."""
        digest = hashlib.sha256(json.dumps(["with variances", self.stage_name, [f.seed for f in self.folds],
                                            [e.as_dict() for e in entries]]).encode())
        for frame in (self.train, self.pseudolabels) if len(self.pseudolabels) else (self.train,):
            digest.update(np.ascontiguousarray(frame[self.genes].to_numpy(np.float32)).tobytes())
            digest.update("\n".join(frame["cell_type"] + "/" + frame["sm_name"]).encode())
        return Path(folder) / f"oof-{self.stage_name}-{digest.hexdigest()[:16]}.npz"

    def cached(self, entries, folder):
        """The out-of-fold predictions cached in `folder` (see `out_of_fold`), or None where there are none."""
        path = self.cache_path(entries, folder)
        if not path.is_file():
            return None
        arrays = load_npz(path, f"delete {path}: it is recomputed")
        return [{key: arrays[f"{number}_{key}"] for key in CACHED} for number in range(len(self.folds))]

    def out_of_fold(self, entries, folder, log=print):
        """Per fold: each entry's prediction of the held-out rows and its variance over reps, their truth and
        the fold's clip bounds; computed once per data, seed and entries, and cached in `folder` (tuning's,
        where `python -m evaluate --cv` finds them too)."""
        path = self.cache_path(entries, folder)
        folds = self.cached(entries, folder)
        if folds is not None:
            log(f"[cv] out-of-fold predictions of {len(entries)} entries: read from {path}")
            return folds
        log(f"[cv] out-of-fold predictions of {len(entries)} entries, trained once")
        results = sorted(self.results(entries, log, keep_entry_predictions=True),
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

    def results(self, entries, log=print, keep_entry_predictions=False):
        """Yield a `FoldResult` per fold, as its group of folds finishes: each entry is trained once per
        group, the group's folds side by side, and predicts the held-out rows; per fold, the entries'
        predictions make the stage's prediction through the stage's `ensemble()`, as `Stage.predict` does."""
        from pertnet import training  # TensorFlow loads only where something trains

        split = {fold: self.rows(fold) for fold in self.folds}  # (training rows, held-out rows), sliced once
        groups = self.groups()
        rows = {id(group): len(split[group[0]][0]) + len(self.pseudolabels) for group in groups}
        flops = {(id(group), e.id): training.training_flops(e, rows[id(group)]) * len(group)
                 for group in groups for e in entries}
        progress = training.Progress(self.stage_name, sum(flops.values()), log)
        log_once = _once(log)  # the folds of a group depart alike (n_dim): said once
        for left, group in zip(range(len(groups), 0, -1), groups):
            log(f"[cv] {len(group)} folds side by side, {rows[id(group)]} training rows each: "
                f"{', '.join(f'{fold.name} (repeat {fold.repeat + 1})' for fold in group)}")
            training_sets = [encode(split[fold][0], self.genes, fold.seed, self.pseudolabels) for fold in group]
            stages = [PertNet(self.stage_name, entries=entries, seed=fold.seed, verbose=log_once).start(ts).stage_
                      for fold, ts in zip(group, training_sets)]
            inputs = [stage.encode_pairs(split[fold][1].cell_type, split[fold][1].sm_name,
                                         source=f"{fold.label} held-out rows") for fold, stage in zip(group, stages)]
            means, kept = [stage.ensemble() for stage in stages], [([], []) for _ in group]
            for entry in stages[0].entries:  # as the data allows them (n_dim): the same in every fold of a group
                label = f"[cv] entry {entry.id} ({len(group)} folds x {entry.reps} reps)"
                fit_side_by_side(stages, training_sets, [fold.seed for fold in group], entry,
                                 progress.epoch_callback(label, entry, flops[id(group), entry.id]), share=1 / left)
                progress.done += flops[id(group), entry.id]
                for number, (stage, x) in enumerate(zip(stages, inputs)):
                    prediction, variance = stage.entry_prediction(entry, x, with_variance=True)
                    means[number].add(prediction, entry.weight, variance)
                    if keep_entry_predictions:
                        kept[number][0].append(prediction)
                        kept[number][1].append(variance)
                    del stage.weights[entry.id]
            for fold, stage, mean, (entry_predictions, entry_variances) in zip(group, stages, means, kept):
                yield FoldResult(fold, mean.result(), split[fold][1][self.genes].to_numpy(np.float64), mean.spread(),
                                 entry_predictions, entry_variances, stage.clip_low, stage.clip_high)
