"""A submission and a truth file, read and matched: rows by (cell_type, sm_name), or by id through an
id_map; genes by name. What `python -m evaluate` scores (pertnet/evaluation.py).

Each file is read by blocks into a float64 table on disk (pertnet/tablefile.py) and checked as it
comes; only the narrow frames of row names are held and merged. The scoring then reads a block of the
truth's rows at a time, with the same rows of each matched file: memory holds a block, never a file.
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pertnet import data, outputs, schemas, tablefile
from pertnet.errors import UserError
from pertnet.labels import Labels
from pertnet.pace import Pace

ROWS_AT_ONCE = 128  # truth rows scored at a time (a multiple of metrics.row_scores' blocks: the same floats)


def _blocks(path, layer, labels):
    """(the non-gene columns as a frame, the genes, their values as (rows, genes, values) blocks) of a
    prediction file (pertnet/outputs.py's formats, by suffix) or a parquet table. layer: an h5ad's layer
    (default: `prediction` in a prediction file, else sign_log10_pval)."""
    fmt = outputs.of_file(path)
    if fmt is None and Path(path).suffix == ".parquet":
        frame, genes, blocks = data.parquet_blocks(path, labels)
        return frame, genes, ((slice(0, len(frame)), columns, values) for columns, values in blocks)
    return (fmt or outputs.FORMATS[outputs.SUBMISSION]).blocks(path, layer, labels)


def read_table(path, role, layer, labels, folder, log=lambda line: None):
    """(the non-gene columns, the genes, their values as a float64 table file in `folder`, the error its NaN and
    infinities make, naming their rows, or None) of a file scored (role: "submission", "truth", ...): that error
    is raised after the checks of the rows and genes, which say more. log: a line every 30 s while it is read."""
    try:
        frame, genes, blocks = _blocks(path, layer, labels)
        bad_rows, bad, done, pace = np.zeros(len(frame), bool), 0, 0, Pace(log)
        with tablefile.TableWriter(Path(folder) / f"{role}.npy", (len(frame), len(genes)), dtype=np.float64) as table:
            for rows, columns, values in blocks:
                done += values.size
                pace.tick(done, len(frame) * len(genes), f"  {path}: {done / (len(frame) * len(genes)):.0%} read")
                finite = np.isfinite(values)
                if not finite.all():
                    bad_rows[rows] |= ~finite.all(axis=1)
                    bad += int((~finite).sum())
                table.write(rows, columns, values)
    except (TypeError, ValueError):
        raise UserError(f"{path}: the {role}'s gene columns must hold numbers") from None
    rows = np.flatnonzero(bad_rows).tolist()
    nonfinite = UserError(f"{path}: {bad} NaN or infinite value(s) in {len(rows)} row(s) of the {role} "
                          f"(e.g. rows {rows[:5]}); every prediction must be a number") if bad else None
    return frame, genes, tablefile.TableFile(Path(folder) / f"{role}.npy"), nonfinite


def _keyed(frame, path, id_map, labels):
    """The (narrow) frame with its canonical (cell_type, sm_name) pairs (`Labels.pairs` of its label columns),
    taken from id_map by id where it has no label columns."""
    if set(labels.columns) <= set(frame.columns):
        rest = frame.drop(columns=[c for c in {*labels.columns, *schemas.PAIR} if c in frame.columns])
        return pd.concat([rest.reset_index(drop=True), labels.pairs(frame, path)], axis=1)
    if "id" not in frame.columns:
        raise UserError(f"{path}: needs the label columns {', '.join(labels.columns)}, or an id column to align "
                        "rows by")
    if id_map is None:
        return frame
    unknown = sorted(set(frame["id"]) - set(id_map["id"]))
    if unknown:
        raise UserError(f"{path}: {len(unknown)} id(s) are not in id_map.csv (e.g. {unknown[:5]}); "
                        "use the id_map the file was written for (--data-dir)")
    return frame.drop(columns=[c for c in schemas.PAIR if c in frame.columns]).merge(id_map[["id", *schemas.PAIR]],
                                                                                    on="id", how="left")


class Matched(NamedTuple):
    """A file matched to the truth: its values (a table file), its row for each truth row, its column for
    each truth gene, and the key its rows were matched by (schemas.PAIR, or ["id"])."""
    table: tablefile.TableFile
    rows: np.ndarray
    columns: np.ndarray
    key: list


class Truth:
    """A truth file read into a table in `folder`, and the files matched to it (`match`), read a block of the
    truth's rows at a time (`blocks`). layer: the truth's layer, where it is an h5ad file; log: a line every
    30 s while a file is read."""

    def __init__(self, path, id_map=None, layer=None, labels=Labels(), folder=".", log=lambda line: None):
        self.path, self.id_map, self.labels, self.folder, self.log = path, id_map, labels, folder, log
        frame, self.genes, self.table, self.nonfinite = read_table(path, "truth", layer, labels, folder, log)
        self.frame = _keyed(frame, path, id_map, labels)

    def match(self, path, role="submission", layer=None):
        """`path`'s rows matched by (cell_type, sm_name) (or by id where neither file names its pairs and there
        is no id_map), its genes by name: a `Matched`. layer: its layer, where it is an h5ad file."""
        frame, genes, table, nonfinite = read_table(path, role, layer, self.labels, self.folder, self.log)
        frame, truth = _keyed(frame, path, self.id_map, self.labels), self.frame
        key = schemas.PAIR if all(set(schemas.PAIR) <= set(f.columns) for f in (frame, truth)) else ["id"]
        if key == ["id"] and not all("id" in f.columns for f in (frame, truth)):
            raise UserError(f"{path} and {self.path}: one names its pairs, the other only ids; "
                            "give --data-dir a folder with the id_map.csv that maps the ids to pairs")
        data.check_same_genes(genes, self.genes, path, self.path)
        for named, f in ((path, frame), (self.path, truth)):
            duplicated = f[key][f[key].duplicated()]
            if len(duplicated):
                raise UserError(f"{named}: {len(duplicated)} row(s) repeat a {'/'.join(key)} "
                                f"(e.g. {duplicated.head(3).values.tolist()}); keep one per pair")
        truth_keys, keys = (list(map(tuple, f[key].to_numpy().tolist())) for f in (truth, frame))
        differ = schemas.differences(keys, truth_keys)
        if differ:
            raise UserError(f"{path}: its rows differ from {self.path}'s: {differ}; score a submission of the same pairs")
        for error in (nonfinite, self.nonfinite):
            if error:
                raise error
        row = {k: i for i, k in enumerate(keys)}
        column = {gene: i for i, gene in enumerate(genes)}
        return Matched(table, np.array([row[k] for k in truth_keys], np.int64),
                       np.array([column[g] for g in self.genes], np.int64), key)

    def pairs(self, matched):
        """The (cell_type, sm_name) of each truth row as `matched` was matched; by id: cell_type "all" and the
        id as sm_name."""
        pairs = self.frame[matched.key].reset_index(drop=True)
        if matched.key == ["id"]:
            pairs = pairs.assign(cell_type="all", sm_name=pairs["id"].astype(str))
        return pairs[schemas.PAIR]

    def values(self, rows, *matched):
        """The truth's values of `rows` (increasing truth rows) and each matched file's for them, in the
        truth's gene order: float64 arrays in gene order (each gene's rows together), the layout row sums
        add in the same order in whatever block."""
        out = [np.asfortranarray(tablefile.read_rows(self.table, rows))]
        for file in matched:
            wanted = file.rows[rows]
            order = np.argsort(wanted, kind="stable")
            values = np.empty((len(rows), file.table.shape[1]), np.float64)
            values[order] = tablefile.read_rows(file.table, wanted[order])
            out.append(np.asfortranarray(values[:, file.columns]))
        return out

    def blocks(self, *matched):
        """(truth rows, the truth's values, each matched file's) of consecutive blocks of ROWS_AT_ONCE truth rows."""
        for start in range(0, len(self.frame), ROWS_AT_ONCE):
            rows = np.arange(start, min(start + ROWS_AT_ONCE, len(self.frame)))
            yield rows, *self.values(rows, *matched)
