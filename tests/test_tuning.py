"""python -m tune: studies in SQLite and on a real PostgreSQL server shared by two workers, the
weights study, the stages file it writes, and its errors. Tiny data, 1 rep x 1 epoch."""
import json
import os
import shutil
import subprocess
import sys

import optuna
import pandas as pd
import pytest

import config
import evaluate
import predict
import train
import tune
from conftest import ROOT, TINY_GENES, dirs
from pertnet import cli, memory, synthetic, tuning
from pertnet.entries import read_stages, stage_entries

QUICK = ["--reps", "1", "--epochs", "1"]


@pytest.fixture
def data(tiny_source, tmp_path):
    shutil.copytree(tiny_source, tmp_path / "data", ignore=shutil.ignore_patterns("de_test.parquet"))
    return tmp_path / "data"


def tune_args(tmp_path, data, *args):
    return ["--stage", "stage_1", *QUICK, "--data-dir", str(data), "--tuning-dir", str(tmp_path / "tuning"),
            *map(str, args)]


def study(storage, prefix):
    """The one study of `storage` whose name starts with `prefix` (the default names end in the data's digest)."""
    (name,) = [name for name in optuna.get_all_study_names(storage) if name.startswith(prefix)]
    return optuna.load_study(study_name=name, storage=storage)


def test_the_search_space_holds_every_configured_value():
    for stage in config.STAGES:
        for entry in stage_entries(stage):
            for name, (kind, low, high, step) in tuning.search_space(entry).items():
                value = getattr(entry, name)
                assert low <= value <= high, (stage, entry.id, name)
                assert step is None or (value - low) % step == 0, (stage, entry.id, name)
    assert "epochs" not in tuning.search_space(stage_entries("simple")[0], fixed={"epochs": 1})


def test_two_workers_share_one_study_on_postgresql(postgres_url, tmp_path, data):
    url = postgres_url.replace("tuner@", "tuner:secret@")  # the server trusts loopback; the password is for show
    args = tune_args(tmp_path, data, "--entry", "1", "--trials", "1", "--storage", url, "--out", tmp_path / "best.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-m", "tune", *args], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
        assert "secret" not in out + err and "tuner:***@127.0.0.1" in out
    study_ = study(postgres_url, "stage_1-entry-1-")
    assert len(study_.trials) == 2 and all(t.state.is_finished() for t in study_.trials)  # 1 + 1
    assert len({t.user_attrs["worker"] for t in study_.trials}) == 2  # both contributed their trial
    (entry,) = stage_entries("stage_1", ids=["1"])
    assert study_.trials[0].params == dict(lr=entry.lr, emb_out=entry.emb_out, bs=entry.bs, n_dim=entry.n_dim)
    assert len({tuple(t.params.values()) for t in study_.trials}) == 2  # the second drew its own
    tuned = {e.id: e for e in read_stages(tmp_path / "best.json")["stage_1"]}
    assert {k: getattr(tuned["1"], k) for k in study_.best_params} == study_.best_params
    assert tuned["1"].reps == entry.reps and tuned["1"].epochs == entry.epochs  # configured, not the quick look


def test_the_default_sqlite_study_resumes_and_plots(tmp_path, data, capsys):
    args = tune_args(tmp_path, data, "--entry", "1", "--trials", "1")
    assert cli.run(tune.main, args) == 0
    assert cli.run(tune.main, [*args, "--plot", str(tmp_path / "history.png")]) == 0
    log = capsys.readouterr().out
    assert "sqlite:///" in log and "1 trial(s) so far; adding 1" in log
    assert (tmp_path / "tuning" / "optuna.db").is_file()
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    assert [t.number for t in study(f"sqlite:///{tmp_path / 'tuning' / 'optuna.db'}", "stage_1-entry-1-").trials] == [0, 1]
    assert "trial 1 (1/1 here)" in log and "CV MRRMSE" in log


def test_a_weights_study_reuses_its_cached_out_of_fold_predictions(tmp_path, data, capsys):
    two = {"stage_1": [e.as_dict() for e in stage_entries("stage_1", ids=["1", "5"])]}
    (tmp_path / "two.json").write_text(json.dumps(two))
    args = tune_args(tmp_path, data, "--weights", "--trials", "3", "--stages", tmp_path / "two.json",
                     "--out", tmp_path / "weights.json")
    assert cli.run(tune.main, args) == 0
    assert "out-of-fold predictions ->" in capsys.readouterr().out
    assert cli.run(tune.main, args) == 0
    assert "out-of-fold predictions of 2 entries: read from" in capsys.readouterr().out
    weights_study = study(f"sqlite:///{tmp_path / 'tuning' / 'optuna.db'}", "stage_1-weights-")
    assert len(weights_study.trials) == 6
    # evaluate --cv finds the same cache: no training, and its score is the study's starting trial's
    report = tmp_path / "cv.json"
    assert cli.run(evaluate.main, [*tune_args(tmp_path, data, "--cv", "--stages", tmp_path / "two.json", "--json",
                                              report, "--models-dir", tmp_path / "models")]) == 0
    out = capsys.readouterr().out
    assert "out-of-fold predictions of 2 entries: read from" in out and "epoch 1/1" not in out
    assert json.loads(report.read_text())["scores"]["model"]["overall"]["mrrmse"] == pytest.approx(weights_study.trials[0].value)
    assert (tmp_path / "models" / "stage_1" / "calibration.npz").is_file()
    weights = {e.id: e.weight for e in read_stages(tmp_path / "weights.json")["stage_1"]}
    assert weights == {"1": weights_study.best_params["weight_1"], "5": weights_study.best_params["weight_5"]}


def test_a_tuned_stage_trains_and_predict_refuses_the_wrong_configuration(tmp_path, data, capsys):
    stages = {"simple": [{**config.STAGES["simple"][0], "lr": 0.003, "weight": 0.5}]}
    (tmp_path / "tuned.json").write_text(json.dumps(stages))
    common = ["--stage", "simple", *map(str, dirs(tmp_path, data))]
    import prepare_data
    assert cli.run(prepare_data.main, common) == 0
    assert cli.run(train.main, [*common, "--epochs", "1", "--stages", str(tmp_path / "tuned.json")]) == 0
    capsys.readouterr()
    assert cli.run(predict.main, common) == 2
    error = capsys.readouterr().err
    assert "model_7/ was trained with the entry of" in error and "tuned.json, not config.py's (weight, lr differ)" in error
    assert cli.run(predict.main, [*common, "--stages", str(tmp_path / "tuned.json")]) == 0


@pytest.mark.parametrize("args, message", [
    (["--entry", "9", "--trials", "1"], "stage stage_1 has no entries 9; its entries are 1, 2, 3, 5, 6, 7, 8"),
    (["--entry", "1", "--trials", "0"], "argument --trials: must be a positive integer, got '0'"),
    (["--trials", "1"], "one of the arguments --entry --weights is required"),
    (["--entry", "1", "--trials", "1", "--storage", "not a url"], "--storage 'not a url' is not a database URL"),
    (["--entry", "1", "--trials", "1", "--storage", "postgresql://me:secret@127.0.0.1:1/db"],
     "cannot open the study storage postgresql://me:***@127.0.0.1:1/db"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, data, capsys, args, message):
    assert cli.run(tune.main, tune_args(tmp_path, data, *args)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "secret" not in error, error
    assert not (tmp_path / "tuning").exists()


def test_a_weights_search_that_cannot_hold_its_predictions_is_refused_before_training(tmp_path, data, capsys,
                                                                                      monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda: 2 ** 20)
    assert cli.run(tune.main, tune_args(tmp_path, data, "--weights", "--trials", "1")) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "searching the weights of 7 entries" in error and "GB this machine" in error
    assert not (tmp_path / "tuning").exists() and not list(tmp_path.glob(".pertnet-cv-*"))


def test_a_study_made_for_another_entry_is_refused(tmp_path, data, capsys):
    assert cli.run(tune.main, tune_args(tmp_path, data, "--entry", "1", "--trials", "1", "--study", "mine")) == 0
    assert cli.run(tune.main, tune_args(tmp_path, data, "--entry", "5", "--trials", "1", "--study", "mine")) == 2
    assert "study 'mine' in sqlite:///" in capsys.readouterr().err


def test_a_stages_file_with_a_bad_field_is_refused_before_any_work(tmp_path, data, capsys):
    entry = {k: v for k, v in config.STAGES["stage_1"][0].items() if k != "lr"}
    (tmp_path / "bad.json").write_text(json.dumps({"stage_1": [entry]}))
    assert cli.run(tune.main, tune_args(tmp_path, data, "--entry", "1", "--trials", "1", "--stages",
                                        tmp_path / "bad.json")) == 2
    assert "bad.json, stage stage_1: entry '1': missing field(s) lr" in capsys.readouterr().err
    assert not (tmp_path / "tuning").exists()


def test_a_trial_too_big_for_the_machine_is_pruned_with_a_note(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setattr(memory, "machine_bytes", lambda: 0)  # nothing fits
    assert cli.run(tune.main, tune_args(tmp_path, data, "--entry", "1", "--trials", "1")) == 2
    out, err = capsys.readouterr()
    assert "pruned after 0 fold(s) (entry 1 would need about " in out
    assert err.startswith("error: study 'stage_1-entry-1-") and "has no complete trial yet" in err and err.count("\n") == 1


@pytest.fixture
def one_screen_two_designs(tmp_path):
    """One screen's training rows (5 cell types x 20 compounds; HepG2 lacks compounds 0-9, K562 lacks 10-19),
    in two data folders whose id_maps ask for HepG2's missing pairs (a) and K562's (b): the designs give
    folds over other rows."""
    cell_types, compounds = ["A549", "HepG2", "K562", "MCF7", "PC3"], [f"compound {i:02d}" for i in range(20)]
    grid = pd.DataFrame([(c, s) for c in cell_types for s in compounds], columns=["cell_type", "sm_name"])
    missing = {"a": (grid.cell_type == "HepG2") & grid.sm_name.isin(compounds[:10]),
               "b": (grid.cell_type == "K562") & grid.sm_name.isin(compounds[10:])}
    metadata = synthetic.screen_design(cell_types, compounds, 1, 1)[0]
    folders = {}
    for name, asked in missing.items():
        folders[name] = tmp_path / f"design_{name}"
        id_map = grid[asked].reset_index(drop=True).rename_axis("id").reset_index()
        synthetic.generate(folders[name], n_genes=TINY_GENES, design=(metadata, grid[~(missing["a"] | missing["b"])],
                                                                         id_map))
    assert (pd.read_parquet(folders["a"] / "de_train.parquet").equals(pd.read_parquet(folders["b"] / "de_train.parquet")))
    return folders


def test_evaluate_cv_reads_only_a_cache_made_for_its_own_folds(tmp_path, one_screen_two_designs, capsys):
    """tune caches out-of-fold predictions for design a; evaluate --cv on design b (the same training rows,
    other folds) must train its own folds and score what a fresh cross-validation scores."""
    one = {"stage_1": [e.as_dict() for e in stage_entries("stage_1", ids=["1"])]}
    (tmp_path / "one.json").write_text(json.dumps(one))
    design_a, design_b = one_screen_two_designs["a"], one_screen_two_designs["b"]
    assert cli.run(tune.main, tune_args(tmp_path, design_a, "--weights", "--trials", "1", "--stages",
                                        tmp_path / "one.json")) == 0
    assert "out-of-fold predictions ->" in capsys.readouterr().out
    scores = {}
    for name, tuning_dir in (("with tuning's cache", tmp_path / "tuning"), ("fresh", tmp_path / "empty")):
        report = tmp_path / f"{name}.json"
        assert cli.run(evaluate.main, tune_args(tmp_path, design_b, "--cv", "--stages", tmp_path / "one.json",
                                                "--tuning-dir", tuning_dir, "--json", report,
                                                "--models-dir", tmp_path / "models")) == 0
        out = capsys.readouterr().out
        assert "read from" not in out and "epoch 1/1" in out, name
        scores[name] = json.loads(report.read_text())["scores"]["model"]["overall"]["mrrmse"]
    assert scores["with tuning's cache"] == scores["fresh"]
    # and design a itself still finds its cache, saying which data it was made for
    assert cli.run(evaluate.main, tune_args(tmp_path, design_a, "--cv", "--stages", tmp_path / "one.json",
                                            "--models-dir", tmp_path / "models")) == 0
    out = capsys.readouterr().out
    assert "read from" in out and "made for the same entries, seeds and data " in out and "epoch 1/1" not in out


def test_another_dataset_gets_its_own_study_and_stages_file(tmp_path, one_screen_two_designs, capsys):
    """Two datasets tuned into one tuning folder: the second starts its own study (trial 0 is its own
    starting configuration) and writes its own stages file; each line says which data the study is of."""
    outs = {}
    for name, folder in one_screen_two_designs.items():
        assert cli.run(tune.main, tune_args(tmp_path, folder, "--entry", "1", "--trials", "1")) == 0
        outs[name] = capsys.readouterr().out
    assert all("0 trial(s) so far; adding 1" in out for out in outs.values())
    for name, folder in one_screen_two_designs.items():
        assert ", data " in outs[name] and f"({folder / 'de_train.parquet'}: 80 rows x {TINY_GENES} genes; " in outs[name]
    storage = f"sqlite:///{tmp_path / 'tuning' / 'optuna.db'}"
    names = sorted(optuna.get_all_study_names(storage))
    assert len(names) == 2 and all(name.startswith("stage_1-entry-1-") for name in names)
    for name in names:
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == 1
        assert (tmp_path / "tuning" / f"{name}.json").is_file()
        assert f"[tune {name}]" in outs["a"] + outs["b"]
    # a study named on the command line is refused for other data, in one line
    assert cli.run(tune.main, tune_args(tmp_path, one_screen_two_designs["a"], "--entry", "1", "--trials", "1",
                                        "--study", "shared")) == 0
    capsys.readouterr()
    assert cli.run(tune.main, tune_args(tmp_path, one_screen_two_designs["b"], "--entry", "1", "--trials", "1",
                                        "--study", "shared")) == 2
    error = capsys.readouterr().err
    assert "study 'shared' in sqlite:///" in error and "made for another data" in error and error.count("\n") == 1
