"""End to end, as a user runs it: the four entry modules on the tiny synthetic dataset."""
import numpy as np
import pandas as pd

import repro
from conftest import dirs, run_cli
from pertnet import cli


def read_submission(path):
    return pd.read_csv(path)


def test_simple_repro_writes_a_submission_and_scores_it(tmp_path, tiny_data):
    result = run_cli("repro", "--stage", "simple", "--epochs", "2", *dirs(tmp_path, tiny_data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "departing from the faithful configuration: --epochs 2" in result.stdout
    assert "baseline: all zeros" in result.stdout and "baseline: compound mean" in result.stdout
    submission = read_submission(tmp_path / "submissions" / "simple_submission.csv")
    sample = pd.read_csv(tiny_data / "sample_submission.csv")
    id_map = pd.read_csv(tiny_data / "id_map.csv")
    assert list(submission.columns) == list(sample.columns)
    assert submission["id"].tolist() == id_map["id"].tolist()
    assert np.isfinite(submission.drop(columns="id").to_numpy()).all()
    bundle = tmp_path / "models" / "simple" / "model_7"
    assert sorted(p.name for p in bundle.iterdir()) == ["entry.json", "rep_0.npz"]


def test_stage_2_without_stage_1_says_to_run_stage_1(tmp_path, tiny_data):
    result = run_cli("prepare_data", "--stage", "stage_2", *dirs(tmp_path, tiny_data), cwd=tmp_path)
    assert result.returncode == 2
    assert "python -m repro --stage stage_1" in result.stderr
    assert not (tiny_data / "prepared").exists()


def test_predict_without_models_names_the_train_command(tmp_path, tiny_data):
    result = run_cli("predict", "--stage", "simple", *dirs(tmp_path, tiny_data), cwd=tmp_path)
    assert result.returncode == 2
    assert "python -m train --stage simple" in result.stderr
    assert not (tmp_path / "submissions").exists()


def test_missing_competition_files_point_to_kaggle_and_demo(tmp_path, capsys):
    assert cli.run(repro.main, ["--stage", "simple", *map(str, dirs(tmp_path, tmp_path / "empty"))]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    for word in ("de_train.parquet", "id_map.csv", "sample_submission.csv", "Kaggle", "--demo"):
        assert word in error

