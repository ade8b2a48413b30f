"""The Python API (pertnet/estimator.py): docs/python.md's examples run as written, and the library
gives the numbers and the messages the commands give."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

import pertnet
import repro
from conftest import ROOT, TINY_GENES, dirs
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


def test_the_estimator_follows_scikit_learns_contract(tiny_data, tmp_path):
    from sklearn.base import clone

    model = pertnet.PertNet("simple", reps=1, epochs=2, verbose=False)
    assert repr(model) == "PertNet(stage='simple', reps=1, epochs=2, verbose=False)"
    copy = clone(model.set_params(seed=7))
    assert copy.get_params() == model.get_params() and copy.seed == 7 and copy is not model
    with pytest.raises(ValueError, match="no parameter"):
        model.set_params(learning_rate=0.1)
    for call in (lambda: model.predict(pd.read_csv(tiny_data / "id_map.csv")), lambda: model.save(tmp_path),
                 lambda: model.predict(pd.read_csv(tiny_data / "id_map.csv"), interval=0.9)):
        with pytest.raises(pertnet.UserError, match="not fitted yet; call fit"):
            call()


def test_load_restores_custom_entries_and_a_prediction_anndata_is_scverse_shaped(tiny_data, tmp_path):
    de_train, id_map = pd.read_parquet(tiny_data / "de_train.parquet"), pd.read_csv(tiny_data / "id_map.csv")
    wider = [{**defaults.STAGES["simple"][0], "dense_1": 64}]
    model = pertnet.PertNet("simple", entries=wider, reps=1, epochs=1, seed=3, verbose=False).fit(de_train)
    model.save(tmp_path / "models")
    again = pertnet.load(tmp_path / "models", stage="simple")  # no entries passed: the bundles recorded them
    assert again.entries[0]["dense_1"] == 64
    pd.testing.assert_frame_equal(again.predict(id_map), model.predict(id_map))
    predicted = again.predict(id_map, as_anndata=True)
    assert np.array_equal(predicted.X, predicted.layers["prediction"])
    assert predicted.obs_names.tolist() == id_map["id"].astype(str).tolist()
    assert predicted.uns["pertnet"]["stage"] == "simple" and predicted.uns["pertnet"]["seed"] == 3
    assert predicted.uns["pertnet"]["version"] == pertnet.__version__ and predicted.uns["pertnet"]["epochs"] == {"7": 1}
    pairs = anndata.AnnData(obs=id_map[["cell_type", "sm_name"]].set_axis([f"pair_{i}" for i in range(len(id_map))]))
    assert again.predict(pairs, as_anndata=True).obs_names.tolist() == pairs.obs_names.tolist()


def test_cross_validate_returns_the_out_of_fold_rows_and_a_fit_on_other_data_drops_its_calibration(tiny_data):
    de_train, id_map = pd.read_parquet(tiny_data / "de_train.parquet"), pd.read_csv(tiny_data / "id_map.csv")
    lines = []
    model = pertnet.PertNet("simple", reps=1, epochs=1, verbose=lines.append)
    report, out_of_fold = pertnet.cross_validate(model, de_train, id_map)
    assert len(out_of_fold) == report["rows"] and list(out_of_fold.columns[:4]) == ["repeat", "fold", "cell_type",
                                                                                      "sm_name"]
    assert set(out_of_fold["fold"]) == set(report["cv"]["folds"]) and set(out_of_fold["repeat"]) == {0, 1}
    model.fit(de_train)  # the data it was calibrated on: the calibration stays
    assert model.predict(id_map, interval=0.9).lower.shape == (len(id_map), 3 + TINY_GENES)  # id, the labels, genes
    model.fit(de_train.iloc[:-5])
    assert not hasattr(model, "calibration_") and any("calibration was made on other data" in line for line in lines)


def test_verbose_takes_a_logging_level(tiny_data, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="pertnet"):
        pertnet.fit(pd.read_parquet(tiny_data / "de_train.parquet"), "simple", reps=1, epochs=1, verbose=logging.INFO)
    assert any("[simple] entry 7 (1/1)" in record.message for record in caplog.records)


def test_a_bare_import_shows_the_api_and_reaches_the_modules():
    done = subprocess.run([sys.executable, "-c", "import pertnet; print(dir(pertnet)); "
                           "print(pertnet.entries.read_stages.__name__, pertnet.defaults.SEED)"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "'PertNet', 'UserError', '__version__', 'cross_validate', 'fit', 'load'" in done.stdout
    assert "read_stages 42" in done.stdout


def test_in_a_notebook_progress_is_a_bar_one_step_per_entry(tiny_data, monkeypatch, capsys):
    """A Jupyter kernel (its shell class stood in for): a bar instead of the printed lines."""
    import types

    class ZMQInteractiveShell:
        pass

    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=ZMQInteractiveShell))
    pertnet.fit(pd.read_parquet(tiny_data / "de_train.parquet"), "stage_1", reps=1, epochs=1,
                entries=[e for e in defaults.STAGES["stage_1"][:2]])
    out, err = capsys.readouterr()
    assert "[stage_1] entries" in err and "2/2" in err and "[stage_1] entry 1 (1/2)" not in out
