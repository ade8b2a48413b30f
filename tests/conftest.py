"""Shared fixtures: a tiny synthetic dataset (few genes) and a way to run the CLI as a user does."""
import os
import shutil
import subprocess
import sys
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
