"""No Docker engine runs here: check the Dockerfile against the tree and the README instead."""
import json
import shlex

from conftest import ROOT


def dockerfile_instructions():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [line.split(maxsplit=1) for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_path_exists():
    copies = [args for op, args in dockerfile_instructions() if op == "COPY"]
    assert copies
    for args in copies:
        for source in shlex.split(args)[:-1]:
            assert (ROOT / source).exists(), source


def test_the_default_command_is_documented_in_the_readme():
    command = " ".join(json.loads(next(args for op, args in dockerfile_instructions() if op == "CMD")))
    assert command == "python -m repro --stage stage_2"
    readme = (ROOT / "README.md").read_text()
    assert command in readme
    assert "docker build" in readme and "docker run" in readme
    assert "docker cp pertnet-run:/app/submissions/stage_2_submission.csv" in readme


def test_the_image_installs_the_pinned_requirements():
    runs = " ".join(args for op, args in dockerfile_instructions() if op == "RUN")
    assert "pip install" in runs and "requirements.txt" in runs
    assert dockerfile_instructions()[0] == ["FROM", "python:3.11-slim"]
