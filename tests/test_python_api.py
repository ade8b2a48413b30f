"""The Python API (pertnet/estimator.py): docs/python.md's examples run as written, and the library
gives the numbers and the messages the commands give."""
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pertnet
import repro
from conftest import ROOT, dirs
from pertnet import cli, defaults

DOC = ROOT / "docs" / "python.md"


def test_the_examples_of_docs_python_md_run(tmp_path, capsys, monkeypatch):
    """As written, on a package whose stages keep one entry each: the same calls, a fraction of the
    training (stage_2's 27 entries alone took 35 s)."""
    monkeypatch.setattr(defaults, "STAGES", {stage: entries[:1] for stage, entries in defaults.STAGES.items()})
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 6
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope = {}
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), scope)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "(20, 53)" in out and "never occurs in the training data" in out and "PertNet stage_1" in out
    assert "cell_line" in out and "dose" in out
    assert (tmp_path / "models" / "simple" / "shared.npz").is_file()


def test_fit_and_predict_give_what_repro_gives(tiny_data, tmp_path):
    assert cli.run(repro.main, ["--stage", "simple", "--reps", "1", "--epochs", "2",
                                *map(str, dirs(tmp_path, tiny_data))]) == 0
    from_cli = pd.read_csv(tmp_path / "submissions" / "simple_submission.csv")
    model = pertnet.fit(pd.read_parquet(tiny_data / "de_train.parquet"), stage="simple", reps=1, epochs=2,
                        verbose=False)
    id_map = pd.read_csv(tiny_data / "id_map.csv")
    from_python = model.predict(id_map)
    genes = list(from_cli.columns[1:])
    assert list(from_python["id"]) == list(from_cli["id"])
    np.testing.assert_array_equal(from_python[genes].to_numpy(np.float32), from_cli[genes].to_numpy(np.float32))
    # a stage trained by `python -m train` loads in Python and predicts what `predict` wrote
    trained = pertnet.load(tmp_path / "models", stage="simple").predict(id_map)
    np.testing.assert_array_equal(trained[genes].to_numpy(np.float32), from_cli[genes].to_numpy(np.float32))
    # and the command line predicts with a model saved from Python, byte for byte the same
    shutil.rmtree(tmp_path / "models")
    model.save(str(tmp_path / "models"))
    before = (tmp_path / "submissions" / "simple_submission.csv").read_bytes()
    import predict
    assert cli.run(predict.main, ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]) == 0
    assert (tmp_path / "submissions" / "simple_submission.csv").read_bytes() == before


@pytest.mark.parametrize("data, pairs, expect", [
    (pd.DataFrame({"cell_type": ["a", "b"], "sm_name": ["x", "x"]}), None, "no gene columns"),
    (pd.DataFrame({"cell_type": ["a", "b"], "g": [1.0, np.nan]}), None, "missing label column(s) sm_name"),
    (pd.DataFrame({"cell_type": ["a", "b"], "sm_name": ["x", "y"], "g": [1.0, np.nan]}), None,
     "1 NaN or infinite value(s)"),
    ([1, 2, 3], None, "expected a pandas DataFrame or an AnnData, got list"),
])
def test_bad_data_is_the_commands_message_as_an_exception(data, pairs, expect):
    with pytest.raises(pertnet.UserError, match=re.escape(expect)):
        pertnet.fit(data, stage="simple", epochs=1, verbose=False)


def test_stage_2_without_its_pairs_says_what_it_needs():
    frame = pd.DataFrame({"cell_type": ["a", "b"], "sm_name": ["x", "y"], "g": [1.0, 2.0]})
    with pytest.raises(pertnet.UserError, match="give it the pairs to predict"):
        pertnet.fit(frame, stage="stage_2", epochs=1, verbose=False)


def test_the_package_has_a_version_and_the_commands_print_it(capsys):
    assert re.fullmatch(r"\d+\.\d+\.\d+", pertnet.__version__)
    with pytest.raises(SystemExit):
        cli.run(repro.main, ["--version"])
    assert capsys.readouterr().out == f"pertnet {pertnet.__version__}\n"


def test_the_wheel_holds_the_package_its_data_and_the_license_but_no_top_level_config(tmp_path):
    """What `pip install .` installs: pertnet with its resources, metadata with the version, and no
    top-level module (config.py and the commands stay in the repository)."""
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "clone"  # a copy: a build writes build/ and pertnet.egg-info/ into its tree
    left_out = shutil.ignore_patterns(".git", "data", "models", "submissions", "tuning", "build", "*.egg-info",
                                      "__pycache__")

    def ignore(folder, names):  # and any virtual environment inside the clone (gigabytes of TensorFlow)
        return set(left_out(folder, names)) | {n for n in names if (Path(folder) / n / "pyvenv.cfg").is_file()}

    shutil.copytree(ROOT, source, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("pertnet-*.whl")
    assert wheel.name.startswith(f"pertnet-{pertnet.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"pertnet", f"pertnet-{pertnet.__version__}.dist-info"}
    assert {"pertnet/estimator.py", "pertnet/defaults.py", "pertnet/resources/compounds.csv",
            "pertnet/config.vsh.yaml", f"pertnet-{pertnet.__version__}.dist-info/licenses/LICENSE"} <= set(names)
