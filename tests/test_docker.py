"""No Docker engine runs here: carry out the Dockerfile's steps in an empty folder instead, run its
command there, and check the README's docker commands against it."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from docker.utils.build import PatternMatcher

import config
from conftest import ROOT, TINY_GENES
from pertnet import synthetic

KAGGLE_FILES = ("de_train.parquet", "id_map.csv", "sample_submission.csv")
NOT_IN_THE_IMAGE = {"pytest"}  # requirements-dev.txt: the tests run outside the image


def dockerfile_instructions():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [line.split(maxsplit=1) for line in lines if line.strip() and not line.startswith("#")]


def ignore_patterns():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative):
    """Whether .dockerignore leaves `relative` (a path in the build context) out, by Docker's own rules
    (the Docker SDK's matcher)."""
    return PatternMatcher(ignore_patterns()).matches(str(relative))


def build(image, data):
    """Carry out the Dockerfile with `image` as the image's /, from a build context that is the
    repository with `data` as its data/ (a user's clone): return the command's folder (WORKDIR) and
    the CMD. RUN pip install is skipped: the interpreter running the tests has the requirements."""
    context = image.with_name("context")
    context.mkdir()
    for entry in ROOT.iterdir():
        (context / entry.name).symlink_to(data if entry.name == "data" else entry)
    workdir = image
    for op, args in dockerfile_instructions():
        if op == "WORKDIR":
            workdir = image / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif op == "COPY":
            *sources, target = shlex.split(args)
            for source in sources:
                copy(context, source, workdir, target)
        elif op == "RUN" and args.startswith("mkdir -p "):
            for folder in args.split()[2:]:
                (workdir / folder).mkdir(parents=True, exist_ok=True)
        elif op == "RUN":
            assert "pip install" in args, f"the test cannot carry out RUN {args}"
        elif op == "CMD":
            return workdir, json.loads(args)
    raise AssertionError("the Dockerfile has no CMD")


def copy(context, source, workdir, target):
    """COPY source target: every file or folder `source` names or matches (of a folder, its contents)
    into `target` (a folder when it ends in /), without what .dockerignore leaves out of the context."""
    origins = sorted(context.glob(source.rstrip("/")))
    assert origins, f"COPY {source}: not in the build context"
    for origin in origins:
        if origin.is_dir():
            files = [(f, workdir / target / f.relative_to(origin)) for f in origin.rglob("*") if f.is_file()]
        else:
            files = [(origin, workdir / target / origin.name if target.endswith("/") else workdir / target)]
        for file, destination in files:
            if not ignored(file.relative_to(context)):
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, destination)


def fresh_clone_data(tmp_path):
    """data/ as a fresh clone has it (.gitignore keeps data/.gitkeep only)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / ".gitkeep").touch()
    return data


def run_in_image(workdir, *command):
    """Run a command where the image runs it: no PYTHONPATH, so that a file the Dockerfile does not
    copy cannot be imported from the repository."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    assert command[0] == "python"
    return subprocess.run([sys.executable, *command[1:]], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=900)


def test_the_original_flow_builds_with_the_kaggle_files_in_data_and_runs_the_command(tmp_path):
    """docker build with the three files in data/, docker run (its CMD, on one entry per stage, 1 rep x
    1 epoch: every file the flow needs, in seconds), docker cp."""
    data = fresh_clone_data(tmp_path)
    synthetic.generate(tmp_path / "generated", n_genes=TINY_GENES, seed=0)
    for name in KAGGLE_FILES:
        shutil.copy(tmp_path / "generated" / name, data)
    for leftover in ("demo/de_train.parquet", "prepared/stage_2.npz"):  # what earlier runs leave in data/
        (data / leftover).parent.mkdir()
        (data / leftover).write_text("not for the image")
    image = tmp_path / "image"
    workdir, command = build(image, data)
    assert sorted(p.name for p in (workdir / "data").iterdir()) == sorted([".gitkeep", *KAGGLE_FILES])

    one_entry_each = {stage: [config.STAGES[stage][0]] for stage in ("stage_1", "stage_2")}  # the flow, quickly
    (tmp_path / "quick.json").write_text(json.dumps(one_entry_each))
    done = run_in_image(workdir, *command, "--reps", "1", "--epochs", "1", "--stages", str(tmp_path / "quick.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    copied = re.search(r"docker cp container:(\S+) ", (ROOT / "README.md").read_text())[1]  # the README's docker cp
    submission = pd.read_csv(image / copied.lstrip("/"))
    sample = pd.read_csv(data / "sample_submission.csv")
    assert submission.shape == (255, TINY_GENES + 1)
    assert list(submission.columns) == list(sample.columns) and submission["id"].tolist() == sample["id"].tolist()


def readme_commands():
    """The modules the README and docs/cli.md run with `python -m`."""
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "cli.md").read_text()
    return set(re.findall(r"python -m ([a-z_][\w.]*)", text)) - NOT_IN_THE_IMAGE


def test_a_fresh_clone_builds_and_every_readme_command_starts_in_the_image(tmp_path):
    workdir, _ = build(tmp_path / "image", fresh_clone_data(tmp_path))
    assert [p.name for p in (workdir / "data").iterdir()] == [".gitkeep"]
    assert not list(workdir.rglob("__pycache__"))  # the repository's are left out
    assert (workdir / "models").is_dir() and (workdir / "submissions").is_dir()
    commands = sorted(readme_commands())
    assert {"prepare_data", "train", "predict", "repro", "evaluate", "pertnet.synthetic"} <= set(commands)
    for module in commands:
        done = run_in_image(workdir, "python", "-m", module, "--help")
        assert done.returncode == 0 and "usage:" in done.stdout, f"python -m {module}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("path,left_out", [
    (".git/config", True), ("data/demo/de_train.parquet", True), ("data/prepared/simple.npz", True),
    ("models/simple/shared.npz", True), ("submissions/stage_2_submission.csv", True),
    ("tuning/optuna.db", True), ("pertnet/__pycache__/cli.cpython-311.pyc", True), (".venv/bin/python", True),
    ("data/de_train.parquet", False), ("data/.gitkeep", False), ("pertnet/resources/id_map.csv", False),
])
def test_dockerignore(path, left_out):
    assert ignored(path) == left_out
