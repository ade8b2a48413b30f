"""Screens as users bring them: doses and other label columns, columns named their own way, metadata that is
never a gene, replicates; through the commands and the Python API (pertnet/labels.py)."""
import hashlib
import shutil

import anndata
import numpy as np
import pandas as pd
import pytest

import evaluate
import predict
import prepare_data
import repro
import tune
from conftest import TINY_GENES, dirs
from pertnet import UserError, cli, crossval, data, schemas, synthetic, tablefile
from pertnet.labels import Labels
from pertnet.options import Options

DOSES = ["--perturbation-columns", "sm_name,dose"]
QUICK = ["--reps", "1", "--epochs", "1"]


@pytest.fixture(scope="module")
def dose_source(tmp_path_factory):
    """4 cell types x 12 compounds x 3 doses; the last 4 compounds asked for in the last 2 cell types, every dose."""
    folder = tmp_path_factory.mktemp("dose_screen")
    design = synthetic.screen_design([f"line {i}" for i in range(4)], [f"drug {i:02d}" for i in range(12)], 2, 4,
                                     doses=synthetic.dose_ladder(3))
    synthetic.generate(folder, n_genes=TINY_GENES, design=design)
    return folder


@pytest.fixture
def screen(dose_source, tmp_path):
    shutil.copytree(dose_source, tmp_path / "data")
    return tmp_path / "data"


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(module, args, tmp_path, capsys, *expect):
    before = snapshot(tmp_path)
    assert cli.run(module.main, [str(a) for a in args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    for text in expect:
        assert text in error, error
    assert snapshot(tmp_path) == before
    return error


def test_the_generated_dose_screen_has_a_dose_column_and_a_dose_response(dose_source):
    train = pd.read_parquet(dose_source / "de_train.parquet")
    id_map = pd.read_csv(dose_source / "id_map.csv")
    assert list(id_map.columns) == ["id", "cell_type", "sm_name", "dose"] and len(id_map) == 2 * 4 * 3
    assert sorted(train["dose"].unique()) == [0.1, 1.0, 10.0] and len(train) == (4 * 12 - 8) * 3
    genes = [c for c in train.columns if c.startswith("G")]
    size = train.assign(rms=np.sqrt((train[genes] ** 2).mean(axis=1))).groupby("dose")["rms"].mean()
    assert size[10.0] > size[1.0] > size[0.1]  # larger doses move more genes


def test_an_undeclared_dose_column_is_named_with_the_options_that_declare_it(screen, tmp_path, capsys):
    refused(prepare_data, ["--stage", "simple", *dirs(tmp_path, screen)], tmp_path, capsys,
            "de_train.parquet: column(s) dose look like metadata, not genes",
            "--perturbation-columns sm_name,dose", "--ignore-columns dose")
    refused(prepare_data, ["--stage", "simple", *dirs(tmp_path, screen), "--ignore-columns", "dose"], tmp_path, capsys,
            "(cell_type, sm_name) combination(s) occur more than once",
            "they differ only in column dose: declare it a label (--perturbation-columns sm_name,dose)")


def test_a_dose_screen_runs_end_to_end_and_predict_needs_no_option(screen, tmp_path, capsys):
    common = ["--stage", "simple", *map(str, dirs(tmp_path, screen))]
    assert cli.run(repro.main, [*common, *DOSES, "--epochs", "1", "--output-format", "h5ad"]) == 0
    out = capsys.readouterr().out
    assert "against" in out and "baseline: compound mean" in out  # scored against de_test.parquet
    prediction = anndata.read_h5ad(tmp_path / "submissions" / "simple_prediction.h5ad")
    id_map = pd.read_csv(screen / "id_map.csv")
    assert list(prediction.obs.columns) == ["cell_type", "sm_name", "dose"]
    assert prediction.obs["dose"].tolist() == id_map["dose"].tolist()
    assert prediction.obs_names.tolist() == id_map["id"].astype(str).tolist()
    assert cli.run(predict.main, common) == 0  # the models recorded their label columns
    submission = pd.read_csv(tmp_path / "submissions" / "simple_submission.csv")
    assert submission.columns[0] == "id" and "dose" not in submission.columns
    assert submission["id"].tolist() == id_map["id"].tolist() and submission.shape[1] == TINY_GENES + 1
    assert cli.run(evaluate.main, common) == 0  # scored with the models' label columns
    assert "baseline: compound mean" in capsys.readouterr().out

    refused(predict, [*common, "--perturbation-columns", "sm_name"], tmp_path, capsys,
            "were trained with the cell type column cell_type, perturbation column(s) sm_name, dose")
    id_map.drop(columns="dose").to_csv(screen / "id_map.csv", index=False)
    refused(predict, common, tmp_path, capsys, "id_map.csv: missing label column(s) dose", "--perturbation-columns")
    id_map.assign(dose=id_map["dose"].where(id_map.index != 0, 0.5)).to_csv(screen / "id_map.csv", index=False)
    refused(predict, common, tmp_path, capsys, "never occur", "'drug 08 | dose=0.5': the training data has 'drug 08 | dose=0.1', 'drug 08 | dose=1', 'drug 08 | dose=10'")
    id_map.assign(dose=id_map["dose"].where(id_map.index != 3, None)).to_csv(screen / "id_map.csv", index=False)
    refused(predict, common, tmp_path, capsys, "id_map.csv: 1 row(s) have no value in label column(s) dose (e.g. rows [3])")


def test_the_folds_hold_out_every_dose_of_a_held_out_compound_together(screen):
    with crossval.CrossValidation.from_files(Options("stage_1", screen, labels=Labels(perturbation=("sm_name", "dose"))),
                                             log=lambda line: None) as cv:
        assert cv.scheme.name == "cell_type" and cv.fold_names == ["line 0", "line 1"]
    for name, held_out in cv.scheme.folds:
        rows = cv.pairs[held_out]
        compounds = rows["sm_name"].str.split(" | ", regex=False).str[0]
        assert (rows["cell_type"] == name).all() and len(rows) == 4 * 3
        assert compounds.value_counts().tolist() == [3] * 4  # each held-out compound at its three doses


def test_tune_and_evaluate_cv_run_on_a_dose_screen(screen, tmp_path, capsys):
    args = ["--stage", "stage_1", *QUICK, *DOSES, "--data-dir", screen, "--tuning-dir", tmp_path / "tuning"]
    assert cli.run(tune.main, [str(a) for a in [*args, "--entry", "1", "--trials", "1"]]) == 0
    assert "2 folds, scheme cell_type" in capsys.readouterr().out
    assert cli.run(evaluate.main, [str(a) for a in [*args, "--cv", "--models-dir", tmp_path / "models",
                                                    "--stages", tmp_path / "tuning" / next(
                                                        p.name for p in (tmp_path / "tuning").glob("*.json"))]]) == 0


def test_other_column_names_through_the_python_api(dose_source):
    import pertnet

    frame = pd.read_parquet(dose_source / "de_train.parquet").rename(columns={"cell_type": "cell_line",
                                                                              "sm_name": "drug"})
    genes = [c for c in frame.columns if c.startswith("G")]
    adata = anndata.AnnData(X=frame[genes].to_numpy(np.float32),
                            obs=frame[["cell_line", "drug", "dose"]].set_axis(frame.index.astype(str)),
                            var=pd.DataFrame(index=genes))
    pairs = pd.read_csv(dose_source / "id_map.csv").rename(columns={"cell_type": "cell_line", "sm_name": "drug"})
    model = pertnet.fit(adata, "simple", epochs=1, verbose=False, cell_type_column="cell_line",
                        perturbation_columns=["drug", "dose"])
    prediction = model.predict(pairs)
    assert list(prediction.columns[:4]) == ["id", "cell_line", "drug", "dose"] and model.genes_ == genes
    assert prediction["dose"].tolist() == pairs["dose"].tolist()
    with pytest.raises(UserError, match="the pairs to predict: missing label column"):
        model.predict(pairs.drop(columns="dose"))


def test_numeric_metadata_in_a_dataframe_is_never_a_gene(dose_source):
    import pertnet

    frame = pd.read_parquet(dose_source / "de_train.parquet")
    frame = frame[frame["dose"] == 10.0].drop(columns="dose").assign(n_cells=7, plate=2)
    with pytest.raises(UserError, match=r"column\(s\) n_cells, plate look like metadata, not genes.*"
                                        r"--ignore-columns n_cells,plate"):
        pertnet.fit(frame, "simple", epochs=1, verbose=False)
    model = pertnet.fit(frame, "simple", epochs=1, verbose=False, ignore_columns=["n_cells", "plate"])
    assert "n_cells" not in model.genes_ and len(model.genes_) == TINY_GENES


def test_replicates_are_refused_or_averaged(dose_source, capsys, tmp_path, monkeypatch):
    frame = pd.read_parquet(dose_source / "de_train.parquet")
    labels = Labels(perturbation=("sm_name", "dose"))
    doubled = pd.concat([frame, frame.iloc[:5].assign(**{"G001": frame["G001"].iloc[:5] + 2.0})], ignore_index=True)
    with pytest.raises(UserError, match=r"5 \(cell_type, sm_name, dose\) combination\(s\) occur more than once.*"
                                        r"--replicates mean"):
        data.training_data(doubled, labels=labels)
    averaged_labels = Labels(perturbation=("sm_name", "dose"), replicates="mean")
    averaged = data.training_data(doubled, labels=averaged_labels)[0]
    assert len(averaged) == len(frame)
    assert averaged["G001"].iloc[:5].to_numpy() == pytest.approx(frame["G001"].iloc[:5].to_numpy() + 1.0, rel=1e-6)
    assert "5 label combination(s) repeat in 10 rows; each is the mean of its rows (--replicates mean)" in \
        capsys.readouterr().out
    doubled.to_parquet(tmp_path / "doubled.parquet")  # from a file, a block of 7 genes at a time: the same means
    monkeypatch.setattr(tablefile, "BLOCK_BYTES", 7 * 4 * len(doubled))
    pairs, genes, blocks, _ = data.training_values(tmp_path / "doubled.parquet", averaged_labels)
    assert pairs.equals(averaged[schemas.PAIR]) and genes == schemas.gene_columns(averaged.columns)
    assert np.array_equal(tablefile.from_blocks((len(pairs), len(genes)), blocks), averaged[genes].to_numpy())


def test_a_dose_names_one_label_whichever_file_it_comes_from():
    labels = Labels("cell_line", ("drug", "dose"))
    from_parquet = pd.DataFrame({"cell_line": ["A", "A"], "drug": ["x", "x"], "dose": [10.0, 0.1]})
    from_csv = pd.DataFrame({"cell_line": ["A", "A"], "drug": ["x", "x"], "dose": ["10", "0.10"]})
    expected = ["x | dose=10", "x | dose=0.1"]
    assert labels.pairs(from_parquet, "p")["sm_name"].tolist() == labels.pairs(from_csv, "c")["sm_name"].tolist() == expected
    with pytest.raises(UserError, match="name dose twice"):
        Labels("dose", ("drug", "dose"))


def test_the_benchmark_method_on_a_dose_screen_as_h5ad(tmp_path):
    from pertnet import benchmark

    design = synthetic.screen_design(["a", "b", "c"], [f"drug {i}" for i in range(6)], 1, 2, doses=[1.0, 10.0])
    synthetic.generate(tmp_path / "data", n_genes=40, design=design, as_h5ad=True)
    out = tmp_path / "prediction.h5ad"
    assert cli.run(benchmark.main, ["--de_train", str(tmp_path / "data" / "de_train.h5ad"), "--id_map",
                                    str(tmp_path / "data" / "id_map.csv"), "--output", str(out), "--stage", "simple",
                                    "--reps", "1", "--epochs", "1", "--perturbation_columns", "sm_name,dose"]) == 0
    prediction = anndata.read_h5ad(out)
    assert list(prediction.obs.columns) == ["cell_type", "sm_name", "dose"] and prediction.n_obs == 2 * 2
