"""Bad input: one line on stderr naming the file and what to do, exit code 2, and nothing written.

The entry modules run in-process through cli.run, as `python -m` runs them (one subprocess test
checks that TensorFlow's start-up noise does not reach stderr).
"""
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import config
import evaluate
import predict
import prepare_data
import repro
import train
from conftest import dirs, run_cli
from pertnet import cli, pipeline
from pertnet.options import Options


def snapshot(folder):
    """Every file under `folder` with a hash of its bytes: what 'nothing written' compares."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def fails(capsys):
    """fails(module, *args, tmp_path=, expect=): run the module's main; it must exit 2 with one stderr line
    holding every `expect` text, and leave every file under tmp_path as it was."""
    def run(module, *args, tmp_path, expect):
        before = snapshot(tmp_path)
        return_code = cli.run(module.main, [str(a) for a in args])
        error = capsys.readouterr().err
        assert return_code == 2, error
        assert error.startswith("error: ") and error.count("\n") == 1, error
        for text in expect:
            assert text in error, error
        assert snapshot(tmp_path) == before
        return error
    return run


@pytest.fixture
def prepare_fails(fails):
    """prepare_fails(tmp_path, data, *expect, stage=): prepare_data refuses, as `fails` checks."""
    def run(tmp_path, data, *expect, stage="simple"):
        return fails(prepare_data, "--stage", stage, *dirs(tmp_path, data), tmp_path=tmp_path, expect=expect)
    return run


def edit_train(data, edit):
    path = data / "de_train.parquet"
    frame = edit(pd.read_parquet(path))
    path.unlink()
    frame.to_parquet(path)


def edit_csv(path, edit):
    frame = edit(pd.read_csv(path))
    path.unlink()
    frame.to_csv(path, index=False)


# -- missing, unreadable and empty files ---------------------------------------------------------

def test_missing_data_folder(tmp_path, prepare_fails):
    prepare_fails(tmp_path, tmp_path / "nowhere", "nowhere/ does not exist", "Kaggle", "--demo")


def test_missing_input_file(tmp_path, tiny_data, prepare_fails):
    (tiny_data / "id_map.csv").unlink()
    prepare_fails(tmp_path, tiny_data, "missing input file(s)", "id_map.csv", "Kaggle")


def test_de_train_that_is_not_parquet(tmp_path, tiny_data, prepare_fails):
    (tiny_data / "de_train.parquet").write_text("cell_type,sm_name\nB cells,x\n")
    prepare_fails(tmp_path, tiny_data, "de_train.parquet: not a valid parquet file")


def test_id_map_that_is_not_valid_csv(tmp_path, tiny_data, prepare_fails):
    (tiny_data / "id_map.csv").write_text("id,cell_type,sm_name\n0,B cells,x\n1,B cells,y,extra,fields\n")
    prepare_fails(tmp_path, tiny_data, "id_map.csv: not a valid csv file")


def test_empty_file(tmp_path, tiny_data, prepare_fails):
    (tiny_data / "sample_submission.csv").write_bytes(b"")
    prepare_fails(tmp_path, tiny_data, "sample_submission.csv: the file is empty")


# -- columns -------------------------------------------------------------------------------------

def test_de_train_without_a_metadata_column(tmp_path, tiny_data, prepare_fails):
    edit_train(tiny_data, lambda f: f.drop(columns="sm_name"))
    prepare_fails(tmp_path, tiny_data, "de_train.parquet: missing label column(s) sm_name", "cell_type, sm_name",
                  "--perturbation-columns")


def test_id_map_without_a_column(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "id_map.csv", lambda f: f.rename(columns={"cell_type": "cell"}))
    prepare_fails(tmp_path, tiny_data, "id_map.csv: missing label column(s) cell_type", "it has id, cell, sm_name",
                  "--cell-type-column")


def test_optional_metadata_may_be_absent(tmp_path, tiny_data):
    edit_train(tiny_data, lambda f: f.drop(columns=["sm_lincs_id", "SMILES", "control"]))
    assert cli.run(prepare_data.main, ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]) == 0


def test_unknown_text_column_in_de_train(tmp_path, tiny_data, prepare_fails):
    edit_train(tiny_data, lambda f: f.assign(notes="looks fine"))
    prepare_fails(tmp_path, tiny_data, "unknown non-numeric column(s) notes", "drop them (--ignore-columns)")


def test_gene_column_holding_text(tmp_path, tiny_data, prepare_fails):
    def spoil(frame):
        frame["G005"] = frame["G005"].astype(str)
        frame.loc[3, "G005"] = "n.a."
        return frame
    edit_train(tiny_data, spoil)
    prepare_fails(tmp_path, tiny_data, "1 gene column(s) are not numeric (e.g. G005)", "'n.a.'", "row(s) [3]")


def test_gene_column_of_numbers_stored_as_text(tmp_path, tiny_data, prepare_fails):
    edit_train(tiny_data, lambda f: f.assign(G009=f["G009"].astype(str)))
    prepare_fails(tmp_path, tiny_data, "(e.g. G009); column G009 stores its numbers as text")


def test_gene_column_of_true_false_values(tmp_path, tiny_data, prepare_fails):
    edit_train(tiny_data, lambda f: f.assign(G003=f["G003"] > 0))
    prepare_fails(tmp_path, tiny_data, "gene column(s) G003 hold true/false values")


def test_nan_and_inf_targets_are_counted_and_located(tmp_path, tiny_data, prepare_fails):
    def spoil(frame):
        frame.loc[[4, 9], "G002"] = np.nan
        frame.loc[9, "G007"] = np.inf
        return frame
    edit_train(tiny_data, spoil)
    prepare_fails(tmp_path, tiny_data, "3 NaN or infinite value(s) in 2 row(s) and 2 gene(s)",
                  "rows [4, 9]", "genes G002, G007")


def test_values_beyond_any_signed_log10_p_value_are_accepted_with_a_one_line_warning(tmp_path, tiny_data, capsys):
    def inflate(frame):
        frame.loc[[3, 8], "G004"] = 1e30
        frame.loc[8, "G006"] = -500.0
        return frame
    edit_train(tiny_data, inflate)
    assert cli.run(prepare_data.main, ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]) == 0
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and warning.startswith("warning: "), warning
    for text in ("de_train.parquet: 3 value(s) beyond +-324", "largest 1e+30", "in 2 row(s) (e.g. rows [3, 8]",
                 "2 gene(s) (e.g. G004, G006)"):
        assert text in warning, warning


# -- rows, pairs and ids -------------------------------------------------------------------------

def test_duplicate_pairs_in_de_train(tmp_path, tiny_data, prepare_fails):
    edit_train(tiny_data, lambda f: pd.concat([f, f.iloc[[7]]], ignore_index=True))
    pair = pd.read_parquet(tiny_data / "de_train.parquet").iloc[7]
    prepare_fails(tmp_path, tiny_data, "de_train.parquet: 1 (cell_type, sm_name) combination(s) occur more than once",
                  f"({pair.cell_type}, {pair.sm_name})", "keep one row per pair, or average replicates (--replicates mean)")


def test_rows_without_a_cell_type(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "id_map.csv", lambda f: f.assign(cell_type=f["cell_type"].where(f.index != 2, None)))
    prepare_fails(tmp_path, tiny_data, "id_map.csv: 1 row(s) have no value in label column(s) cell_type (e.g. rows [2])")


def test_duplicate_ids_in_id_map(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "id_map.csv", lambda f: f.assign(id=f["id"].where(f["id"] != 5, 4)))
    prepare_fails(tmp_path, tiny_data, "id_map.csv: duplicate ids [4]")


def test_duplicate_pairs_in_id_map(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "id_map.csv", lambda f: f.assign(sm_name=f["sm_name"].where(f.index != 1, f["sm_name"][0])))
    prepare_fails(tmp_path, tiny_data, "id_map.csv: 1 (cell_type, sm_name) combination(s) occur more than once")


def test_id_map_pairs_never_seen_in_training_are_listed(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "id_map.csv", lambda f: f.assign(cell_type=f["cell_type"].where(f.index > 1, "Liver cells")))
    prepare_fails(tmp_path, tiny_data, "id_map.csv: 2 pair(s) have a cell type or perturbation that never occurs "
                  "in the training data", "('Liver cells', ")


def test_a_label_with_a_trailing_space_or_another_case_is_shown_quoted_with_its_near_match(tmp_path, tiny_data, prepare_fails):
    compound = pd.read_csv(tiny_data / "id_map.csv")["sm_name"][0]
    edit_csv(tiny_data / "id_map.csv", lambda f: f.assign(sm_name=f["sm_name"].where(f.index > 0, compound + " "),
                                                          cell_type=f["cell_type"].where(f.index != 1, "b cells")))
    prepare_fails(tmp_path, tiny_data, f"'{compound} ' is probably '{compound}'", "'b cells' is probably 'B cells'",
                  f"('B cells', '{compound} ')")


def test_sample_submission_with_other_genes(tmp_path, tiny_data, prepare_fails):
    edit_csv(tiny_data / "sample_submission.csv", lambda f: f.drop(columns=["G001", "G002"]).assign(XYZ=0.0))
    prepare_fails(tmp_path, tiny_data, "sample_submission.csv: gene columns differ from de_train.parquet",
                  "2 missing (e.g. G001, G002)", "1 extra (e.g. XYZ)")


def test_a_sample_submission_of_another_test_set_gives_the_gene_order_alone(tmp_path, tiny_data, capsys):
    edit_csv(tiny_data / "sample_submission.csv", lambda f: f.assign(id=f["id"].where(f["id"] != 0, 9999)))
    assert cli.run(prepare_data.main, ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]) == 0
    note = capsys.readouterr().out.splitlines()[0]
    assert note.startswith("note: ") and "sample_submission.csv belongs to another test set" in note
    assert "1 missing (e.g. 0), 1 extra (e.g. 9999)" in note and "the rows follow id_map.csv" in note


# -- options and output folders ------------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--stage", "stage_3"], "argument --stage: invalid choice: 'stage_3'"),
    (["--stage", "simple", "--reps", "0"], "argument --reps: must be a positive integer, got '0'"),
    (["--stage", "simple", "--epochs", "x"], "argument --epochs: must be a positive integer, got 'x'"),
    (["--stage", "simple", "--epochs", "1.5"], "argument --epochs: must be a positive integer, got '1.5'"),
])
def test_bad_options(tmp_path, tiny_data, args, expect, fails):
    fails(train, *args, *dirs(tmp_path, tiny_data), tmp_path=tmp_path, expect=[expect, "python -m"])


@pytest.mark.parametrize("module", [prepare_data, train, predict, repro, evaluate])
def test_abbreviated_options_are_refused(tmp_path, tiny_data, module, fails):
    """argparse would read `--submissions` as --submissions-dir, and `--output x.h5ad` as --output-format."""
    fails(module, "--stage", "simple", "--submissions", tmp_path / "other", *dirs(tmp_path, tiny_data),
          tmp_path=tmp_path, expect=["unrecognized arguments: --submissions"])
    if module in (predict, repro):
        fails(module, "--stage", "simple", "--output", "x.h5ad", *dirs(tmp_path, tiny_data),
              tmp_path=tmp_path, expect=["unrecognized arguments: --output x.h5ad"])


def test_output_folder_that_is_a_file(tmp_path, tiny_data, fails):
    (tmp_path / "models").write_text("not a folder")
    fails(repro, "--stage", "simple", *dirs(tmp_path, tiny_data), tmp_path=tmp_path,
          expect=["is a file, not a folder", "--models-dir"])


def test_prepared_folder_that_is_a_file(tmp_path, tiny_data, prepare_fails):
    (tiny_data / "prepared").write_text("")
    prepare_fails(tmp_path, tiny_data, "prepared is a file, not a folder", "--data-dir")


@pytest.mark.skipif(hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0,
                    reason="root may write anywhere")
def test_unwritable_submissions_folder(tmp_path, tiny_data, fails):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    fails(repro, "--stage", "simple", *dirs(tmp_path, tiny_data), "--submissions-dir", locked / "out",
          tmp_path=tmp_path, expect=["no permission to write", "--submissions-dir"])


# -- stage_2's pseudolabels ----------------------------------------------------------------------

def test_stage_2_without_stage_1_submission(tmp_path, tiny_data, prepare_fails):
    prepare_fails(tmp_path, tiny_data, "stage_1_submission.csv does not exist", "python -m repro --stage stage_1",
                  stage="stage_2")


def test_stage_2_with_a_stage_1_submission_of_other_rows(tmp_path, tiny_data, prepare_fails):
    stage_1 = tmp_path / "submissions" / "stage_1_submission.csv"
    stage_1.parent.mkdir()
    pd.read_csv(tiny_data / "sample_submission.csv").iloc[:-2].to_csv(stage_1, index=False)
    prepare_fails(tmp_path, tiny_data, "stage_1_submission.csv: its ids differ from id_map.csv's", "2 missing",
                  stage="stage_2")


# -- predict and its bundles ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_simple(tmp_path_factory, tiny_source):
    """The simple stage trained for one epoch: bundles for the predict tests to spoil (copies)."""
    folder = tmp_path_factory.mktemp("trained_simple")
    shutil.copytree(tiny_source, folder / "data")
    options = Options("simple", folder / "data", folder / "models", folder / "submissions", epochs=1)
    pipeline.prepare(options, log=lambda line: None)
    pipeline.train(options, log=lambda line: None)
    return folder


@pytest.fixture
def trained(trained_simple, tmp_path):
    shutil.copytree(trained_simple, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.fixture
def predict_fails(fails):
    """predict_fails(tmp_path, *expect): predict refuses, as `fails` checks."""
    def run(tmp_path, *expect):
        return fails(predict, "--stage", "simple", *dirs(tmp_path, tmp_path / "data"), tmp_path=tmp_path, expect=expect)
    return run


def test_predict_without_bundles(tmp_path, tiny_data, predict_fails):
    predict_fails(tmp_path, "no trained models in", "python -m train --stage simple")


def test_predict_with_a_rep_missing(trained, predict_fails):
    (trained / "models/simple/model_7/rep_0.npz").unlink()
    predict_fails(trained, "model_7/: incomplete bundle (rep_0.npz missing)", "python -m train --stage simple")


def test_predict_with_a_corrupt_rep(trained, predict_fails, capsys):
    rep = trained / "models/simple/model_7/rep_0.npz"
    rep.write_bytes(rep.read_bytes()[:1000])
    predict_fails(trained, "rep_0.npz: damaged file", "model_7/", "python -m train --stage simple",
                  "retrains the entries with a damaged one")
    options = ["--stage", "simple", *map(str, dirs(trained, trained / "data"))]
    assert cli.run(train.main, [*options, "--epochs", "1"]) == 0  # as the bundle was trained
    log = capsys.readouterr().out
    assert "entry 7 (1/1): retraining (its bundle is incomplete: rep_0.npz is damaged (BadZipFile))" in log
    assert cli.run(predict.main, options) == 0


def test_predict_with_a_corrupt_shared_file(trained, predict_fails):
    (trained / "models/simple/shared.npz").write_text("garbage")
    predict_fails(trained, "shared.npz: damaged file", "python -m train --stage simple")


def test_predict_with_a_damaged_entry_json(trained, predict_fails):
    (trained / "models/simple/model_7/entry.json").write_text("{")
    predict_fails(trained, "model_7/: incomplete bundle (entry.json is damaged)")


def test_predict_with_bundles_of_another_training_run(trained, predict_fails):
    entry = trained / "models/simple/model_7/entry.json"
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "run": "another"}))
    predict_fails(trained, "model_7/ was trained on other inputs, vocabulary or seed", "python -m train")


def test_predict_with_bundles_of_other_genes(trained, predict_fails):
    edit_csv(trained / "data/sample_submission.csv", lambda f: f.drop(columns="G003"))
    predict_fails(trained, "gene columns differ from the genes the models in", "1 missing (e.g. G003)")


def test_predict_on_a_new_id_map_with_the_competitions_sample_submission(trained, capsys):
    """The original's flow: replace id_map.csv with a new test set, keep sample_submission.csv."""
    edit_csv(trained / "data/id_map.csv", lambda f: f.iloc[100:110].assign(id=range(1000, 1010)))
    assert cli.run(predict.main, ["--stage", "simple", *map(str, dirs(trained, trained / "data"))]) == 0
    assert "sample_submission.csv belongs to another test set" in capsys.readouterr().out
    submission = pd.read_csv(trained / "submissions/simple_submission.csv")
    assert submission["id"].tolist() == list(range(1000, 1010))
    assert list(submission.columns) == list(pd.read_csv(trained / "data/sample_submission.csv", nrows=0).columns)


def test_predict_with_labels_outside_the_bundles_vocabulary(trained, predict_fails):
    edit_csv(trained / "data/id_map.csv", lambda f: f.assign(sm_name=f["sm_name"].where(f.index > 0, "Novelmab")))
    predict_fails(trained, "id_map.csv (against the vocabulary of the models in", ", 'Novelmab')")


def test_an_entry_too_wide_for_the_machine_is_refused_before_training(trained, fails):
    wide = {"simple": [{**config.STAGES["simple"][0], "dense_1": 10_000_000}]}
    (trained / "wide.json").write_text(json.dumps(wide))
    shutil.rmtree(trained / "models")
    fails(train, "--stage", "simple", *dirs(trained, trained / "data"), "--stages", trained / "wide.json",
          tmp_path=trained, expect=["stage simple: entry 7 would need about ", "GB this machine has free; make "
                                    "its Dense layers narrower or give it fewer reps"])
    assert not (trained / "models").exists()


def test_errors_are_one_line_even_after_tensorflow_starts(tmp_path, tiny_data):
    """As a user runs it: TensorFlow's start-up notes must not bury the one line."""
    result = run_cli("predict", "--stage", "simple", *dirs(tmp_path, tiny_data), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no trained models in") and result.stderr.count("\n") == 1
