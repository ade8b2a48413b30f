"""A submission and a truth file, read and matched: rows by (cell_type, sm_name), or by id through an
id_map; genes by name. What `python -m evaluate` scores (pertnet/evaluation.py)."""
from pathlib import Path

import numpy as np
import pandas as pd

from pertnet import data, outputs, schemas
from pertnet.errors import UserError
from pertnet.labels import Labels


def read_table(path, role, layer=None, labels=Labels()):
    """(the non-gene columns as a frame, the genes, their values) of a prediction file (pertnet/outputs.py's
    formats, by suffix) or a parquet table. layer: an h5ad's layer (default: `prediction` in a prediction
    file, else sign_log10_pval)."""
    fmt = outputs.of_file(path)
    try:
        if fmt is None and Path(path).suffix == ".parquet":
            return data.read_parquet(path, labels)
        return (fmt or outputs.FORMATS[outputs.SUBMISSION]).read(path, layer, labels)
    except (TypeError, ValueError):
        raise UserError(f"{path}: the {role}'s gene columns must hold numbers") from None


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


def _finite(values, path, role):
    """float64 values in the layout pandas gave (each gene contiguous), so that row sums add in the
    same order and scores match earlier reports to the last digit; NaN and infinities are errors."""
    values = np.asfortranarray(values, np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = sorted(set(np.nonzero(bad)[0].tolist()))
        raise UserError(f"{path}: {int(bad.sum())} NaN or infinite value(s) in {len(rows)} row(s) of the {role} "
                        f"(e.g. rows {rows[:5]}); every prediction must be a number")
    return values


def align(submission_path, truth_path, id_map=None, layer=None, submission_layer=None, labels=Labels()):
    """Rows matched by (cell_type, sm_name) (or by id where neither file names its pairs and there is
    no id_map), genes by name. Returns (pairs frame in the truth's row order, predictions, truth, genes).
    layer: the truth's layer, where it is an h5ad file (submission_layer: the submission's). Only the
    narrow frames of row names are merged; the values are picked with index arrays."""
    tables = {}
    for role, path in (("submission", submission_path), ("truth", truth_path)):
        frame, genes, values = read_table(path, role, layer if role == "truth" else submission_layer, labels)
        tables[role] = _keyed(frame, path, id_map, labels), genes, values
    (submission, submission_genes, predicted), (truth, genes, true) = tables["submission"], tables["truth"]
    key = schemas.PAIR if all(set(schemas.PAIR) <= set(f.columns) for f in (submission, truth)) else ["id"]
    if key == ["id"] and not all("id" in f.columns for f in (submission, truth)):
        raise UserError(f"{submission_path} and {truth_path}: one names its pairs, the other only ids; "
                        "give --data-dir a folder with the id_map.csv that maps the ids to pairs")
    data.check_same_genes(submission_genes, genes, submission_path, truth_path)
    for path, frame in ((submission_path, submission), (truth_path, truth)):
        duplicated = frame[key][frame[key].duplicated()]
        if len(duplicated):
            raise UserError(f"{path}: {len(duplicated)} row(s) repeat a {'/'.join(key)} "
                            f"(e.g. {duplicated.head(3).values.tolist()}); keep one per pair")
    truth_keys, submission_keys = (list(map(tuple, f[key].to_numpy().tolist())) for f in (truth, submission))
    differ = schemas.differences(submission_keys, truth_keys)
    if differ:
        raise UserError(f"{submission_path}: its rows differ from {truth_path}'s: {differ}; "
                        "score a submission of the same pairs")
    row = {k: i for i, k in enumerate(submission_keys)}
    column = {gene: i for i, gene in enumerate(submission_genes)}
    predicted = predicted[np.ix_([row[k] for k in truth_keys], [column[g] for g in genes])]  # the truth's order
    pairs = truth[key].reset_index(drop=True)
    if key == ["id"]:
        pairs = pairs.assign(cell_type="all", sm_name=pairs["id"].astype(str))
    return pairs[schemas.PAIR], _finite(predicted, submission_path, "submission"), _finite(true, truth_path, "truth"), genes


