"""Training on a Dask cluster (pertnet/cluster.py): byte-identical to the serial run, on a local cluster and on a
real one (a `dask scheduler` and two `dask worker` processes on loopback, started here), also when a worker is
killed in the middle of its entry."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import config
import repro
from conftest import ROOT, dirs, run_cli
from pertnet import cli

# three stage_1 entries, two reps of a few epochs: tasks of a few seconds each
STAGES = {"stage_1": [e for e in config.STAGES["stage_1"] if e["id"] in ("1", "2", "5")]}
QUICK = ["--reps", "2", "--epochs", "3"]


def train_here(tmp_path, data, *extra):
    (tmp_path / "stages.json").write_text(json.dumps(STAGES))
    done = run_cli("repro", "--stage", "stage_1", *QUICK, "--stages", tmp_path / "stages.json",
                   *dirs(tmp_path, data), *extra, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return (tmp_path / "submissions" / "stage_1_submission.csv").read_bytes(), done.stdout


@pytest.fixture(scope="module")
def serial(tmp_path_factory, tiny_source):
    """The serial run's submission (on a copy: the session's source data stays as generated)."""
    folder = tmp_path_factory.mktemp("serial")
    shutil.copytree(tiny_source, folder / "data")
    return train_here(folder, folder / "data")[0]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers (no nanny: a killed worker stays dead) on loopback; stopped at the end."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    processes = {"scheduler": subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                                "--port", str(port), "--no-dashboard"], **quiet)}
    try:
        from distributed import Client

        for name in ("w1", "w2"):
            processes[name] = subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                                "--no-nanny", "--no-dashboard", "--name", name], **quiet)
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, processes
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


def test_a_local_cluster_stops_on_sigterm_keeping_what_arrived_and_resumes_to_the_serial_bytes(serial, tiny_data,
                                                                                            tmp_path):
    """SIGTERM as soon as the first entry arrived from the workers: the rest is cancelled, what arrived is
    saved; the rerun (in this process) trains only the rest, and the submission is the serial run's."""
    (tmp_path / "stages.json").write_text(json.dumps(STAGES))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "repro", "--stage", "stage_1", *QUICK, "--stages", str(tmp_path / "stages.json"),
            *map(str, dirs(tmp_path, tiny_data)), "--workers", "2"]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "entries trained (saved:" in line:
            process.send_signal(signal.SIGTERM)
            break
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err[-2000:]
    assert "model-reps saved in" in err and "rerun the same command to resume" in err
    submission, out = train_here(tmp_path, tiny_data)  # the rest, here: the same bytes whoever trains what
    assert "skipped, its 2 model-reps are saved" in out
    assert submission == serial


def test_a_real_cluster_trains_the_same_bytes_also_when_a_worker_is_killed_mid_entry(serial, tiny_data, tmp_path,
                                                                                   dask_cluster):
    address, processes = dask_cluster
    killed = []

    def kill_the_first_busy_worker():
        """As soon as a worker holds an entry, kill its process: the scheduler gives the entry to the other."""
        from distributed import Client

        with Client(address, timeout="60s") as client:
            names = {worker: info["name"] for worker, info in client.scheduler_info()["workers"].items()}
            deadline = time.monotonic() + 300
            while not killed and time.monotonic() < deadline:
                busy = [names[worker] for worker, tasks in client.processing().items() if tasks]
                if busy:
                    processes[busy[0]].send_signal(signal.SIGKILL)
                    killed.append(busy[0])
                time.sleep(0.02)

    monitor = threading.Thread(target=kill_the_first_busy_worker)
    monitor.start()
    try:
        submission, out = train_here(tmp_path, tiny_data, "--cluster", address)
    finally:
        monitor.join()
    assert killed and processes[killed[0]].poll() is not None  # a worker died holding an entry
    assert f"training on the cluster at {address}" in out and "3 of 3 entries trained" in out
    assert submission == serial


@pytest.mark.parametrize("address, message", [
    ("tcp://127.0.0.1:{port}", "cannot reach the scheduler"), ("127.0.0.1:8786", "not a scheduler address")])
def test_an_unreachable_scheduler_is_one_line_before_any_work(tmp_path, tiny_data, capsys, address, message):
    address = address.format(port=free_port())
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert cli.run(repro.main, ["--stage", "simple", "--epochs", "1", "--cluster", address,
                                *map(str, dirs(tmp_path, tiny_data))]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --cluster {address}: {message}") and error.count("\n") == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_cross_validation_on_a_local_cluster_scores_what_the_serial_one_scores(tiny_data, tmp_path):
    (tmp_path / "stages.json").write_text(json.dumps({"stage_1": STAGES["stage_1"][:2]}))
    scores = {}
    for name, extra in (("serial", []), ("cluster", ["--workers", "2"])):
        done = run_cli("evaluate", "--stage", "stage_1", "--cv", "--reps", "1", "--epochs", "1", "--stages",
                       tmp_path / "stages.json", "--json", tmp_path / f"{name}.json", "--tuning-dir", tmp_path / "none",
                       *dirs(tmp_path / name, tiny_data), *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["scores"]
    assert "trained on the cluster" in done.stdout
    assert scores["cluster"] == scores["serial"]  # every metric of every fold's rows, to the last digit
