"""Interruptions and reruns: Ctrl-C, SIGTERM, SIGKILL and resume, and byte-identical submissions per seed.

Two full runs share the work. Run A runs every stage uninterrupted. Run B trains stage_1 with
three interruptions (Ctrl-C after the first saved entry, SIGTERM after the next, then SIGKILL),
then runs stage_2 (which resumes stage_1 first) and simple. Every submission of B must equal A's byte for byte:
resuming lost nothing, and the same seed gives the same bytes in another process. B's train
runs start with SIGINT ignored, as a job started with `&` or `nohup` inherits it.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import config
import predict
import repro
from conftest import ROOT, dirs, run_cli
import pertnet
from pertnet import architectures, cli, outputs, pipeline, training, version
from pertnet.options import Options

QUICK = ["--reps", "2", "--epochs", "2"]
# Four entries per stage, seven families between them, through a stages file (--stages): every
# mechanism of the full stages at a third of their training; 4 stage_1 entries x 2 reps = 8 model-reps.
STAGES = {"stage_1": [e for e in config.STAGES["stage_1"] if e["id"] in ("1", "2", "5", "7")],
          "stage_2": [e for e in config.STAGES["stage_2"] if e["id"] in ("3a", "4a", "6a", "8a")]}
SUBMISSIONS = ["simple", "stage_1", "stage_2"]


def copy_data(tiny_source, folder):
    shutil.copytree(tiny_source, folder / "data", ignore=shutil.ignore_patterns("de_test.parquet"))
    (folder / "stages.json").write_text(json.dumps(STAGES))
    return folder


def run(module, *args, folder):
    result = run_cli(module, *args, *dirs(folder, folder / "data"), *stages(module, folder), cwd=folder)
    assert result.returncode == 0, result.stderr
    return result


def stages(module, folder):
    return [] if module == "prepare_data" else ["--stages", folder / "stages.json"]


def stop_after_saves(folder, sig, saves=1):
    """Start `train --stage stage_1` with SIGINT ignored, as in a background job; send `sig` as soon
    as `saves` entries have been saved."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "train", "--stage", "stage_1", *QUICK,
                                *map(str, dirs(folder, folder / "data")), *map(str, stages("train", folder))],
                               cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if sum(": saved " in seen for seen in lines) == saves:
            process.send_signal(sig)
            break
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + out, err)


def submissions(folder):
    return {stage: outputs.path(folder / "submissions", stage).read_bytes() for stage in SUBMISSIONS}


def uninterrupted_run(folder):
    run("repro", "--stage", "stage_2", *QUICK, folder=folder)
    run("repro", "--stage", "simple", *QUICK, folder=folder)


def interrupted_run(folder):
    """Ctrl-C after the first saved entry, SIGTERM after the next, SIGKILL after the next, resume, then the rest."""
    run("prepare_data", "--stage", "stage_1", folder=folder)
    logs = dict(ctrl_c=stop_after_saves(folder, signal.SIGINT), sigterm=stop_after_saves(folder, signal.SIGTERM),
                killed=stop_after_saves(folder, signal.SIGKILL),
                resumed=run("repro", "--stage", "stage_2", *QUICK, folder=folder))  # stage_1 resumes first
    run("repro", "--stage", "simple", *QUICK, folder=folder)
    return logs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_source):
    """(run A's folder, run B's folder, run B's logs). The two run side by side: their processes
    spend most of their time tracing small graphs on one core each."""
    run_a, run_b = (copy_data(tiny_source, tmp_path_factory.mktemp(name)) for name in ("run_a", "run_b"))
    with ThreadPoolExecutor(1) as background:
        run_a_done = background.submit(uninterrupted_run, run_a)
        logs = interrupted_run(run_b)
        run_a_done.result()
    return run_a, run_b, logs


@pytest.mark.parametrize("stop, exit_code, saved_before", [("ctrl_c", 130, 0), ("sigterm", 143, 2)])
def test_ctrl_c_and_sigterm_stop_cleanly_and_say_how_to_resume(runs, stop, exit_code, saved_before):
    """Even with SIGINT ignored by the parent; after the entry that was training when the signal came."""
    _, run_b, logs = runs
    result = logs[stop]
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    saved = re.fullmatch(r"interrupted: (\d+) of 8 model-reps saved in .*stage_1/; rerun the same command "
                         r"to resume\n", result.stderr)
    assert saved and saved_before + 2 <= int(saved.group(1)) < 8, result.stderr
    assert not [p for p in (run_b / "models").rglob("*") if p.name.endswith(".tmp")]


def test_a_rerun_after_sigkill_resumes_where_it_stopped(runs):
    run_a, run_b, logs = runs
    assert logs["killed"].returncode == -signal.SIGKILL
    resumed = logs["resumed"].stdout
    assert "[stage_1] entry 1 (1/4): skipped, its 2 model-reps are saved from the same inputs" in resumed
    assert "[stage_1] entry 2 (2/4): skipped" in resumed and "[stage_1] entry 5 (3/4): skipped" in resumed
    skipped = re.search(r"\[stage_1\] trained (\d) entries \((\d+) model-reps\), skipped (\d) already saved "
                        r"\((\d+) model-reps\) \(entries 1, 2, 5", resumed)
    assert skipped, resumed
    assert int(skipped.group(1)) + int(skipped.group(3)) == 4 and int(skipped.group(1)) >= 1
    assert submissions(run_b)["stage_1"] == submissions(run_a)["stage_1"]


def test_same_seed_gives_byte_identical_submissions_in_every_stage(runs):
    run_a, run_b, _ = runs
    assert submissions(run_b) == submissions(run_a)


def test_another_seed_gives_another_submission(runs, tmp_path, tiny_source):
    folder = copy_data(tiny_source, tmp_path)
    assert cli.run(repro.main, ["--stage", "simple", *QUICK, "--seed", "7", *map(str, dirs(folder, folder / "data"))]) == 0
    assert submissions(runs[0])["simple"] != outputs.path(folder / "submissions", "simple").read_bytes()


def test_changed_hyperparameters_or_force_retrain_and_the_log_says_why(tmp_path, tiny_data, monkeypatch):
    """Which entries a rerun trains (training itself stubbed out: what it decides is the point)."""
    def zero_weights(entry, inputs, targets, vocab_size, seeds, on_epoch=None):
        return [[np.zeros(shape, np.float32) for shape, _ in architectures.weight_specs(entry, vocab_size)]
                for _ in seeds]

    monkeypatch.setattr(training, "train_entry", zero_weights)
    folders = dict(data_dir=tiny_data, models_dir=tmp_path / "models", submissions_dir=tmp_path / "submissions")
    pipeline.prepare(Options("stage_1", **folders), log=lambda line: None)

    def train(**options):
        lines = []
        pipeline.train(Options("stage_1", **folders, **options), log=lines.append)
        return "\n".join(lines)

    assert "trained 7 entries (14 model-reps), skipped 0 already saved (0 model-reps)" in train(reps=2, epochs=2)
    assert "trained 0 entries (0 model-reps), skipped 7 already saved (14 model-reps)" in train(reps=2, epochs=2)
    other = "retraining (its bundle was made from other inputs, hyperparameters or seed)"
    assert train(reps=2, epochs=1).count(other) == 7
    assert train(reps=2, epochs=1, seed=7).count(other) == 7
    assert train(reps=2, epochs=1, seed=7, force=True).count("retraining (--force)") == 7
    (tmp_path / "models/stage_1/model_3/rep_1.npz").unlink()
    log = train(reps=2, epochs=1, seed=7)
    assert "entry 3 (3/7): retraining (its bundle is incomplete: rep_1.npz missing)" in log
    assert "trained 1 entries (2 model-reps), skipped 6 already saved (12 model-reps) (entries 1, 2, 5, 6, 7, 8)" in log
    rep = tmp_path / "models/stage_1/model_6/rep_0.npz"
    damaged = bytearray(rep.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte inside a weight array
    rep.write_bytes(damaged)
    (tmp_path / "models/stage_1/model_8/rep_1.npz").write_bytes(b"")
    log = train(reps=2, epochs=1, seed=7)
    assert "entry 6 (5/7): retraining (its bundle is incomplete: rep_0.npz is damaged (BadZipFile))" in log
    assert "entry 8 (7/7): retraining (its bundle is incomplete: rep_1.npz is damaged (" in log
    assert "trained 2 entries (4 model-reps), skipped 5 already saved" in log
    # after an upgrade every entry retrains, and says why: no stage mixes models of two versions
    monkeypatch.setattr(version, "VERSION", "99.0.0")
    log = train(reps=2, epochs=1, seed=7)
    assert log.count(f"retraining (its bundle was made by pertnet {pertnet.__version__}, this is 99.0.0)") == 7
    assert "trained 7 entries (14 model-reps), skipped 0 already saved" in log


def test_stage_2_trains_on_stage_1s_predictions_as_pseudolabels(runs):
    run_a = runs[0]
    prepared = pipeline.load_prepared(run_a / "data", "stage_2")
    prepared["train_targets"] = np.asarray(prepared["train_targets"])
    assert len(prepared["train_inputs"]) == 614 + 255
    stage_1 = pd.read_csv(outputs.path(run_a / "submissions", "stage_1"))
    id_map = pd.read_csv(run_a / "data" / "id_map.csv")
    labels, genes = list(prepared["vocabulary"]), list(prepared["genes"])
    for row in (0, 200):  # a B-cell and a Myeloid pair
        pair = [labels.index(id_map.cell_type[row]), labels.index(id_map.sm_name[row])]
        (match,) = np.flatnonzero((prepared["train_inputs"] == pair).all(axis=1))
        assert np.allclose(prepared["train_targets"][match], stage_1.loc[row, genes].to_numpy(np.float32))


def test_predict_needs_no_training_data(runs, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(runs[0], folder)
    (folder / "data" / "de_train.parquet").unlink()
    shutil.rmtree(folder / "data" / "prepared")
    before = outputs.path(folder / "submissions", "stage_2").read_bytes()
    outputs.path(folder / "submissions", "stage_2").unlink()
    options = ["--stage", "stage_2", *map(str, dirs(folder, folder / "data"))]
    assert cli.run(predict.main, options) == 2  # the bundles came from stages.json, not config.py
    assert cli.run(predict.main, [*options, "--stages", str(folder / "stages.json")]) == 0
    assert outputs.path(folder / "submissions", "stage_2").read_bytes() == before


def test_stage_2_on_pairs_it_had_no_pseudolabels_for_says_so(runs, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(runs[0], folder)
    options = ["--stage", "stage_2", *map(str, dirs(folder, folder / "data")), "--stages", str(folder / "stages.json")]
    assert cli.run(predict.main, options) == 0
    assert "note:" not in capsys.readouterr().out  # the pairs it was fitted on
    id_map = pd.read_csv(folder / "data" / "id_map.csv")
    trained_pairs = pd.read_parquet(folder / "data" / "de_train.parquet", columns=["cell_type", "sm_name"])
    other = pd.concat([id_map.head(3), trained_pairs.head(2)], ignore_index=True)[["cell_type", "sm_name"]]
    other.insert(0, "id", range(len(other)))
    other.to_csv(folder / "data" / "id_map.csv", index=False)
    (folder / "data" / "sample_submission.csv").unlink()
    assert cli.run(predict.main, options) == 0
    assert (f"[stage_2] note: 2 of the 5 pairs in {folder / 'data' / 'id_map.csv'} are not among the "
            f"{len(id_map)} whose pseudolabels these models were fitted on") in capsys.readouterr().out
