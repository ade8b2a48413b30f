"""The author's cross-validation, fitted in memory: what `evaluate --cv` reports and `tune` minimises.

One fold per T/NK cell type: it holds out that cell type's rows of the compounds that have no
B-cell or Myeloid training rows (the compounds whose B/Myeloid profiles the competition tests)
and trains on every other row (stage_2: plus all pseudolabels); 2 repeats, with seeds seed and
seed + 1 (docs/method.md, section 7). Each fold is a `stage.Stage` fitted on its rows; folds with
as many training rows train side by side (6 of the 8 on the competition's pairs).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pertnet import UserError, data, schemas
from pertnet.ensemble import WeightedMean, clip_to_bounds
from pertnet.stage import Stage, encode, fit_side_by_side

CELL_TYPES = ("NK cells", "T cells CD4+", "T cells CD8+", "T regulatory cells")
TEST_CELL_TYPES = ("B cells", "Myeloid cells")  # the competition's test pairs are theirs
REPEATS = 2


@dataclass(frozen=True, eq=False)
class Fold:
    repeat: int           # 0, 1
    number: int           # 1-4, in CELL_TYPES order
    cell_type: str
    held_out: np.ndarray  # mask over the training rows
    seed: int             # the repeat's seed: --seed + repeat

    @property
    def label(self):
        return f"[cv repeat {self.repeat + 1}/{REPEATS}, fold {self.number}/{len(CELL_TYPES)} {self.cell_type}]"


def held_out_masks(pairs):
    """[(cell type, held-out row mask)] of the author's folds; pairs: the training rows' cell_type and sm_name."""
    seen_in_test_types = set(pairs["sm_name"][pairs["cell_type"].isin(TEST_CELL_TYPES)])
    test_compounds = ~pairs["sm_name"].isin(seen_in_test_types)
    masks = [(cell_type, ((pairs["cell_type"] == cell_type) & test_compounds).to_numpy()) for cell_type in CELL_TYPES]
    empty = [cell_type for cell_type, held_out in masks if not held_out.any()]
    if empty:
        raise UserError(f"de_train has no rows to hold out for {', '.join(empty)} (rows of compounds without "
                        f"{' or '.join(TEST_CELL_TYPES)} rows); cross-validation needs the competition's pair structure")
    return masks


@dataclass
class FoldResult:
    fold: Fold
    prediction: np.ndarray        # the stage's prediction of the held-out rows (rows, genes)
    truth: np.ndarray             # their true values, float64
    entry_predictions: list       # each entry's prediction, where asked for (weight tuning)
    clip_low: np.ndarray          # the fold's clip bounds (its training rows' per-gene min / max)
    clip_high: np.ndarray


class CrossValidation:
    """The training rows, genes and pseudolabels of a stage's CV (read once), and its folds."""

    def __init__(self, options):
        data_dir = Path(options.data_dir)
        self.train_path = data.training_file(data_dir, options.train_file)
        data.require_inputs(data_dir, (data.ID_MAP_FILE,) if options.train_file
                            else (self.train_path.name, data.ID_MAP_FILE))
        self.train = data.read_training(self.train_path, options.layer)[0]
        self.genes = schemas.gene_columns(self.train.columns)
        self.pseudolabels = data.pseudolabel_rows(options.stage, options.submissions_dir,
                                                  data.read_id_map(data_dir / data.ID_MAP_FILE), self.genes)
        self.stage_name = options.stage
        masks = held_out_masks(self.train)
        self.folds = [Fold(repeat, number, cell_type, held_out, options.seed + repeat)
                      for repeat in range(REPEATS) for number, (cell_type, held_out) in enumerate(masks, 1)]

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

    def results(self, entries, log=print, keep_entry_predictions=False):
        """Yield a `FoldResult` per fold, as its group of folds finishes: each entry is trained once per
        group, the group's folds side by side, and predicts the held-out rows; per fold, the entries'
        predictions make the stage's prediction (weighted mean, clip) as `Stage.predict` does."""
        from pertnet import training  # TensorFlow loads only where something trains

        split = {fold: self.rows(fold) for fold in self.folds}  # (training rows, held-out rows), sliced once
        groups = self.groups()
        rows = {id(group): len(split[group[0]][0]) + len(self.pseudolabels) for group in groups}
        flops = {(id(group), e.id): training.training_flops(e, rows[id(group)]) * len(group)
                 for group in groups for e in entries}
        progress = training.Progress(self.stage_name, sum(flops.values()), log)
        for group in groups:
            log(f"[cv] {len(group)} folds side by side, {rows[id(group)]} training rows each: "
                f"{', '.join(f'{fold.cell_type} (repeat {fold.repeat + 1})' for fold in group)}")
            training_sets = [encode(split[fold][0], self.genes, fold.seed, self.pseudolabels) for fold in group]
            stages = [Stage.start(self.stage_name, entries, ts, fold.seed) for fold, ts in zip(group, training_sets)]
            inputs = [stage.encode_pairs(split[fold][1].cell_type, split[fold][1].sm_name,
                                         source=f"{fold.label} held-out rows") for fold, stage in zip(group, stages)]
            means, kept = [WeightedMean() for _ in group], [[] for _ in group]
            for entry in entries:
                label = f"[cv] entry {entry.id} ({len(group)} folds x {entry.reps} reps)"
                fit_side_by_side(stages, training_sets, [fold.seed for fold in group], entry,
                                 progress.epoch_callback(label, entry, flops[id(group), entry.id]))
                progress.done += flops[id(group), entry.id]
                for number, (stage, x) in enumerate(zip(stages, inputs)):
                    prediction = stage.entry_prediction(entry, x)
                    means[number].add(prediction, entry.weight)
                    kept[number] += [prediction] if keep_entry_predictions else []
                    del stage.weights[entry.id]
            for fold, stage, mean, entry_predictions in zip(group, stages, means, kept):
                yield FoldResult(fold, clip_to_bounds(mean.result(), stage.clip_low, stage.clip_high),
                                 split[fold][1][self.genes].to_numpy(np.float64), entry_predictions,
                                 stage.clip_low, stage.clip_high)
