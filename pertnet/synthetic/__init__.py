"""Synthetic stand-in for the competition data, with a hidden truth for the test pairs.

The real values are limma's sign(logFC) * -log10(p).  Each (cell type, compound)
pair here gets a latent z-score, a structured effect plus noise, mapped the same
way.  This keeps the real schema, pair layout and heavy tails, and gives the
pipeline structure to learn and a truth to score against, without the real data.

The effect of compound c in cell type t on the genes is

    potency_c * [P_c W1 + (P_c * Q_t) W2] + B_t W3

with compound latents P, cell-type latents Q (interaction), a cell-type baseline B
and gene loadings W.  About 10 % of the compounds, the two controls among them,
are potent: several times stronger and spread over all factors, so their rows
are large and broad, as in the real data.  In a screen with doses (`screen_design(...,
doses=[...])`), potency_c is scaled by a Hill curve of the dose, dose / (dose + EC50_c), each
compound with its own EC50: a dose-response signal.
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import log_ndtr
from scipy.stats import false_discovery_control

from pertnet import h5ad, schemas
from pertnet.files import atomic_path
from pertnet.metrics import mrrmse

RESOURCES = Path(__file__).parent.parent / "resources"
META = [name for name in schemas.DE_TRAIN.names if name != "split"]  # the competition's de_train metadata

# Calibrated so the training rows look like the real de_train (see `stats`).
N_FACTORS = 16
FACTORS_PER_COMPOUND = 2  # ordinary compounds hit few gene programs, potent ones all
PROGRAM_DENSITY = 0.06  # fraction of genes a factor drives strongly
BACKGROUND_LOADING = 0.4  # weak loading of every factor on every gene
COMPOUND_SCALE = 0.59
INTERACTION_SCALE = 0.2
BASELINE_SCALE = 0.45
POTENCY_SD = 0.3
POTENT_FRACTION = 0.1
POTENT_SCALE = 2.8
POTENT_RANGE = 1.8  # potent potencies are spread over POTENT_SCALE / RANGE .. * RANGE
GENE_SCALE_SD = 0.2
NOISE_SD = 0.8
CAP = 180.0
ROWS_AT_ONCE = 2048  # a larger screen is drawn and written a block of rows at a time (a row group each)
EC50_LOG10_RANGE = (-1.5, 0.5)  # with doses: each compound's EC50, log-uniform over these powers of ten

# The benchmark's h5ad files only (as_h5ad): fields beyond the parquet values, drawn from their own stream.
STANDARD_ERROR = 0.15  # median per-gene standard error of logFC; logFC = z * the gene's standard error
STANDARD_ERROR_SD = 0.4  # log-normal spread of the standard errors over genes
DE_CUTOFF = 0.05  # is_de: P.Value below it; is_de_adj: adj.P.Value below it
DONORS = ("donor_0", "donor_1", "donor_2")  # uns single_cell_obs: made-up cells per pair and donor
CELLS_PER_DONOR = 10  # their mean count


def gene_names(n_genes: int) -> list[str]:
    """Zero-padded names, so alphabetical order is numeric order."""
    width = len(str(n_genes))
    return [f"G{i:0{width}d}" for i in range(1, n_genes + 1)]


def signed_log10_p(z: np.ndarray) -> np.ndarray:
    """sign(z) * -log10(two-sided normal p), via log_ndtr so huge |z| never gives log(0).

    Keeps the dtype of z and works in place where it can, to stay light at 18k genes.
    """
    values = log_ndtr(-np.abs(z))
    values += np.log(2.0)
    values /= -np.log(10.0)
    np.minimum(values, CAP, out=values)
    values *= np.sign(z)
    return values


def _potency(compounds: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-compound potency and potent flag; the controls are always potent.

    Potent potencies are a fixed geometric ladder in random order, so every seed
    has a few very strong rows and the statistics barely move between seeds.
    """
    n = len(compounds)
    potent = compounds["control"].to_numpy(dtype=bool).copy()
    n_potent = round(POTENT_FRACTION * n)
    potent[rng.choice(np.flatnonzero(~potent), n_potent - potent.sum(), replace=False)] = True
    potency = np.exp(rng.normal(0.0, POTENCY_SD, n))
    ladder = np.geomspace(1 / POTENT_RANGE, POTENT_RANGE, n_potent)
    potency[potent] = POTENT_SCALE * rng.permutation(ladder)
    return potency, potent


def _z_scores(compounds: pd.DataFrame, pairs: pd.DataFrame, n_genes: int,
              rng: np.random.Generator, seed: int = 0):
    """Latent z-scores (pairs x genes): structured effect plus iid noise, as (rows: a slice, z) blocks of
    ROWS_AT_ONCE rows (one block for a table of that many rows or fewer), each drawn in turn from `rng`."""
    cell_types = sorted(pairs["cell_type"].unique())
    k = N_FACTORS
    potency, potent = _potency(compounds, rng)

    # Compound latents: ordinary compounds use a few factors, potent ones all of them.
    p_latent = rng.standard_normal((len(compounds), k))
    for row in np.flatnonzero(~potent):
        p_latent[row, rng.permutation(k)[FACTORS_PER_COMPOUND:]] = 0.0
    p_latent *= np.sqrt(k) / np.linalg.norm(p_latent, axis=1, keepdims=True)
    q_latent = rng.standard_normal((len(cell_types), k))
    b_latent = rng.standard_normal((len(cell_types), k))

    # Loadings: each factor drives a sparse gene program strongly and all genes weakly,
    # which gives ordinary compounds a few large values and potent ones broad effects.
    program = rng.random((3 * k, n_genes)) < PROGRAM_DENSITY
    signs = rng.choice([-1.0, 1.0], size=(3 * k, n_genes))
    gene_scale = np.exp(rng.normal(0.0, GENE_SCALE_SD, n_genes))
    loadings = signs * (BACKGROUND_LOADING + program / np.sqrt(PROGRAM_DENSITY)) * gene_scale / np.sqrt(k)

    c = pd.Index(compounds["sm_name"]).get_indexer(pairs["sm_name"])
    t = pd.Index(cell_types).get_indexer(pairs["cell_type"])
    scaled = potency[c, None] * p_latent[c]
    if "dose" in pairs.columns:  # the EC50s from a stream of their own: a screen without doses keeps its values
        ec50 = 10.0 ** np.random.default_rng([seed, 3]).uniform(*EC50_LOG10_RANGE, len(compounds))
        dose = pairs["dose"].to_numpy(np.float64)
        scaled *= (dose / (dose + ec50[c]))[:, None]
    features = np.hstack([
        COMPOUND_SCALE * scaled,
        INTERACTION_SCALE * scaled * q_latent[t],
        BASELINE_SCALE * b_latent[t],
    ]).astype(np.float32)
    loadings = loadings.astype(np.float32)
    for start in range(0, len(pairs), ROWS_AT_ONCE):
        rows = slice(start, min(start + ROWS_AT_ONCE, len(pairs)))
        noise = rng.standard_normal((rows.stop - start, n_genes), dtype=np.float32)
        yield rows, features[rows] @ loadings + NOISE_SD * noise


def _write_parquet(path, meta: pd.DataFrame, values: np.ndarray, genes: list[str], writer=None):
    """Metadata columns then one float64 column per gene, built in arrow directly (going through a pandas
    frame of 18k columns takes several seconds); as a row group of `writer` (a pq.ParquetWriter) where given."""
    table = pa.Table.from_pandas(meta, preserve_index=False)
    by_gene = np.ascontiguousarray(values.T, dtype=np.float64)
    table = pa.Table.from_arrays([*table.columns, *(pa.array(col) for col in by_gene)],
                                 names=[*meta.columns, *genes])
    if writer is not None:
        return writer.write_table(table)
    # Float columns gain nothing from dictionary encoding, which is slow here.
    pq.write_table(table, path, use_dictionary=False)


def _schema(meta: pd.DataFrame, genes: list[str]) -> pa.Schema:
    """The parquet files' schema: the metadata's columns, then a float64 column per gene."""
    return pa.schema([*pa.Schema.from_pandas(meta, preserve_index=False), *(pa.field(g, pa.float64()) for g in genes)])


def _write_zero_submission(path, ids, genes: list[str]) -> None:
    """Written by hand: pandas takes seconds for 255 x 18k zeros."""
    zeros = ",0.0" * len(genes)
    with open(path, "w", newline="") as f:
        f.write(",".join(["id", *genes]) + "\n")
        f.writelines(f"{i}{zeros}\n" for i in ids)


def competition_design() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(compounds, training pairs, id_map) of the competition: its 614 training rows and 255 pairs to predict."""
    pairs = pd.read_csv(RESOURCES / "competition_pairs.csv")
    train = pairs.loc[pairs["split"] == "train", ["cell_type", "sm_name"]]
    return pd.read_csv(RESOURCES / "compounds.csv"), train, pd.read_csv(RESOURCES / "id_map.csv")


def dose_ladder(count: int) -> list[float]:
    """`count` doses a decade apart, the highest 10: 0.01, 0.1, 1, 10 for four."""
    return [float(10.0 ** power) for power in range(2 - count, 2)]


def screen_design(cell_types: list[str], compounds: list[str], test_cell_types: int = 2, test_compounds: int = None,
                  scattered: int = 0, seed: int = 0, doses=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(compounds, training pairs, id_map) of a made-up screen: every cell type x compound, less the pairs to
    predict. Held out the competition's way, the last `test_compounds` compounds (default a third, as the
    command's) in the last `test_cell_types` cell types; or, with `scattered`, that many pairs drawn at random over the whole
    grid, each cell type and compound keeping a training row (a design where every cell type is tested).
    doses: each (cell type, compound) pair measured at each of them (a `dose` column); a pair held out is
    held out at every dose."""
    grid = pd.DataFrame([(c, s) for c in cell_types for s in compounds], columns=["cell_type", "sm_name"])
    if scattered:
        left = {**grid["cell_type"].value_counts().to_dict(), **grid["sm_name"].value_counts().to_dict()}
        chosen = []
        for row in np.random.default_rng([seed, 2]).permutation(len(grid)):  # its own stream: the values keep theirs
            cell_type, compound = grid.iloc[row]
            if len(chosen) < scattered and left[cell_type] > 1 and left[compound] > 1:
                chosen.append(row)
                left[cell_type] -= 1
                left[compound] -= 1
        held_out = grid.index.isin(chosen)
    else:
        test_compounds = len(compounds) // 3 if test_compounds is None else test_compounds
        held_out = (grid["cell_type"].isin(cell_types[len(cell_types) - test_cell_types:])
                    & grid["sm_name"].isin(compounds[len(compounds) - test_compounds:])).to_numpy()
    metadata = pd.DataFrame({"sm_name": compounds, "sm_lincs_id": [f"LSM-{i}" for i in range(1, len(compounds) + 1)],
                             "SMILES": "C", "control": False})  # made up, like the names
    train, test = grid[~held_out], grid[held_out]
    if doses is not None:
        train, test = (frame.merge(pd.DataFrame({"dose": list(doses)}), how="cross") for frame in (train, test))
    id_map = test.reset_index(drop=True).rename_axis("id").reset_index()
    return metadata, train, id_map


def generate(out_dir, n_genes: int = 18211, seed: int = 0, as_h5ad: bool = False, design=None,
             log=lambda line: None) -> None:
    """Write de_train.parquet, id_map.csv, sample_submission.csv and de_test.parquet (the truth).

    as_h5ad: also write de_train.h5ad and de_test.h5ad, the benchmark's format, with every field its
    file specs require (see `_write_h5ad`); the other files are the same with or without it.
    design: (compounds, training pairs, id_map), e.g. `screen_design`'s; default the competition's.
    log: a line at least every 30 s while a large screen is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    compounds, train, id_map = design or competition_design()
    labels = [c for c in id_map.columns if c != "id"]  # cell_type, sm_name (and dose, in a dose screen)
    both = pd.concat([train, id_map[labels]], ignore_index=True)
    meta = both.merge(compounds, on="sm_name", how="left", validate="many_to_one")[[*META, *labels[2:]]]

    genes = gene_names(n_genes)
    blocks = _z_scores(compounds, both, n_genes, np.random.default_rng(seed), seed)
    n_train = len(train)
    if as_h5ad or len(both) <= ROWS_AT_ONCE:  # one block: the files written whole
        z = np.concatenate([block for _, block in blocks])
        values = signed_log10_p(z)
        for name, rows in (("de_train.parquet", slice(0, n_train)), ("de_test.parquet", slice(n_train, None))):
            with atomic_path(out_dir / name) as tmp:
                _write_parquet(tmp, meta.iloc[rows], values[rows], genes)
        if as_h5ad:
            _write_h5ad(out_dir, meta, z, values, n_train, genes, seed)
    else:  # a screen larger than a block: written a row group per block, never held whole
        schema = _schema(meta, genes)
        started = said = time.perf_counter()
        with atomic_path(out_dir / "de_train.parquet") as train_tmp, atomic_path(out_dir / "de_test.parquet") as test_tmp, \
                pq.ParquetWriter(train_tmp, schema, use_dictionary=False) as train_writer, \
                pq.ParquetWriter(test_tmp, schema, use_dictionary=False) as test_writer:
            for rows, z in blocks:
                values = signed_log10_p(z)
                for writer, part in ((train_writer, slice(rows.start, min(rows.stop, n_train))),
                                     (test_writer, slice(max(rows.start, n_train), rows.stop))):
                    if part.stop > part.start:
                        local = slice(part.start - rows.start, part.stop - rows.start)
                        _write_parquet(None, meta.iloc[part], values[local], genes, writer)
                if time.perf_counter() - said >= 30:
                    elapsed = time.perf_counter() - started
                    log(f"  {rows.stop} of {len(both)} rows written, {elapsed:.0f}s, about "
                        f"{elapsed / rows.stop * (len(both) - rows.stop):.0f}s left")
                    said = time.perf_counter()
    with atomic_path(out_dir / "id_map.csv") as tmp:
        id_map.to_csv(tmp, index=False)
    with atomic_path(out_dir / "sample_submission.csv") as tmp:
        _write_zero_submission(tmp, id_map["id"], genes)


def _write_h5ad(out_dir, meta: pd.DataFrame, z: np.ndarray, values: np.ndarray, n_train: int,
                genes: list[str], seed: int) -> None:
    """de_train.h5ad and de_test.h5ad: the rows of the parquet files with the fields of schemas.H5AD_TRAIN.

    Its own random stream (standard errors, cells) leaves the parquet files as they were without as_h5ad.
    The split is the benchmark's naming: the controls' rows are `control`, the hidden test `private_test`.
    """
    rng = np.random.default_rng([seed, 1])
    standard_error = np.exp(rng.normal(np.log(STANDARD_ERROR), STANDARD_ERROR_SD, len(genes)))
    split = np.where(np.arange(len(meta)) < n_train, np.where(meta["control"], "control", "train"), "private_test")
    obs = meta.assign(split=split)
    uns = {"dataset_id": f"pertnet_synthetic_seed{seed}_genes{len(genes)}",
           "dataset_name": "pertnet synthetic demo",
           "dataset_summary": "Synthetic stand-in for the NeurIPS 2023 perturbation data, with its pairs and schema.",
           "dataset_description": "Made by pertnet.synthetic: per (cell type, compound) pair a latent z-score per "
                                  "gene (compound effect, cell-type interaction and baseline, plus noise) becomes "
                                  "a two-sided p-value and a log fold change. Not measured data."}
    for name, rows in (("de_train.h5ad", slice(0, n_train)), ("de_test.h5ad", slice(n_train, None))):
        h5ad.write_dataset(out_dir / name, obs.iloc[rows], genes, _de_layers(z[rows], values[rows], standard_error),
                           {**uns, "single_cell_obs": _single_cell_obs(obs.iloc[rows], rng)})


def _de_layers(z: np.ndarray, values: np.ndarray, standard_error: np.ndarray) -> dict:
    """The differential-expression layers of some rows, float64 as the benchmark asks, all from their z-scores.

    sign_log10_pval holds the parquet values and P.Value the p-value they encode; logFC = z * the gene's
    standard error has their sign, so sign(logFC) * -log10(P.Value) = sign_log10_pval. adj.P.Value is
    Benjamini-Hochberg over every value of the file at once, as the benchmark adjusts its own files.
    """
    signed = values.astype(np.float64)
    p_value = 10.0 ** -np.abs(signed)
    adjusted = false_discovery_control(p_value, axis=None).reshape(p_value.shape)
    return {"logFC": z * standard_error, "P.Value": p_value, "adj.P.Value": adjusted,
            "is_de": p_value < DE_CUTOFF, "is_de_adj": adjusted < DE_CUTOFF,
            h5ad.DEFAULT_LAYER: signed, h5ad.CLIPPED_LAYER: np.clip(signed, -4, 4)}


def _single_cell_obs(obs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Cell-level metadata of the rows' pairs (uns single_cell_obs). The synthetic data has no cells: each
    pair gets a random handful per donor, so that a method counting cells per pair finds some."""
    counts = 1 + rng.poisson(CELLS_PER_DONOR, len(obs) * len(DONORS))
    cells = obs.iloc[np.repeat(np.arange(len(obs)).repeat(len(DONORS)), counts)][["cell_type", "sm_name", "split"]]
    cells = cells.assign(donor_id=np.repeat(np.tile(DONORS, len(obs)), counts))
    return cells.set_axis(pd.Index([f"cell_{i}" for i in range(len(cells))], name="cell_id"))


def _read(path) -> tuple[pd.DataFrame, np.ndarray]:
    """Metadata frame and gene matrix of a de_*.parquet, skipping a slow 18k-column frame."""
    table = pq.read_table(path)
    genes = [name for name in schemas.gene_columns(table.column_names) if name != "dose"]
    return table.select(META).to_pandas(), np.column_stack([table[g].to_numpy() for g in genes])


def _group_mean(keys: pd.Series, values: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    codes, groups = pd.factorize(keys)
    onehot = np.eye(len(groups))[codes]
    return pd.Index(groups), onehot.T @ values / onehot.sum(axis=0)[:, None]


def stats(out_dir) -> dict:
    """Value statistics of the training rows and simple baselines scored on the hidden truth."""
    out_dir = Path(out_dir)
    train, y = _read(out_dir / "de_train.parquet")
    test, truth = _read(out_dir / "de_test.parquet")
    row_rms = np.sqrt(np.mean(y ** 2, axis=1))

    compounds, compound_mean = _group_mean(train["sm_name"], y)
    residual = y - compound_mean[compounds.get_indexer(train["sm_name"])]
    cell_types, offset = _group_mean(train["cell_type"], residual)
    by_compound = compound_mean[compounds.get_indexer(test["sm_name"])]
    with_offset = by_compound + offset[cell_types.get_indexer(test["cell_type"])]
    return {
        "mean_row_rms": float(row_rms.mean()),
        "frac_abs_gt_2": float(np.mean(np.abs(y) > 2)),
        "frac_abs_gt_3": float(np.mean(np.abs(y) > 3)),
        "max_abs": float(np.abs(y).max()),
        "rows_rms_gt_5": int(np.sum(row_rms > 5)),
        "test_mrrmse_zeros": mrrmse(np.zeros_like(truth), truth),
        "test_mrrmse_compound_mean": mrrmse(by_compound, truth),
        "test_mrrmse_compound_mean_plus_cell_offset": mrrmse(with_offset, truth),
    }
