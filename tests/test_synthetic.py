"""The synthetic dataset must match the competition's schema and look and behave like it."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from pertnet import synthetic

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
    assert synthetic.main(["--out", str(tmp_path), "--genes", "50", "--seed", "3", "--stats", str(tmp_path)]) == 0
    assert "test_mrrmse_compound_mean" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "de_train.parquet").columns) == len(synthetic.META) + 50
