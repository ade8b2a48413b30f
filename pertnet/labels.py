"""Which columns name a row: the cell type column and the perturbation columns (a compound, and its dose,
time, ...), declared by --cell-type-column and --perturbation-columns (`PertNet(cell_type_column=...,
perturbation_columns=[...])`), and which columns are neither labels nor genes (--ignore-columns).

Each distinct combination of the perturbation columns is one label the method embeds, as a compound is
in the competition. Inside the package a row's labels are two columns, `cell_type` and `sm_name` (the
perturbation label: the one column's value, or the combination, written "Dabrafenib | dose=0.1"), so
the method itself does not change; the label columns as given travel beside them in the pairs to
predict (`given:<column>`) and return in what is written for them.
"""
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pertnet import schemas
from pertnet.errors import UserError

GIVEN = "given:"  # prefix of the label columns as given, beside the canonical pair in a frame of pairs to predict
# A column named by one of these words (alone, or before a unit or a number: dose_uM, time_h, plate2) is
# metadata, never a gene; it must be declared as a label (--perturbation-columns) or dropped (--ignore-columns).
METADATA_WORDS = frozenset({"dose", "doses", "dosage", "concentration", "conc", "time", "timepoint", "hours",
                            "duration", "n_cells", "ncells", "cell_count", "cells", "plate", "well", "replicate",
                            "rep", "batch", "donor", "donor_id", "sample", "library", "lane"})
REPLICATES = ("mean",)  # what --replicates may ask for (default: rows repeating a label combination are refused)


def _word(column):
    """A column's leading word, lower case, without a unit or number after it (dose_uM -> dose, plate2 -> plate)."""
    text = str(column).strip().lower()
    if text in METADATA_WORDS:
        return text
    head = ""
    for character in text:
        if not character.isalpha():
            break
        head += character
    return head


def _as_text(values):
    """A label column's values as text: numbers in their shortest exact form (10.0 and 10 -> "10", 0.1 -> "0.1"),
    so that a dose read from parquet, CSV or an AnnData names the same label; text as it is."""
    if pd.api.types.is_bool_dtype(values) or not (pd.api.types.is_numeric_dtype(values) or _all_numbers(values)):
        return values.astype(str)
    return pd.to_numeric(values).map(lambda v: np.format_float_positional(float(v), trim="-"))


def _all_numbers(values):
    return len(values) > 0 and pd.to_numeric(values, errors="coerce").notna().all()


@dataclass(frozen=True)
class Labels:
    cell_type: str = schemas.PAIR[0]            # --cell-type-column
    perturbation: tuple = (schemas.PAIR[1],)    # --perturbation-columns: their combination is one label
    ignore: tuple = field(default=())           # --ignore-columns: neither labels nor genes, dropped
    replicates: str = None                      # --replicates: None refuses repeated label combinations, "mean"

    def __post_init__(self):
        object.__setattr__(self, "perturbation", tuple(str(c) for c in self.perturbation))
        object.__setattr__(self, "ignore", tuple(str(c) for c in self.ignore))
        if not self.perturbation or "" in self.perturbation:
            raise UserError("--perturbation-columns: give one column or more, comma-separated (e.g. sm_name,dose)")
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise UserError(f"--cell-type-column and --perturbation-columns name {', '.join(repeated)} twice; "
                            "each label column once")
        both = sorted(set(self.columns) & set(self.ignore))
        if both:
            raise UserError(f"--ignore-columns {', '.join(both)}: declared as a label column too; drop it from one")
        if self.replicates not in (None, *REPLICATES):
            raise UserError(f"--replicates {self.replicates!r}: the choice is {', '.join(REPLICATES)}")

    @property
    def columns(self):
        return [self.cell_type, *self.perturbation]

    @property
    def is_default(self):
        return self.columns == list(schemas.PAIR)

    def describe(self):
        return f"cell type column {self.cell_type}, perturbation column(s) {', '.join(self.perturbation)}"

    def as_json(self):
        """The label columns, as bundles and prepared arrays record them."""
        return json.dumps(dict(cell_type=self.cell_type, perturbation=list(self.perturbation)))

    @classmethod
    def from_json(cls, text):
        """Recorded label columns (the competition's where a file predates them)."""
        return cls(**json.loads(text)) if text else cls()

    def same_columns(self, other):
        return self.columns == other.columns

    def not_genes(self):
        """Columns of a table that are never genes: the schemas' metadata, the labels and the ignored."""
        return schemas.NOT_GENES | set(self.columns) | set(self.ignore)

    def genes(self, columns, source):
        """The gene columns among `columns`; a column named as metadata (METADATA_WORDS) that is not declared
        stops the run in one line naming it and the options that declare it."""
        genes = [c for c in columns if c not in self.not_genes()]
        metadata = [c for c in genes if _word(c) in METADATA_WORDS]
        if metadata:
            shown = ", ".join(map(str, metadata[:5]))
            raise UserError(f"{source}: column(s) {shown} look like metadata, not genes; declare them as labels "
                            f"(--perturbation-columns {','.join([*self.perturbation, *map(str, metadata[:2])])}) "
                            f"or drop them (--ignore-columns {','.join(map(str, metadata))})")
        return genes

    def require(self, columns, source, role="the file"):
        """Every label column must be in `columns` (one line naming the missing ones and the options)."""
        missing = [c for c in self.columns if c not in list(columns)]
        if missing:
            found = ", ".join(map(str, list(columns)[:6])) + (", ..." if len(columns) > 6 else "")
            raise UserError(f"{source}: missing label column(s) {', '.join(map(str, missing))} (it has {found}); "
                            f"{role} needs the columns {', '.join(self.columns)} (--cell-type-column, "
                            "--perturbation-columns): add or rename them, or name the columns it has")

    def pairs(self, frame, source):
        """The canonical pair (cell_type, sm_name) of each row of `frame`, which has the label columns: the
        perturbation label is the one column's value, or the combination; NaN in a label column is an error
        naming the rows."""
        self.require(frame.columns, source)
        labels = frame[self.columns]
        blank = labels.isna().any(axis=1).to_numpy()
        if blank.any():
            columns = [c for c in self.columns if labels[c].isna().any()]
            raise UserError(f"{source}: {int(blank.sum())} row(s) have no value in label column(s) "
                            f"{', '.join(columns)} (e.g. rows {np.flatnonzero(blank)[:5].tolist()}); fill or drop them")
        if self.is_default:  # the competition's columns, as text: what every earlier version did
            return labels.astype(str).reset_index(drop=True)
        texts = {c: _as_text(labels[c]) for c in self.columns}
        perturbation = texts[self.perturbation[0]]
        for column in self.perturbation[1:]:
            perturbation = perturbation + f" | {column}=" + texts[column]
        return pd.DataFrame({schemas.PAIR[0]: texts[self.cell_type].to_numpy(),
                             schemas.PAIR[1]: perturbation.to_numpy()})

    def with_given(self, frame, pairs):
        """`pairs` (canonical) with the label columns as given in `frame` beside them (`GIVEN` + column)."""
        given = frame[self.columns].reset_index(drop=True)
        return pd.concat([pairs.reset_index(drop=True), given.set_axis([GIVEN + c for c in self.columns], axis=1)],
                         axis=1)

    def repeated_only_for(self, frame, pairs):
        """The columns of `frame` that are neither labels nor genes and would make every repeated pair unique
        if they were perturbation columns: what a user most likely forgot to declare."""
        repeated = pairs.duplicated(keep=False).to_numpy()
        found = []
        for column in (c for c in frame.columns if c in self.not_genes() and c not in self.columns):
            keyed = pairs[repeated].assign(extra=frame[column].to_numpy()[repeated])
            if not keyed.duplicated().any():
                found.append(column)
        return found


def given(pairs):
    """The label columns as given, of a frame of pairs `Labels.with_given` made (the canonical pair where it
    has none): what a prediction shows beside its values."""
    columns = [c for c in pairs.columns if str(c).startswith(GIVEN)]
    if not columns:
        return pairs[list(schemas.PAIR)]
    return pairs[columns].set_axis([c[len(GIVEN):] for c in columns], axis=1)
