"""The Open Problems benchmark's format: h5ad in, h5ad out."""
import re

import anndata
import numpy as np
import pandas as pd
import pytest

from conftest import TINY_GENES
from pertnet import UserError, h5ad, intervals, synthetic, tablefile

LAYERS = r"P\.Value, adj\.P\.Value, clipped_sign_log10_pval, is_de, is_de_adj, logFC, sign_log10_pval"  # a regex


def read_observations(path, layer=None):
    """An h5ad file's (obs, genes, values, dataset_id), its blocks gathered."""
    obs, genes, blocks, dataset_id = h5ad.observation_blocks(path, layer)
    return obs, genes, tablefile.from_blocks((len(obs), len(genes)), blocks), dataset_id


@pytest.fixture(scope="module")
def h5ad_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("h5ad_data")
    synthetic.generate(folder, n_genes=TINY_GENES, seed=0, as_h5ad=True)
    return folder


def test_the_h5ad_holds_the_parquet_values_in_both_layers(h5ad_data):
    obs, genes, values, dataset_id = read_observations(h5ad_data / "de_train.h5ad")
    parquet = pd.read_parquet(h5ad_data / "de_train.parquet")
    assert genes == [c for c in parquet.columns if c.startswith("G")]
    assert obs[["cell_type", "sm_name"]].equals(parquet[["cell_type", "sm_name"]])
    assert set(obs["split"]) == {"train", "control"}
    assert np.array_equal(values, parquet[genes].to_numpy(np.float32))
    assert dataset_id == f"pertnet_synthetic_seed0_genes{TINY_GENES}"
    _, _, clipped, _ = read_observations(h5ad_data / "de_train.h5ad", layer=h5ad.CLIPPED_LAYER)
    assert np.array_equal(clipped, np.clip(values, -4, 4)) and np.abs(values).max() > 4


def test_sparse_layers_read_as_the_dense_one(h5ad_data, tmp_path, monkeypatch):
    """A CSR layer (laid out by genes on disk a window of rows at a time) and a CSC one give the dense values."""
    import scipy.sparse

    adata = anndata.read_h5ad(h5ad_data / "de_train.h5ad")
    dense = adata.layers[h5ad.DEFAULT_LAYER]
    dense[np.abs(dense) < 1] = 0  # sparse in earnest
    adata.layers["csr"], adata.layers["csc"] = scipy.sparse.csr_matrix(dense), scipy.sparse.csc_matrix(dense)
    adata.write_h5ad(tmp_path / "sparse.h5ad")
    monkeypatch.setattr(tablefile, "BLOCK_BYTES", 7 * 4 * adata.n_obs)  # 7 genes at a time
    monkeypatch.setattr(tablefile, "WINDOW_BYTES", 5 * 4 * adata.n_vars)  # 5 rows at a time
    for layer in ("csr", "csc"):
        assert np.array_equal(read_observations(tmp_path / "sparse.h5ad", layer)[2], dense.astype(np.float32))


def test_a_missing_layer_lists_the_layers_present(h5ad_data):
    with pytest.raises(UserError, match=rf"no layer 'counts'; layers present: {LAYERS}"):
        read_observations(h5ad_data / "de_train.h5ad", layer="counts")


def test_a_file_that_is_not_h5ad_is_a_clear_error(tmp_path):
    (tmp_path / "x.h5ad").write_text("not hdf5")
    with pytest.raises(UserError, match="x.h5ad: not a readable h5ad file"):
        read_observations(tmp_path / "x.h5ad")


def test_the_prediction_file_has_the_benchmark_fields(tmp_path, h5ad_data):
    id_map = pd.read_csv(h5ad_data / "id_map.csv")
    genes = ["G1", "G2", "G3"]
    values = np.arange(len(id_map) * 3, dtype=np.float32).reshape(-1, 3)
    uncertainty = np.linspace(1, 2, len(id_map))
    bounds = intervals.Bounds(values - 1, values + 2, uncertainty, 0.9)
    half = len(id_map) // 2  # written in two blocks of pairs, as `predict` writes them
    blocks = [(rows, values[rows], bounds._replace(lower=bounds.lower[rows], upper=bounds.upper[rows],
                                                   uncertainty=uncertainty[rows]))
              for rows in (slice(0, half), slice(half, len(id_map)))]
    path = h5ad.write_prediction(tmp_path / "prediction.h5ad", id_map, genes, blocks, "my_dataset", 0.9)
    written = anndata.read_h5ad(path)
    assert list(written.obs_names) == [str(i) for i in id_map["id"]]
    assert list(written.var_names) == genes
    assert written.layers["prediction"].dtype == np.float64  # the benchmark's spec: double
    assert np.array_equal(written.layers["prediction"], values) and np.array_equal(written.X, values)
    assert np.array_equal(written.layers["lower"], values - 1) and np.array_equal(written.layers["upper"], values + 2)
    assert np.array_equal(written.obs["uncertainty"], uncertainty) and written.uns["interval_level"] == 0.9
    assert written.uns["dataset_id"] == "my_dataset"
    assert written.uns["method_id"] == h5ad.METHOD_ID
    assert [p.name for p in tmp_path.iterdir()] == ["prediction.h5ad"]


def run(module, *args):
    """An entry module in-process, as `python -m module args` runs it; its exit code."""
    from pertnet import cli

    return cli.run(__import__(module).main, [str(a) for a in args])


@pytest.fixture(scope="module")
def both_routes(h5ad_data, tmp_path_factory):
    """simple trained twice, from de_train.parquet and from de_train.h5ad alone (no sample_submission)."""
    top = tmp_path_factory.mktemp("routes")
    h5ad_only = top / "h5ad_only"
    h5ad_only.mkdir()
    for name in ("de_train.h5ad", "id_map.csv"):
        (h5ad_only / name).write_bytes((h5ad_data / name).read_bytes())
    parquet_only = top / "parquet_only"
    parquet_only.mkdir()
    for name in ("de_train.parquet", "id_map.csv", "sample_submission.csv"):
        (parquet_only / name).write_bytes((h5ad_data / name).read_bytes())
    for route in ("parquet_only", "h5ad_only"):
        assert run("repro", "--stage", "simple", "--epochs", "2", "--data-dir", top / route,
                   "--models-dir", top / route / "models", "--submissions-dir", top / route / "subs") == 0
    assert run("predict", "--stage", "simple", "--data-dir", top / "h5ad_only", "--models-dir",
               top / "h5ad_only" / "models", "--submissions-dir", top / "h5ad_only" / "subs",
               "--output-format", "h5ad") == 0
    return top


def test_the_h5ad_route_gives_the_parquet_routes_submission(both_routes):
    parquet = (both_routes / "parquet_only" / "subs" / "simple_submission.csv").read_bytes()
    assert (both_routes / "h5ad_only" / "subs" / "simple_submission.csv").read_bytes() == parquet


def test_predict_writes_the_benchmark_prediction(both_routes, h5ad_data):
    written = anndata.read_h5ad(both_routes / "h5ad_only" / "subs" / "simple_prediction.h5ad")
    submission = pd.read_csv(both_routes / "h5ad_only" / "subs" / "simple_submission.csv")
    assert list(written.obs_names) == submission["id"].astype(str).tolist()
    assert list(written.var_names) == list(submission.columns[1:])
    assert written.layers["prediction"].dtype == np.float64
    assert np.array_equal(written.layers["prediction"], submission.iloc[:, 1:].to_numpy(np.float32))
    assert written.uns["dataset_id"] == f"pertnet_synthetic_seed0_genes{TINY_GENES}"
    assert written.uns["method_id"] == h5ad.METHOD_ID


def test_the_clipped_layer_is_used_when_asked(h5ad_data, tmp_path):
    from pertnet import pipeline

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "id_map.csv").write_bytes((h5ad_data / "id_map.csv").read_bytes())
    for layer, bound in ((h5ad.CLIPPED_LAYER, 4.0), (h5ad.DEFAULT_LAYER, None)):
        assert run("prepare_data", "--stage", "simple", "--data-dir", folder, "--train-file",
                   h5ad_data / "de_train.h5ad", "--layer", layer) == 0
        targets = np.asarray(pipeline.load_prepared(folder, "simple")["train_targets"])
        assert (np.abs(targets).max() <= 4.0) == (bound is not None)


def test_a_missing_layer_is_one_line_and_writes_nothing(h5ad_data, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "id_map.csv").write_bytes((h5ad_data / "id_map.csv").read_bytes())
    code = run("prepare_data", "--stage", "simple", "--data-dir", folder,
               "--train-file", h5ad_data / "de_train.h5ad", "--layer", "counts")
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert re.search(f"no layer 'counts'; layers present: {LAYERS}", error)
    assert sorted(p.name for p in folder.iterdir()) == ["id_map.csv"]


def test_evaluate_scores_h5ad_predictions_against_an_h5ad_truth(both_routes, h5ad_data):
    from pertnet import evaluation

    subs = both_routes / "h5ad_only" / "subs"
    from_h5ad, _ = evaluation.score_submission(subs / "simple_prediction.h5ad", h5ad_data / "de_test.h5ad",
                                               h5ad_data, "simple", train_file=h5ad_data / "de_train.h5ad")
    from_csv, _ = evaluation.score_submission(subs / "simple_submission.csv", h5ad_data / "de_test.parquet",
                                              h5ad_data, "simple")
    assert from_h5ad["scores"]["model"]["overall"] == pytest.approx(from_csv["scores"]["model"]["overall"], rel=1e-6)
    clipped, _ = evaluation.score_submission(subs / "simple_prediction.h5ad", h5ad_data / "de_test.h5ad",
                                             h5ad_data, "simple", layer=h5ad.CLIPPED_LAYER)
    assert clipped["scores"]["model"]["overall"]["mrrmse"] < from_h5ad["scores"]["model"]["overall"]["mrrmse"]
