"""The folds of a cross-validation, from the data's own design (docs/method.md, section 7): which training
rows each fold holds out. No training here; pertnet/crossval.py trains and scores them.

The author's scheme imitates the test. The pairs to predict (id_map) ask for the profiles, in the
*test cell types* (id_map's), of compounds measured only in the other cell types: the *held-out
compounds*, those with no training row in any test cell type. Each other cell type with rows of them
is a fold: it holds out that cell type's rows of the held-out compounds and trains on every other row
(stage_2: plus all pseudolabels). On the competition's design these are the author's four T/NK
folds. Where this gives fewer than two usable folds (every cell type has pairs to predict, say), the
compounds are split into groups as a GroupKFold does, and a fold holds out its compounds' rows in all
but their best-covered cell type. A held-out row must stay predictable: its cell type and compound
occur in the fold's training rows (the models embed labels); other rows stay in training, and a fold
left without held-out rows is skipped with a note. 2 repeats, with seeds seed and seed + 1.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pertnet.data import MIN_TRAINING_ROWS
from pertnet.errors import UserError

REPEATS = 2
COMPOUND_GROUPS = 4  # folds of the fallback scheme, fewer where fewer compounds can be held out
MIN_FOLDS = 2


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
    if int((~predictable).sum()) < MIN_TRAINING_ROWS:
        notes.append(f"no fold {name}: it would leave fewer than {MIN_TRAINING_ROWS} training rows")
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




def folds(scheme, seed):
    """Every fold of `scheme`, repeat by repeat: repeat r trains with seed + r."""
    return [Fold(repeat, number, len(scheme.folds), name, held_out, seed + repeat)
            for repeat in range(REPEATS) for number, (name, held_out) in enumerate(scheme.folds, 1)]


@dataclass(frozen=True, eq=False)
class FoldGroup:
    """Folds that train side by side: as many training rows and labels each."""
    folds: list
    rows: int    # training rows of each fold (its kept rows and the pseudolabels)


def fold_groups(folds, pairs, pseudolabel_pairs=None):
    """The folds grouped by their training rows' count and labels' count, in the order first met.
    pairs: the training rows' (cell_type, sm_name); pseudolabel_pairs: those of rows every fold also trains on."""
    groups = {}
    for fold in folds:
        fold_train = pd.concat([pairs[~fold.held_out], pseudolabel_pairs])
        key = (len(fold_train), len(set(fold_train.cell_type) | set(fold_train.sm_name)))
        groups.setdefault(key, []).append(fold)
    return [FoldGroup(group, rows) for (rows, _), group in groups.items()]
