"""The synthetic dataset must match the competition's schema and look and behave like it."""

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from benchmark_api import FORMATS, problems
from pertnet import synthetic
from pertnet.synthetic.__main__ import main as synthetic_command

N_GENES = 200
FILES = ["de_train.parquet", "de_test.parquet", "id_map.csv", "sample_submission.csv"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(out, n_genes=N_GENES, seed=0)
    return out


@pytest.fixture(scope="module")
def resources():
    pairs = pd.read_csv(synthetic.RESOURCES / "competition_pairs.csv")
    return {
        "compounds": pd.read_csv(synthetic.RESOURCES / "compounds.csv"),
        "train_pairs": pairs.loc[pairs["split"] == "train", ["cell_type", "sm_name"]].reset_index(drop=True),
        "id_map": pd.read_csv(synthetic.RESOURCES / "id_map.csv"),
    }


def test_gene_names_sorted_and_padded():
    assert synthetic.gene_names(3) == ["G1", "G2", "G3"]
    names = synthetic.gene_names(18211)
    assert names[0] == "G00001" and names[-1] == "G18211"
    assert names == sorted(names) and len(set(names)) == len(names)


@pytest.mark.parametrize("name, n_rows", [("de_train.parquet", 614), ("de_test.parquet", 255)])
def test_parquet_schema(data_dir, resources, name, n_rows):
    df = pd.read_parquet(data_dir / name)
    genes = list(df.columns[len(synthetic.META):])
    assert list(df.columns[:len(synthetic.META)]) == synthetic.META
    assert genes == synthetic.gene_names(N_GENES) == sorted(genes)
    assert len(df) == n_rows
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0
    for col in ["cell_type", "sm_name", "sm_lincs_id", "SMILES"]:
        assert pd.api.types.is_string_dtype(df[col])
    assert df["control"].dtype == bool
    assert (df[genes].dtypes == np.float64).all()
    assert np.isfinite(df[genes].to_numpy()).all()

    expected = resources["train_pairs"] if name == "de_train.parquet" else resources["id_map"]
    pd.testing.assert_frame_equal(df[["cell_type", "sm_name"]].astype(object),
                                  expected[["cell_type", "sm_name"]].astype(object))
    meta = expected[["sm_name"]].merge(resources["compounds"], on="sm_name", how="left")
    for col in ["sm_lincs_id", "SMILES", "control"]:
        assert df[col].tolist() == meta[col].tolist()


def test_id_map_and_sample_submission(data_dir, resources):
    assert (data_dir / "id_map.csv").read_bytes() == (synthetic.RESOURCES / "id_map.csv").read_bytes()
    submission = pd.read_csv(data_dir / "sample_submission.csv")
    train_columns = pd.read_parquet(data_dir / "de_train.parquet").columns
    assert list(submission.columns) == ["id", *train_columns[len(synthetic.META):]]
    assert submission["id"].tolist() == resources["id_map"]["id"].tolist() == list(range(255))
    assert (submission.drop(columns="id").to_numpy() == 0).all()


def test_no_temporary_files_left(data_dir):
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(FILES)


def test_deterministic(data_dir, tmp_path):
    synthetic.generate(tmp_path / "again", n_genes=N_GENES, seed=0)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (data_dir / name).read_bytes(), name
    synthetic.generate(tmp_path / "other", n_genes=N_GENES, seed=1)
    assert (tmp_path / "other" / "de_train.parquet").read_bytes() != (data_dir / "de_train.parquet").read_bytes()


def test_signed_log10_p_is_stable_and_capped():
    z = np.array([-3.0, -1.0, 0.5, 2.0, 40.0, -1e6])
    values = synthetic.signed_log10_p(z)
    assert np.allclose(values[:4], np.sign(z[:4]) * -np.log10(2 * norm.sf(np.abs(z[:4]))))
    assert values[4] == synthetic.CAP and values[5] == -synthetic.CAP


def test_value_statistics_look_like_de_train(data_dir):
    s = synthetic.stats(data_dir)
    assert 1.13 <= s["mean_row_rms"] <= 1.43
    assert 0.05 <= s["frac_abs_gt_2"] <= 0.09
    assert 0.03 <= s["frac_abs_gt_3"] <= 0.05
    assert s["max_abs"] <= synthetic.CAP
    assert s["rows_rms_gt_5"] >= 1


def test_structure_is_learnable(data_dir):
    s = synthetic.stats(data_dir)
    assert s["test_mrrmse_compound_mean"] < 0.9 * s["test_mrrmse_zeros"]
    assert s["test_mrrmse_compound_mean_plus_cell_offset"] < s["test_mrrmse_compound_mean"]


def test_cli_writes_and_reports(tmp_path, capsys):
    assert synthetic_command(["--out", str(tmp_path), "--genes", "50", "--seed", "3", "--stats", str(tmp_path)]) == 0
    assert "test_mrrmse_compound_mean" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "de_train.parquet").columns) == len(synthetic.META) + 50


@pytest.fixture(scope="module")
def h5ad_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_h5ad")
    synthetic.generate(out, n_genes=N_GENES, seed=0, as_h5ad=True)
    return out


def test_the_h5ad_files_change_none_of_the_other_files(h5ad_dir, data_dir):
    assert sorted(p.name for p in h5ad_dir.iterdir()) == sorted(FILES + ["de_train.h5ad", "de_test.h5ad"])
    for name in FILES:
        assert (h5ad_dir / name).read_bytes() == (data_dir / name).read_bytes(), name


@pytest.mark.parametrize("name, splits", [("de_train", {"train", "control"}), ("de_test", {"private_test"})])
def test_the_h5ad_files_hold_every_field_the_benchmark_requires(h5ad_dir, name, splits):
    adata = anndata.read_h5ad(h5ad_dir / f"{name}.h5ad")
    assert problems(adata, name) == []
    split_field = next(f for f in FORMATS[name]["obs"] if f["name"] == "split")
    assert set(adata.obs["split"]) == splits <= set(split_field["choices"])
    assert ((adata.obs["split"] == "control") == adata.obs["control"]).all()
    cells = adata.uns["single_cell_obs"]
    per_pair = cells.groupby(["cell_type", "sm_name"]).donor_id.nunique()
    assert sorted(per_pair.index) == sorted(zip(adata.obs["cell_type"], adata.obs["sm_name"]))
    assert (per_pair == len(synthetic.DONORS)).all() and cells.index.is_unique


def benjamini_hochberg(p):
    """The textbook adjustment over every value: p * n / rank, made monotone from the largest down."""
    flat = p.ravel()
    order = np.argsort(flat)
    scaled = flat[order] * flat.size / np.arange(1, flat.size + 1)
    adjusted = np.empty_like(flat)
    adjusted[order] = np.minimum(1, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted.reshape(p.shape)


@pytest.mark.parametrize("name", ["de_train", "de_test"])
def test_the_h5ad_layers_follow_from_one_truth(h5ad_dir, name):
    layers = anndata.read_h5ad(h5ad_dir / f"{name}.h5ad").layers
    parquet = pd.read_parquet(h5ad_dir / f"{name}.parquet")
    signed, p_value, adjusted = layers["sign_log10_pval"], layers["P.Value"], layers["adj.P.Value"]
    assert np.array_equal(signed, parquet[synthetic.gene_names(N_GENES)].to_numpy())
    assert np.allclose(np.sign(layers["logFC"]) * -np.log10(p_value), signed, rtol=0, atol=1e-12)
    assert np.array_equal(np.sign(layers["logFC"]), np.sign(signed))
    assert np.array_equal(layers["clipped_sign_log10_pval"], np.clip(signed, -4, 4))
    assert np.allclose(adjusted, benjamini_hochberg(p_value), rtol=1e-12, atol=0)
    assert np.array_equal(layers["is_de"], p_value < 0.05)
    assert np.array_equal(layers["is_de_adj"], adjusted < 0.05)
    assert 0 < layers["is_de_adj"].mean() < layers["is_de"].mean() < 1
