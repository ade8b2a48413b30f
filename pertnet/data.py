"""Reading and validating the competition's files (formats: pertnet/schemas.py); writing submissions.

Every input is checked where it enters: a problem is a UserError naming the file, the column and
the rows at fault. With an h5ad training file (pertnet/h5ad.py) no sample_submission.csv is needed:
the gene order is its var_names.
"""
import contextlib
import csv
import io
import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq

from pertnet import memory, schemas, tablefile
from pertnet.errors import UserError
from pertnet.files import atomic_path
from pertnet.labels import Labels

TRAIN_FILE, ID_MAP_FILE, SAMPLE_FILE = "de_train.parquet", "id_map.csv", "sample_submission.csv"
MIN_TRAINING_ROWS = 2  # the fewest rows anything can be learnt from (a fold of cross-validation too)
TRAIN_H5AD = "de_train.h5ad"  # the Open Problems benchmark's training file (see pertnet/h5ad.py)
def _source_hint(names):
    """Where the input files come from; --train-file only where the training file is among them."""
    h5ad = " (or give the benchmark's de_train.h5ad with --train-file)" if TRAIN_FILE in names else ""
    return (f"download them from the Kaggle competition 'open-problems-single-cell-perturbations' into the "
            f"data folder{h5ad}, or run with --demo to use the synthetic dataset")


def require_inputs(data_dir, names=(TRAIN_FILE, ID_MAP_FILE, SAMPLE_FILE)):
    """Fail with one message naming every missing input file and where they come from."""
    if not Path(data_dir).is_dir():
        raise UserError(f"the data folder {data_dir}/ does not exist (it must hold {', '.join(names)}); "
                        f"{_source_hint(names)}, or pass --data-dir")
    missing = [name for name in names if not (Path(data_dir) / name).is_file()]
    if missing:
        raise UserError(f"missing input file(s) in {data_dir}/: {', '.join(missing)}; {_source_hint(names)}")


def read_checked(path, reader):
    """`reader(path)` of an input file; an empty, missing or unreadable file, or one without rows, is a
    UserError naming it."""
    kind = Path(path).suffix[1:]
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); download or write it again")
    try:
        frame = reader(path)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except Exception as error:  # any parser failure: say which file, not a library traceback
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path}: not a valid {kind} file ({first_line}); download or write it again "
                        f"as {kind}") from None
    if len(frame) == 0:
        raise UserError(f"{path}: the file has no rows (a header at most); download or write it again")
    return frame


def _csv_header(path):
    """The column names of a CSV file, without reading further than its first line."""
    with open(path, newline="") as lines:
        return next(csv.reader(lines), [])


def _require_columns(present, columns, path):
    present = list(present)
    missing = [c for c in columns if c not in present]
    if missing:
        found = ", ".join(map(str, present[:6])) + (", ..." if len(present) > 6 else "")
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (it has {found}); the file needs "
                        f"columns {', '.join(columns)}: add or rename them")


def _check_pairs(frame, path, labels, metadata=None):
    """Every canonical pair (labels.pairs) once; a repeated one is an error naming it, and the column of
    `metadata` (the file's other columns) that would tell the rows apart where one would."""
    duplicated = frame[frame.duplicated(schemas.PAIR, keep=False)][schemas.PAIR].drop_duplicates()
    if len(duplicated):
        shown = "; ".join(f"({c}, {s})" for c, s in duplicated.head(5).itertuples(index=False))
        undeclared = labels.repeated_only_for(metadata, frame[schemas.PAIR]) if metadata is not None else []
        fix = (f"they differ only in column {undeclared[0]}: declare it a label (--perturbation-columns "
               f"{','.join([*labels.perturbation, str(undeclared[0])])})" if undeclared else "keep one row per pair")
        if labels.replicates is None and metadata is not None:
            fix += ", or average replicates (--replicates mean)"
        raise UserError(f"{path}: {len(duplicated)} ({', '.join(labels.columns)}) combination(s) occur more than "
                        f"once: {shown}; {fix}")


def _check_numeric_genes(frame, genes, path):
    """Gene columns must be numbers. A text column that is mostly numbers is a gene column with bad
    cells (name them); one that is mostly not is an unknown metadata column (name it)."""
    # asked per dtype, not per column: frame[g] 18,211 times took 1.5 s
    numeric = {dtype: pd.api.types.is_numeric_dtype(dtype) for dtype in set(frame.dtypes)}
    dtypes = dict(zip(frame.columns, frame.dtypes))
    text = [g for g in genes if not numeric[dtypes[g]]]
    parsed = {g: pd.to_numeric(frame[g], errors="coerce") for g in text}
    unknown = [g for g in text if parsed[g].notna().mean() < 0.5]
    if unknown:
        raise UserError(f"{path}: unknown non-numeric column(s) {', '.join(map(str, unknown[:5]))}"
                        f"{' and more' if len(unknown) > 5 else ''}; the metadata columns are "
                        f"{', '.join(schemas.DE_TRAIN.names)} and every other column must be a numeric gene column: "
                        "declare them (--perturbation-columns, --cell-type-column) or drop them (--ignore-columns)")
    if text:
        gene = text[0]
        rows = np.flatnonzero(parsed[gene].isna() & frame[gene].notna())
        found = (f"holds text such as {frame[gene].iloc[rows[0]]!r} in row(s) {rows[:5].tolist()}" if len(rows)
                 else "stores its numbers as text")
        raise UserError(f"{path}: {len(text)} gene column(s) are not numeric (e.g. {', '.join(map(str, text[:5]))}); "
                        f"column {gene} {found}; store the genes as numbers")


def parquet_blocks(path, labels=Labels(), dtype=np.float64):
    """(the non-gene columns as a frame, the genes, their values as an iterator of (genes: a slice, values:
    (rows, genes in the block) as `dtype`)) of a parquet file, read a block of genes at a time
    (pertnet/tablefile.py's block size: memory holds a block, whatever the file's row groups). pandas' read
    of all 18,211 columns at once took three times the memory and twice the time. Text gene columns are an
    error that names them."""
    read_checked(path, lambda p: range(pq.ParquetFile(p).metadata.num_rows))  # every input's checks: a parquet file, rows
    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    index = (schema.pandas_metadata or {}).get("index_columns", [])  # a pandas index: not a gene
    genes = labels.genes([name for name in schema.names if name not in index], path)
    text = [gene for gene in genes if not pa.types.is_integer(schema.field(gene).type)
            and not pa.types.is_floating(schema.field(gene).type)]
    if text:
        _check_numeric_genes(file.read(columns=text).to_pandas(), text, path)
        raise UserError(f"{path}: gene column(s) {', '.join(text[:5])} hold true/false values; store the genes "
                        "as numbers")
    gene_set = set(genes)
    metadata = file.read(columns=[name for name in schema.names if name not in gene_set]).to_pandas()

    def blocks(file):
        width = tablefile.genes_at_once(file.metadata.num_rows)
        for start in range(0, len(genes), width):
            block = file.read(columns=genes[start:start + width]).combine_chunks().to_batches()[0]
            values = block.to_tensor(null_to_nan=True, row_major=False).to_numpy()
            yield slice(start, start + block.num_columns), values.astype(dtype, copy=False)  # rounded as astype rounds
        del file  # its footer: ~500 MB at 57,000 rows x 18,211 genes in 28 row groups, given back to the system
        memory.give_back()

    return metadata, genes, blocks(file)


def read_parquet(path, labels=Labels(), dtype=np.float64):
    """(the non-gene columns as a frame, the genes, their values as `dtype`) of a parquet file, in memory.
    Training reads float32 (what the method holds), scoring float64."""
    metadata, genes, blocks = parquet_blocks(path, labels, dtype)
    return metadata, genes, tablefile.from_blocks((len(metadata), len(genes)), blocks, dtype)


def read_de_train(path, labels=Labels()):
    """de_train as a frame with validated labels and finite float32 gene columns."""
    frame, genes, values = read_parquet(path, labels, np.float32)
    return _training(frame, genes, values, path, labels)


def _training(frame, genes, values, path, labels):
    _require_genes(frame, genes, path, labels)
    return _validated(frame, genes, np.asarray(values, np.float32), path, labels)


def _require_genes(metadata, genes, path, labels):
    labels.require([*metadata.columns, *genes], path)
    if not genes:
        raise UserError(f"{path}: no gene columns (every column besides the labels ({', '.join(labels.columns)}), "
                        f"{', '.join(schemas.DE_TRAIN.names[2:])} and --ignore-columns is a gene)")


def _training_pairs(metadata, path, labels):
    """The canonical pairs of the training rows (`Labels.pairs`), enough of them; each label combination named
    once unless --replicates mean will average it."""
    pairs = labels.pairs(metadata, path)
    if len(pairs) < MIN_TRAINING_ROWS:
        raise UserError(f"{path}: {len(pairs)} training row(s); the method needs at least {MIN_TRAINING_ROWS} "
                        "(cell type, perturbation) rows to learn from: add rows")
    if not (labels.replicates == "mean" and pairs.duplicated().any()):
        _check_pairs(pairs, path, labels, metadata.reset_index(drop=True))
    return pairs


def _validated(metadata, genes, values, path, labels):
    """The training frame (the canonical pairs, then float32 genes) of the rows' label columns (`metadata`, with
    the file's other non-gene columns) and values, once every label combination is named once (or, with
    --replicates mean, its rows averaged) and every value is finite."""
    pairs = _training_pairs(metadata, path, labels)
    if pairs.duplicated().any():  # --replicates mean
        replicates = Replicates(pairs, path)
        pairs, values = replicates.pairs, replicates.mean(values)
    check = ValueCheck(pairs, genes, path)
    check.block(slice(0, len(genes)), values)
    check.done()
    return pd.concat([pairs.reset_index(drop=True).astype(str),
                      pd.DataFrame(values, columns=genes, copy=False)], axis=1)


def training_values(path, labels=Labels(), layer=None):
    """A training file (parquet, or h5ad with `layer`: default sign_log10_pval) without holding its values: (its
    validated canonical pairs, the genes, their float32 values as an iterator of gene blocks, each checked by
    `ValueCheck`, dataset_id or None). With --replicates mean, each block's repeated
    label combinations are averaged as it comes."""
    if is_h5ad(path):
        from pertnet import h5ad

        metadata, genes, blocks, dataset_id = h5ad.observation_blocks(path, layer or h5ad.DEFAULT_LAYER)
        labels.require(metadata.columns, f"{path} (obs)", "its obs")
    else:
        (metadata, genes, blocks), dataset_id = parquet_blocks(path, labels, np.float32), None
        _require_genes(metadata, genes, path, labels)
    pairs = _training_pairs(metadata, path, labels)
    replicates = Replicates(pairs, path) if pairs.duplicated().any() else None  # --replicates mean
    pairs = pairs if replicates is None else replicates.pairs

    def checked():
        check = ValueCheck(pairs, genes, path)
        for columns, values in blocks:
            values = values if replicates is None else replicates.mean(values)
            check.block(columns, values)
            yield columns, values
        check.done()

    return pairs.reset_index(drop=True).astype(str), genes, checked(), dataset_id


class ValueCheck:
    """Training values checked a block of genes at a time: a NaN or infinite value is an error naming the rows
    and genes (of the first block with one); values beyond any signed log10 p-value are accepted, counted over
    every block and said in one line on stderr at `done`."""

    def __init__(self, pairs, genes, path):
        self.pairs, self.genes, self.path = pairs, genes, path
        self.extreme_rows, self.extreme_genes = np.zeros(len(pairs), bool), []
        self.extreme, self.largest = 0, 0.0

    def block(self, columns, values):
        bad = ~np.isfinite(values)
        if bad.any():
            rows, cols = (sorted(set(axis.tolist())) for axis in np.nonzero(bad))
            shown = "; ".join(f"({c}, {s})" for c, s in self.pairs.iloc[rows[:3]].itertuples(index=False))
            raise UserError(f"{self.path}: {bad.sum()} NaN or infinite value(s) in {len(rows)} row(s) and "
                            f"{len(cols)} gene(s) (e.g. rows {rows[:5]}: {shown}; genes "
                            f"{', '.join(str(self.genes[columns.start + c]) for c in cols[:5])}); fill or drop them")
        extreme = np.abs(values) > SIGNED_LOG10_P_LIMIT
        if extreme.any():
            self.extreme += int(extreme.sum())
            self.extreme_rows |= extreme.any(axis=1)
            self.extreme_genes += [self.genes[columns.start + c] for c in np.flatnonzero(extreme.any(axis=0))]
            self.largest = max(self.largest, float(np.abs(values).max()))

    def done(self):
        """One line on stderr where values lie beyond any signed log10 p-value: accepted, but suspect."""
        if self.extreme:
            rows = np.flatnonzero(self.extreme_rows).tolist()
            shown = "; ".join(f"({c}, {s})" for c, s in self.pairs.iloc[rows[:3]].itertuples(index=False))
            print(f"warning: {self.path}: {self.extreme} value(s) beyond +-{SIGNED_LOG10_P_LIMIT}, which no signed "
                  f"log10 p-value reaches (largest {self.largest:.3g}), in {len(rows)} row(s) (e.g. rows {rows[:5]}: "
                  f"{shown}) and {len(self.extreme_genes)} gene(s) (e.g. {', '.join(map(str, self.extreme_genes[:5]))}); "
                  "the models will learn them: check the file", file=sys.stderr)


# |sign(logFC) * log10(p)| <= 323.3: the smallest positive double is 4.9e-324. Beyond that a value is
# not a signed log10 p-value at all (another unit, a sentinel, a broken export), and predictions follow it.
SIGNED_LOG10_P_LIMIT = 324


class Replicates:
    """--replicates mean: one row per label combination, the mean of its rows (what a pseudobulk does), said in
    one line when made; `mean` averages a block of genes (every gene's means are its own)."""

    def __init__(self, pairs, path):
        self.groups = pairs.groupby(schemas.PAIR, sort=False).ngroup().to_numpy()
        self.counts = np.bincount(self.groups)
        self.pairs = pairs.iloc[np.unique(self.groups, return_index=True)[1]].reset_index(drop=True)
        print(f"{path}: departing from the data as given: {int((self.counts > 1).sum())} label combination(s) repeat "
              f"in {int(self.counts[self.counts > 1].sum())} rows; each is the mean of its rows (--replicates mean)",
              flush=True)

    def mean(self, values):
        """(label combinations, genes) float32 means of (rows, genes) values."""
        sums = np.zeros((len(self.counts), values.shape[1]), np.float64)
        np.add.at(sums, self.groups, values)
        return (sums / self.counts[:, None]).astype(np.float32)


def update_digest(digest, frame, genes):
    """Add a training frame (its canonical labels and float32 values) to a hashlib digest: what decides a
    model's or a cross-validation's numbers, for the caches and checks that must not serve other data."""
    digest.update(np.ascontiguousarray(frame[genes].to_numpy(np.float32)).tobytes())
    digest.update("\n".join(frame["cell_type"] + "/" + frame["sm_name"]).encode())
    return digest


def training_file(data_dir, train_file=None):
    """The training file: --train-file if given, else de_train.parquet, else de_train.h5ad (benchmark)."""
    if train_file is not None:
        return Path(train_file)
    parquet, anndata = Path(data_dir) / TRAIN_FILE, Path(data_dir) / TRAIN_H5AD
    return anndata if anndata.is_file() and not parquet.is_file() else parquet


def is_h5ad(path):
    """Whether a file is read as AnnData (.h5ad) rather than as a table: the one place that decides."""
    return Path(path).suffix == ".h5ad"


def training_data(data, layer=None, labels=Labels()):
    """(validated training frame, dataset_id or None) from a de_train-shaped DataFrame or an AnnData in
    memory (layer: as h5ad.observations chooses it), with the messages the files get. A DataFrame's genes
    are its columns that are neither labels nor declared metadata (`Labels.genes`)."""
    if isinstance(data, pd.DataFrame):
        genes = labels.genes(list(data.columns), "the training DataFrame")
        _check_numeric_genes(data, genes, "the training DataFrame")
        metadata = data[[c for c in data.columns if c not in set(genes)]]
        return _training(metadata, genes, data[genes].to_numpy(np.float32), "the training DataFrame", labels), None
    if not hasattr(data, "obs") or not hasattr(data, "layers"):
        raise UserError(f"the training data: expected a pandas DataFrame or an AnnData, got {type(data).__name__}")
    from pertnet import h5ad

    obs, genes, values, dataset_id = h5ad.observations(data, layer, "the training AnnData")
    return _from_observations(obs, genes, values, "the training AnnData", labels), dataset_id


def _from_observations(obs, genes, values, path, labels):
    labels.require(obs.columns, f"{path} (obs)", "its obs")
    return _validated(obs, genes, values, path, labels)


def read_id_map(path, labels=Labels()):
    return id_map_frame(read_checked(path, pd.read_csv), path, labels)


def id_map_frame(frame, path, labels=Labels()):
    """The pairs to predict: id, the canonical pair (cell_type, sm_name: `Labels.pairs`) and the label columns
    as given (`Labels.with_given`), once the ids are whole and distinct and each label combination is named once."""
    _require_columns(frame.columns, ["id"], path)
    labels.require(frame.columns, path)
    if not pd.api.types.is_integer_dtype(frame["id"]):
        raise UserError(f"{path}: column id must hold whole numbers (found e.g. {frame['id'].tolist()[0]!r})")
    if frame["id"].duplicated().any():
        raise UserError(f"{path}: duplicate ids {sorted(frame['id'][frame['id'].duplicated()].unique().tolist())[:5]}; "
                        "each id must occur once")
    pairs = labels.pairs(frame, path)
    _check_pairs(pairs, path, labels)
    return labels.with_given(frame, pd.concat([frame["id"].reset_index(drop=True), pairs], axis=1))


def pairs_frame(pairs, labels=Labels()):
    """Pairs to predict given in memory (a DataFrame, or an AnnData's obs) as `id_map_frame` makes them (ids 0,
    1, ... where it has none), validated as id_map.csv is."""
    if hasattr(pairs, "obs"):  # an AnnData: its obs
        pairs = pairs.obs
    if not isinstance(pairs, pd.DataFrame):
        raise UserError(f"the pairs to predict: expected a pandas DataFrame with columns {', '.join(labels.columns)}, "
                        f"got {type(pairs).__name__}")
    if "id" not in pairs.columns:
        pairs = pairs.assign(id=range(len(pairs)))
    return id_map_frame(pairs, "the pairs to predict", labels)


def read_gene_order(path, id_map=None, log=print):
    """The gene columns of sample_submission.csv, the order a submission must use.

    The rows always follow id_map.csv: a sample_submission of another test set (the original's
    flow: replace id_map.csv, keep the competition's sample_submission) gives its gene order
    alone, and a one-line note says so. Only the header and the id column are parsed, never
    the values (0.05 s instead of 4 s).
    """
    columns = read_checked(path, _csv_header)
    _require_columns(columns, schemas.SAMPLE_SUBMISSION.required, path)
    if id_map is not None:
        ids = read_checked(path, lambda p: _one_column(p, columns.index("id")))["id"]
        differ = schemas.differences(ids.tolist(), id_map["id"].tolist())
        if differ or ids.duplicated().any():
            log(f"note: {path} belongs to another test set (its ids differ from id_map.csv's: "
                f"{differ or 'repeated ids'}): only its gene order is used; the rows follow id_map.csv")
    return [c for c in columns if c != "id"]


def _one_column(path, index):
    """Column `index` of a CSV of plain fields, cut from each line without parsing the rest."""
    with open(path) as lines:
        return pd.read_csv(io.StringIO("\n".join(line.rstrip("\n").split(",", index + 1)[index] for line in lines)))


def _check_same_ids(ids, expected, path, fix):
    """`ids` must be `expected` (id_map's), each once; say how many are missing / extra / repeated."""
    ids = pd.Series(ids)
    differ = schemas.differences(ids.tolist(), list(expected))
    repeated = sorted(set(ids[ids.duplicated()].tolist()))
    if differ or repeated:
        raise UserError(f"{path}: its ids differ from id_map.csv's: {differ or '0 missing, 0 extra'}, "
                        f"{len(repeated)} repeated (e.g. {', '.join(map(str, repeated[:3])) or '-'}); {fix}")


def check_same_genes(genes, expected, path, expected_source):
    """Genes in `path` must be the set in `expected_source`; say how many differ and show a few."""
    differ = schemas.differences(genes, expected)
    if differ:
        raise UserError(f"{path}: gene columns differ from {expected_source}: {differ}; use files with the same genes")


SUBMISSION_BLOCK_BYTES = 16 * 2 ** 20  # a submission's rows parsed at a time, as float64: 115 rows of 18,211 genes


def submission_blocks(path, id_map, genes):
    """A submission's values a block of rows at a time, in the file's row order: (each row's position in
    id_map, its float32 values in `genes` order). The header is checked at once; the rows as they are read
    (as many fields as the header, whole ids, finite values) and, after the last, that they are id_map's
    ids, each once (a UserError naming the file). Each block is parsed by NumPy's parser as float64 and
    rounded to float32 (pyarrow's reader held about 40 times its block on a file of 10,000 columns)."""
    columns = read_checked(path, _csv_header)
    _require_columns(columns, schemas.SUBMISSION.required, path)
    check_same_genes([c for c in columns if c != "id"], genes, path, "de_train.parquet")
    return _submission_rows(path, pd.Series(np.arange(len(id_map)), index=id_map["id"].to_numpy()), genes, columns)


def _submission_rows(path, position, genes, columns):
    fix = "rerun the stage that wrote it on the current id_map"
    height = max(1, SUBMISSION_BLOCK_BYTES // (8 * len(columns)))
    picked = [columns.index(gene) for gene in genes]
    seen, done = [], 0
    with open(path) as lines:
        next(lines)  # the header
        while block := list(itertools.islice(lines, height)):
            table = read_checked(path, lambda _: np.loadtxt(block, delimiter=",", ndmin=2, quotechar='"'))
            if table.shape[1] != len(columns):
                raise UserError(f"{path}: its rows have {table.shape[1]} fields but its header names {len(columns)} "
                                "columns; write it again")
            ids = table[:, columns.index("id")]
            if not np.array_equal(ids, np.round(ids)):
                raise UserError(f"{path}: column id must hold whole numbers (found e.g. {ids[ids != np.round(ids)][0]!r})")
            seen.append(ids.astype(np.int64))
            done += len(ids)
            if done > len(position) or not np.isin(seen[-1], position.index).all():
                break  # some id is not id_map's, or repeats: said below
            values = table[:, picked].astype(np.float32)
            if not np.isfinite(values).all():
                raise UserError(f"{path}: {int((~np.isfinite(values)).sum())} NaN or infinite value(s) (e.g. in the row "
                                f"of id {seen[-1][~np.isfinite(values).all(axis=1)][0]}); {fix}")
            yield position.loc[seen[-1]].to_numpy(), values
    _check_same_ids(np.concatenate(seen) if seen else [], position.index, path, fix)


def interval_paths(submission):
    """The files `predict --interval` writes beside a CSV submission <name>_submission.csv (or <name>.csv):
    {lower, upper, uncertainty: <name>_<kind>.csv}."""
    submission = Path(submission)
    name = submission.stem.removesuffix("_submission")
    return {kind: submission.with_name(f"{name}_{kind}.csv") for kind in ("lower", "upper", "uncertainty")}


def write_with_intervals(submission, id_map, genes, blocks, level):
    """The submission and, beside it, its bounds and uncertainty scores, from (rows: a slice, values,
    `intervals.Bounds` of those rows, columns in `genes` order) blocks as they come. The three tables are
    written side by side, a block at a time (`write_tables`)."""
    paths = interval_paths(submission)
    uncertainty = np.empty(len(id_map))

    def tables():
        for rows, values, bounds in blocks:
            uncertainty[rows] = bounds.uncertainty
            yield rows, (values, bounds.lower, bounds.upper)

    write_tables((submission, paths["lower"], paths["upper"]), id_map["id"], genes, tables())
    scores = id_map[schemas.UNCERTAINTY.names[:3]].assign(uncertainty=uncertainty, level=level)
    with atomic_path(paths["uncertainty"]) as tmp:
        scores.to_csv(tmp, index=False)
    return Path(submission)


def read_uncertainty(path):
    """An uncertainty file (schemas.UNCERTAINTY): (the frame, its one level)."""
    frame = read_checked(path, pd.read_csv)
    _require_columns(frame.columns, schemas.UNCERTAINTY.required, path)
    levels = frame["level"].unique()
    if len(levels) != 1 or not 0 < float(levels[0]) < 1:
        raise UserError(f"{path}: the level column must hold one coverage level between 0 and 1, found "
                        f"{sorted(levels)[:3]}; rerun `python -m predict --interval LEVEL`")
    return frame.astype({column: str for column in schemas.PAIR}), float(levels[0])


def csv_blocks(path, labels=Labels()):
    """(the non-gene columns, the genes, their float64 values as (rows: a slice, values) blocks of rows) of a CSV
    table of one row per pair, read by pandas' C parser a block of rows (about SUBMISSION_BLOCK_BYTES as float64)
    at a time: memory holds a block, not the file. The non-gene columns are read first, in a pass of their own."""
    columns = read_checked(path, _csv_header)
    genes = [c for c in columns if c not in labels.not_genes()]
    others = [c for c in columns if c not in set(genes)]
    frame = read_checked(path, lambda csv: pd.read_csv(csv, usecols=others or columns[:1], low_memory=False))
    frame = frame[others]  # (a gene was read where there are no other columns: its rows counted)

    def blocks():
        height, done = max(1, SUBMISSION_BLOCK_BYTES // (8 * len(columns))), 0
        with pd.read_csv(path, usecols=genes, chunksize=height, low_memory=False) as chunks:
            for chunk in chunks:
                yield slice(done, done + len(chunk)), chunk[genes].to_numpy(np.float64)
                done += len(chunk)

    return frame, genes, blocks()


CSV_ROWS_AT_ONCE = 128  # rows formatted at a time: the text of 255 x 18,211 values took 160 MB at once, 138 MB by 128


def write_submission(path, ids, genes, values):
    """id + genes as CSV, atomically. values: an array, or (rows: a slice, values) blocks as they come (a stage's
    `predict_blocks`), written one after the other."""
    blocks = [(slice(0, len(ids)), values)] if isinstance(values, np.ndarray) else values
    write_tables([path], ids, genes, ((rows, [block]) for rows, block in blocks))
    return Path(path)


def write_tables(paths, ids, genes, blocks):
    """Tables of id + genes as CSV, atomically, side by side: blocks (rows: a slice, [values for each path]) as
    they come. Written by pyarrow (several times faster than pandas, and it formats numbers without the GIL,
    so two cores write two tables in about the time of one), from columns made contiguous first (twice as
    fast again as from strided ones). Every file appears complete at the end, or none does."""
    ids = np.asarray(ids)
    writers = [None] * len(paths)
    with contextlib.ExitStack() as files, ThreadPoolExecutor(min(len(paths), os.cpu_count())) as pool:
        temporary = [files.enter_context(atomic_path(path)) for path in paths]

        def write(number, rows, block):
            block = np.asfortranarray(block)
            table = pa.table({"id": pa.array(ids[rows]), **{g: block[:, i] for i, g in enumerate(genes)}})
            writers[number] = writers[number] or pa.csv.CSVWriter(temporary[number], table.schema)
            writers[number].write_table(table, max_chunksize=CSV_ROWS_AT_ONCE)

        for rows, arrays in blocks:
            list(pool.map(write, range(len(paths)), [rows] * len(paths), arrays))
        for writer in writers:
            writer.close()
