"""python -m export: each rep as a .keras file that Keras alone loads, predicting what predict computes."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import export
from pertnet import UserError, architectures, bundle, cli, pipeline
from pertnet.options import Options

# Run in a folder without this package, on a path without it: only Keras and NumPy can be imported.
LOAD_WITH_KERAS_ALONE = """
import json, sys
import keras, numpy as np
model = keras.models.load_model(sys.argv[1])
codes = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(codes, verbose=0))
print(json.dumps(dict(params=model.count_params(), compiled=model.compiled,
                      package_loaded=any(name.split(".")[0] == "pertnet" for name in sys.modules))))
"""


def simple_options(folder):
    return Options("simple", folder / "data", folder / "models", folder / "submissions", epochs=1)


@pytest.fixture(scope="module")
def trained_simple(tmp_path_factory, tiny_source):
    """The simple stage trained for one epoch, as in tests/test_errors.py; tests change copies."""
    folder = tmp_path_factory.mktemp("trained_simple")
    shutil.copytree(tiny_source, folder / "data")
    pipeline.prepare(simple_options(folder), log=lambda line: None)
    pipeline.train(simple_options(folder), log=lambda line: None)
    return folder


@pytest.fixture
def trained(trained_simple, tmp_path):
    shutil.copytree(trained_simple, tmp_path, dirs_exist_ok=True)
    return simple_options(tmp_path)


def test_each_rep_loads_in_keras_alone_and_predicts_what_predict_computes(trained, tmp_path, capsys):
    folder = bundle.stage_dir(trained.models_dir, "simple")
    (folder / "model_7_1.keras").write_text("from an earlier training with more reps")
    assert cli.run(export.main, ["--stage", "simple", "--models-dir", str(trained.models_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "entry 7: 1 reps of family 7 (532,860 parameters" in out[0]
    assert "exported 1 entries (1 model-reps)" in out[1]
    assert sorted(p.name for p in folder.iterdir()) == ["model_7", "model_7_0.keras", "shared.npz"]  # no temporary

    codes = np.random.default_rng(0).integers(0, 152, (9, 2)).astype(np.int32)
    np.save(tmp_path / "codes.npy", codes)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", LOAD_WITH_KERAS_ALONE, folder / "model_7_0.keras",
                           tmp_path / "codes.npy", tmp_path / "keras.npy"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded == dict(params=532_860, compiled=False, package_loaded=False)  # docs/method.md, section 3

    stage = bundle.load_stage(trained.models_dir, "simple", trained.entries())
    rep_0 = [w[None] for w in stage.weights["7"][0]]  # architectures.predict takes a leading rep axis
    numpy_path = architectures.predict(stage.entries[0], rep_0, codes)[0]
    assert np.allclose(np.load(tmp_path / "keras.npy"), numpy_path, atol=1e-5)


def test_export_without_trained_models(tmp_path, capsys):
    assert cli.run(export.main, ["--stage", "stage_1", "--models-dir", str(tmp_path / "models")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no trained models in" in error and "python -m train --stage stage_1" in error
    assert not any(tmp_path.iterdir())


def test_export_of_an_incomplete_stage_writes_nothing(trained, capsys):
    folder = bundle.stage_dir(trained.models_dir, "simple")
    shutil.rmtree(folder / "model_7")
    assert cli.run(export.main, ["--stage", "simple", "--models-dir", str(trained.models_dir)]) == 2
    assert "model_7/: incomplete bundle" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["shared.npz"]


def test_load_keras_model_refuses_a_rep_the_entry_lacks(trained):
    with pytest.raises(UserError, match="holds reps 0 to 0, not 1"):
        bundle.load_keras_model(trained.models_dir, "simple", "7", 1)
