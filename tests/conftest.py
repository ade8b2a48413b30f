"""Shared fixtures: a tiny synthetic dataset (few genes) and a way to run the CLI as a user does."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pertnet import synthetic

ROOT = Path(__file__).resolve().parents[1]
TINY_GENES = 260  # the largest n_dim of any entry is 246: the SVD needs at least that many genes


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory):
    """The tiny dataset, generated once; tests copy it (tiny_data) before writing next to it."""
    folder = tmp_path_factory.mktemp("tiny_source")
    synthetic.generate(folder, n_genes=TINY_GENES, seed=0)
    return folder


@pytest.fixture
def tiny_data(tiny_source, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(tiny_source, folder)
    return folder


def run_cli(module, *args, cwd):
    """Run `python -m module args` from the repository root, as a user would; return the result."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def dirs(tmp_path, data):
    """The CLI's folder options pointing into tmp_path."""
    return ["--data-dir", data, "--models-dir", tmp_path / "models", "--submissions-dir", tmp_path / "submissions"]


def _postgres_binaries():
    """The folder of PostgreSQL's server programs (Debian keeps them in /usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server for the session: a new cluster in a temporary folder, on a free
    loopback port, stopped and removed at the end, also on failure. Under CI a missing server fails."""
    programs = _postgres_binaries()
    if programs is None:
        message = "PostgreSQL's server programs are missing (apt-get install postgresql; .ci/run does)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="pertnet-postgres-"))
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(program, *args):
        subprocess.run([*as_postgres, str(programs / program), *map(str, args)], check=True, capture_output=True)

    try:
        run("initdb", "-D", folder / "data", "-U", "tuner", "--auth=trust", "-E", "UTF8")
        run("pg_ctl", "-D", folder / "data", "-l", folder / "server.log", "-w", "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}", "start")
        try:
            run("createdb", "-h", "127.0.0.1", "-p", port, "-U", "tuner", "studies")
            yield f"postgresql://tuner@127.0.0.1:{port}/studies"
        finally:
            run("pg_ctl", "-D", folder / "data", "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
