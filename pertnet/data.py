"""Reading and validating the competition's files; writing submissions.

Schemas (SPEC.md section 1):

de_train.parquet   one row per training (cell_type, sm_name) pair
    cell_type    str   cell type, e.g. "NK cells"
    sm_name      str   compound name
    sm_lincs_id  str   compound LINCS id
    SMILES       str   compound structure
    control      bool  True for the positive controls
    <gene> ...   float one column per gene: limma's sign(logFC) * -log10(p); every column
                       that is not one of the five above is a gene
id_map.csv         the pairs to predict
    id           int   row id of the submission
    cell_type    str
    sm_name      str
sample_submission.csv
    id           int   the id_map ids
    <gene> ...   float the gene columns, in the order a submission must use
<stage>_submission.csv (what predict writes; also stage_2's pseudolabel source)
    id, then the genes in sample_submission order; one row per id_map row, in id_map order
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv

from pertnet import UserError
from pertnet.files import atomic_path

METADATA = ["cell_type", "sm_name", "sm_lincs_id", "SMILES", "control"]
PAIR = ["cell_type", "sm_name"]
TRAIN_FILE, ID_MAP_FILE, SAMPLE_FILE = "de_train.parquet", "id_map.csv", "sample_submission.csv"
SOURCE_HINT = ("download them from the Kaggle competition 'open-problems-single-cell-perturbations' "
               "into the data folder, or run with --demo to use the synthetic dataset")


def require_inputs(data_dir, names=(TRAIN_FILE, ID_MAP_FILE, SAMPLE_FILE)):
    """Fail with one message naming every missing input file and where they come from."""
    missing = [name for name in names if not (Path(data_dir) / name).is_file()]
    if missing:
        raise UserError(f"missing input file(s) in {data_dir}/: {', '.join(missing)}; {SOURCE_HINT}")


def _read(path, reader):
    try:
        frame = reader(path)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except Exception as error:  # any parser failure: say which file, not a library traceback
        raise UserError(f"{path}: not a readable {Path(path).suffix[1:]} file ({error})") from None
    if frame.empty:
        raise UserError(f"{path}: the file has no rows")
    return frame


def _require_columns(frame, columns, path):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def _check_unique_pairs(frame, path):
    duplicated = frame[frame.duplicated(PAIR, keep=False)][PAIR].drop_duplicates()
    if len(duplicated):
        shown = "; ".join(f"({c}, {s})" for c, s in duplicated.head(5).itertuples(index=False))
        raise UserError(f"{path}: {len(duplicated)} (cell_type, sm_name) pair(s) occur more than once: "
                        f"{shown}; keep one row per pair")


def gene_columns(frame):
    """Every column that is not metadata (never a hard-coded first gene)."""
    return [c for c in frame.columns if c not in METADATA and c != "id" and c != "split"]


def read_de_train(path):
    """de_train as a frame with validated metadata and finite float32 gene columns."""
    frame = _read(path, pd.read_parquet)
    _require_columns(frame, PAIR, path)
    genes = gene_columns(frame)
    not_numeric = [g for g in genes if not pd.api.types.is_numeric_dtype(frame[g])]
    if not_numeric:
        raise UserError(f"{path}: {len(not_numeric)} non-metadata column(s) are not numeric "
                        f"(e.g. {', '.join(map(str, not_numeric[:5]))}); gene columns must hold numbers "
                        f"and the only metadata columns are {', '.join(METADATA)}")
    if not genes:
        raise UserError(f"{path}: no gene columns (every column besides {', '.join(METADATA)} is a gene)")
    _check_unique_pairs(frame, path)
    values = frame[genes].to_numpy(dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise UserError(f"{path}: {bad.sum()} NaN or infinite value(s) in {len(set(rows))} row(s) "
                        f"(e.g. rows {sorted(set(rows.tolist()))[:5]}, genes "
                        f"{[genes[c] for c in sorted(set(cols.tolist()))[:5]]}); fill or drop them")
    return pd.concat([frame[PAIR].reset_index(drop=True).astype(str),
                      pd.DataFrame(values, columns=genes)], axis=1)


def read_id_map(path):
    frame = _read(path, pd.read_csv)
    _require_columns(frame, ["id", *PAIR], path)
    if frame["id"].duplicated().any():
        raise UserError(f"{path}: duplicate ids {sorted(frame['id'][frame['id'].duplicated()].unique())[:5]}; "
                        "each id must occur once")
    _check_unique_pairs(frame, path)
    return frame[["id", *PAIR]].astype({"cell_type": str, "sm_name": str})


def read_gene_order(path, id_map=None):
    """The gene columns of sample_submission.csv, the order a submission must use."""
    frame = _read(path, lambda p: pd.read_csv(p, nrows=None))
    _require_columns(frame, ["id"], path)
    if id_map is not None and sorted(frame["id"]) != sorted(id_map["id"]):
        raise UserError(f"{path}: its ids differ from id_map.csv's; use the sample_submission that "
                        "belongs to this id_map")
    return [c for c in frame.columns if c != "id"]


def check_same_genes(genes, expected, path, expected_source):
    """Genes in `path` must be the set in `expected_source`; say how many differ and show a few."""
    missing, extra = sorted(set(expected) - set(genes)), sorted(set(genes) - set(expected))
    if missing or extra:
        raise UserError(f"{path}: gene columns differ from {expected_source}: {len(missing)} missing "
                        f"(e.g. {', '.join(missing[:3]) or '-'}), {len(extra)} extra "
                        f"(e.g. {', '.join(extra[:3]) or '-'}); use files with the same genes")


def read_submission(path, id_map, genes):
    """A submission's values as float32 (rows in id_map order, columns in `genes` order)."""
    frame = _read(path, pd.read_csv)
    _require_columns(frame, ["id"], path)
    check_same_genes(gene_columns(frame), genes, path, "de_train.parquet")
    if sorted(frame["id"]) != sorted(id_map["id"]) or frame["id"].duplicated().any():
        raise UserError(f"{path}: its ids do not match id_map.csv's (one row per id); rerun the "
                        "stage that wrote it on the current id_map")
    values = frame.set_index("id").loc[id_map["id"], genes].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise UserError(f"{path}: {int((~np.isfinite(values)).sum())} NaN or infinite value(s)")
    return values


def write_submission(path, ids, genes, values):
    """id + genes as CSV, atomically; written by pyarrow (several times faster than pandas)."""
    table = pa.table({"id": pa.array(np.asarray(ids)),
                      **{g: values[:, i] for i, g in enumerate(genes)}})
    with atomic_path(path) as tmp:
        pa.csv.write_csv(table, tmp)
    return Path(path)
