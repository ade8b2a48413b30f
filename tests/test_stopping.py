"""Stop signals that cannot be lost, and one run per folder (pertnet/stopping.py, pertnet/locks.py).

The timing is made to happen on purpose: a signal sent from inside a finalizer, a run frozen with
SIGSTOP while it holds its folder, a lock held by a child process until the test lets it go.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

import config
import predict
import repro
import train
from conftest import ROOT, dirs, run_cli
from pertnet import Interrupted, cli, stopping

QUICK = ["--reps", "2", "--epochs", "3"]
STAGES = {"stage_1": [e for e in config.STAGES["stage_1"] if e["id"] in ("1", "5", "7")]}  # 3 x 2 = 6 model-reps


def test_the_first_signal_is_recorded_and_a_second_one_stops_at_once():
    with stopping.handled():
        signal.raise_signal(signal.SIGTERM)
        assert stopping.requested() == signal.SIGTERM
        with pytest.raises(Interrupted) as stop:
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C while it winds down
        assert stop.value.signum == signal.SIGINT
    assert stopping.requested() == signal.SIGTERM  # the handlers are restored, the request stays for cli.run


def test_a_signal_after_the_last_safe_point_still_ends_the_run_as_a_stop(capsys):
    def main(argv):
        signal.raise_signal(signal.SIGHUP)  # a terminal closing as the command finishes

    assert cli.run(main, []) == 128 + signal.SIGHUP
    assert capsys.readouterr().err.startswith("interrupted: ")


def test_sighup_is_left_ignored_under_nohup():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert cli.run(lambda argv: signal.raise_signal(signal.SIGHUP), []) == 0
    finally:
        signal.signal(signal.SIGHUP, previous)


def _python(script, folder, *args):
    """Start `python -c script args` in `folder` with SIGINT ignored, as in a background job."""
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=folder, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


# `python -m train`, with a finalizer that sends SIGTERM once the first entry is saved: the signal
# arrives inside __del__, where an exception raised by a handler is printed and dropped.
TRAIN_WITH_A_SIGNALLING_FINALIZER = """
import signal, sys
import train
from pertnet import bundle, cli

class SignalsWhenFreed:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)

save_entry = bundle.save_entry
def save_then_free(*args, **kwargs):
    save_entry(*args, **kwargs)
    if bundle.save_entry is save_then_free:
        bundle.save_entry = save_entry  # once
        SignalsWhenFreed()  # freed at once: its finalizer runs, and sends the signal
bundle.save_entry = save_then_free
sys.exit(cli.run(train.main, sys.argv[1:]))
"""


@pytest.fixture
def prepared(tmp_path, tiny_data):
    (tmp_path / "stages.json").write_text(json.dumps(STAGES))
    result = run_cli("prepare_data", "--stage", "stage_1", *dirs(tmp_path, tiny_data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return [*dirs(tmp_path, tiny_data), "--stages", tmp_path / "stages.json"]


def test_a_signal_inside_a_finalizer_stops_the_run(tmp_path, prepared):
    process = _python(TRAIN_WITH_A_SIGNALLING_FINALIZER, tmp_path, "--stage", "stage_1", *QUICK, *prepared)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Exception ignored" not in err
    assert err == f"interrupted: 2 of 6 model-reps saved in {tmp_path / 'models' / 'stage_1'}/; rerun the same " \
                  "command to resume\n"
    assert out.count(": saved 2 reps in ") == 1
    assert not list((tmp_path / "models").rglob("*.tmp"))


def test_one_run_per_folder_and_a_killed_run_leaves_it_usable(tmp_path, prepared, capsys):
    """A train frozen (SIGSTOP) while it trains: a second train, a repro and a predict (run here, in
    this process) refuse, naming it; once it is killed with SIGKILL the folder is usable at once."""
    first = _python("import sys, train; from pertnet import cli; sys.exit(cli.run(train.main, sys.argv[1:]))",
                    tmp_path, "--stage", "stage_1", *QUICK, *prepared)
    for line in first.stdout:
        if " entry " in line and "family" in line:  # training its first entry: the folder is held
            first.send_signal(signal.SIGSTOP)
            break
    args = ["--stage", "stage_1", *QUICK, *map(str, prepared)]
    try:
        folder = tmp_path / "models" / "stage_1"
        assert cli.run(train.main, args) == 2
        assert capsys.readouterr().err == (
            f"error: {folder}/ is being written by process {first.pid} (python -c import sys, train; from pertnet "
            f"import cli; sys.exit(cli.run(train.main, sys.argv[1:])) {' '.join(args)}); one run per folder: "
            "wait for it to end, or give this run another --models-dir\n")
        assert cli.run(predict.main, ["--stage", "stage_1", *map(str, prepared)]) == 2
        reading = capsys.readouterr().err
        assert reading.startswith(f"error: {folder}/ is being trained by process {first.pid} (")
        assert reading.endswith("); predict once it has finished\n")
        assert cli.run(repro.main, args) == 2
        assert f"is being written by process {first.pid}" in capsys.readouterr().err
    finally:
        first.kill()
        first.communicate()
    assert cli.run(train.main, ["--stage", "stage_1", "--reps", "1", "--epochs", "1", *map(str, prepared)]) == 0
