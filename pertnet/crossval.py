"""The author's cross-validation, fitted in memory: what `evaluate --cv` reports and `tune` minimises.

One fold per T/NK cell type: it holds out that cell type's rows of the compounds that have no
B-cell or Myeloid training rows (the compounds whose B/Myeloid profiles the competition tests)
and trains on every other row (stage_2: plus all pseudolabels); 2 repeats, with seeds seed and
seed + 1 (docs/method.md, section 7). Each fold is a `stage.Stage` fitted on its rows.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pertnet import UserError, data, schemas
from pertnet.stage import Stage, encode

CELL_TYPES = ("NK cells", "T cells CD4+", "T cells CD8+", "T regulatory cells")
TEST_CELL_TYPES = ("B cells", "Myeloid cells")  # the competition's test pairs are theirs
REPEATS = 2


@dataclass(frozen=True)
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

    def fit(self, fold, entries, log=print):
        """A `Stage` of `entries` fitted on the fold's training rows (plus the pseudolabels)."""
        fold_train, _ = self.rows(fold)
        training_set = encode(fold_train, self.genes, fold.seed, self.pseudolabels)
        stage = Stage.start(self.stage_name, entries, training_set, fold.seed)
        return stage.fit(training_set, fold.seed, log=lambda line: log(f"{fold.label} {line.strip()}"))

    def held_out_inputs(self, stage, fold):
        """The fold's held-out pairs as the label codes of its stage."""
        _, test = self.rows(fold)
        return stage.encode_pairs(test.cell_type, test.sm_name, source=f"{fold.label} held-out rows")
