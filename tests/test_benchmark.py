"""python -m pertnet.benchmark and pertnet/config.vsh.yaml against the benchmark's method interface."""
import tempfile
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from benchmark_api import METHOD, problems
from conftest import ROOT, TINY_GENES, run_cli
from pertnet import benchmark, cli, defaults, evaluation, synthetic
from pertnet.entries import stage_entries
from pertnet.options import Options

OWN_ARGUMENTS = {"--stage": "string", "--stages": "file", "--epochs": "integer", "--interval": "double",
                 "--cell_type_column": "string", "--perturbation_columns": "string"}  # pertnet's additions
PARSER_TYPES = {Path: "file", None: "string", cli.positive_int: "integer", cli.coverage_level: "double",
                cli.column_list: "string"}


@pytest.fixture(scope="module")
def h5ad_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("h5ad_data")
    synthetic.generate(folder, n_genes=TINY_GENES, seed=0, as_h5ad=True)
    return folder


def parser_arguments():
    """{option: argparse action} of the command, without --help and --version (every command has them)."""
    return {a.option_strings[0]: a for a in benchmark.parser()._actions if a.option_strings[0] not in ("-h", "--version")}


def test_the_command_takes_the_benchmarks_method_arguments():
    actions = parser_arguments()
    assert set(actions) == {a["name"] for a in METHOD["arguments"]} | set(OWN_ARGUMENTS)
    for argument in METHOD["arguments"]:
        action = actions[argument["name"]]
        assert PARSER_TYPES[action.type] == argument["type"], argument["name"]
        assert action.required == argument["required"], argument["name"]
        if argument["name"] != "--reps":
            assert action.default == argument.get("default"), argument["name"]
    # --reps left out means as configured: the benchmark's default count in both stages the method runs
    assert actions["--reps"].default is None
    assert {e.reps for stage in ("stage_1", "stage_2") for e in stage_entries(stage)} == {10}
    assert {name: PARSER_TYPES[actions[name].type] for name in OWN_ARGUMENTS} == OWN_ARGUMENTS
    assert actions["--stage"].default == "stage_2" and actions["--stage"].choices == defaults.STAGE_NAMES


def test_the_viash_component_declares_the_same_arguments():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads config.vsh.yaml")
    component = yaml.safe_load((ROOT / "pertnet" / "config.vsh.yaml").read_text())
    assert (component["name"], component["namespace"]) == (METHOD["name"], METHOD["namespace"])
    declared = {a["name"]: a for a in component["arguments"]}
    assert set(declared) == {a["name"] for a in METHOD["arguments"]} | set(OWN_ARGUMENTS)
    for argument in METHOD["arguments"]:
        ours = declared[argument["name"]]
        for key in ("type", "required", "direction", "default"):
            assert ours.get(key, {"required": False, "direction": "input"}.get(key)) == argument.get(key), \
                (argument["name"], key)
    assert {name: declared[name]["type"] for name in OWN_ARGUMENTS} == OWN_ARGUMENTS
    assert declared["--stage"]["choices"] == list(defaults.STAGE_NAMES)
    assert [(r["type"], r["path"]) for r in component["resources"]] == [("python_script", "benchmark.py")]
    assert (ROOT / "pertnet" / "benchmark.py").is_file()
    assert {engine["type"] for engine in component["engines"]} == {"docker", "native"}


def test_viash_arguments_become_the_same_command_line():
    par = {"de_train": "de_train.h5ad", "id_map": "id_map.csv", "layer": "clipped_sign_log10_pval",
           "output": "out.h5ad", "output_model": None, "reps": 10, "stage": "stage_2", "epochs": None}
    argv = benchmark._viash_argv(par)
    assert argv == ["--de_train", "de_train.h5ad", "--id_map", "id_map.csv", "--layer", "clipped_sign_log10_pval",
                    "--output", "out.h5ad", "--reps", "10", "--stage", "stage_2"]
    assert benchmark.parser().parse_args(argv).reps == 10


def test_only_a_reps_count_other_than_the_configured_one_departs():
    assert benchmark._departing_reps(Options("stage_2"), 10) is None  # what the benchmark passes by default
    assert benchmark._departing_reps(Options("simple"), 1) is None
    assert benchmark._departing_reps(Options("simple"), 10) == 10
    assert benchmark._departing_reps(Options("stage_2"), 2) == 2
    assert benchmark._departing_reps(Options("stage_2"), None) is None


def check_prediction(path, h5ad_data):
    """The prediction file as the benchmark's spec asks, for the id_map pairs and de_train genes."""
    written = anndata.read_h5ad(path)
    assert problems(written, "prediction") == []
    assert written.layers["prediction"].dtype == np.float64
    assert np.isfinite(written.layers["prediction"]).all()
    id_map = pd.read_csv(h5ad_data / "id_map.csv")
    train = anndata.read_h5ad(h5ad_data / "de_train.h5ad", backed="r")
    assert list(written.obs_names) == id_map["id"].astype(str).tolist()
    assert written.obs[["cell_type", "sm_name"]].astype(str).values.tolist() == \
        id_map[["cell_type", "sm_name"]].values.tolist()
    assert list(written.var_names) == list(train.var_names)
    assert written.uns["dataset_id"] == train.uns["dataset_id"]
    assert written.uns["method_id"] == METHOD["name"]


def test_the_command_writes_the_benchmarks_prediction(h5ad_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out" / "prediction.h5ad"
    result = run_cli("pertnet.benchmark", "--de_train", h5ad_data / "de_train.h5ad", "--id_map",
                     h5ad_data / "id_map.csv", "--output", out, "--output_model", tmp_path / "models",
                     "--stage", "simple", "--reps", "1", "--epochs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"prediction -> {out}" in result.stdout
    check_prediction(out, h5ad_data)
    assert [p.name for p in out.parent.iterdir()] == ["prediction.h5ad"]
    assert (tmp_path / "models" / "simple" / "shared.npz").is_file()  # kept where --output_model said
    assert list((tmp_path / "tmp").iterdir()) == []  # the working folder is gone


def test_without_output_model_the_models_are_removed_and_bounds_are_layers(h5ad_data, tmp_path, monkeypatch, capsys):
    """--interval: the stage's CV calibrates it first (repro does), and the bounds are the h5ad's layers."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "prediction.h5ad"
    assert cli.run(benchmark.main, ["--de_train", str(h5ad_data / "de_train.h5ad"), "--id_map",
                                    str(h5ad_data / "id_map.csv"), "--output", str(out), "--stage", "simple",
                                    "--reps", "2", "--epochs", "1", "--interval", "0.9"]) == 0
    assert "calibrating the intervals" in capsys.readouterr().out
    check_prediction(out, h5ad_data)
    assert [p.name for p in tmp_path.iterdir()] == ["prediction.h5ad"]
    written = anndata.read_h5ad(out)
    assert written.uns["interval_level"] == 0.9 and (written.obs["uncertainty"] > 0).all()
    assert (written.layers["lower"] <= written.layers["prediction"]).all()
    assert (written.layers["prediction"] <= written.layers["upper"]).all()
    report = evaluation.score_submission(out, h5ad_data / "de_test.h5ad", h5ad_data, "simple",
                                         log=lambda line: None)[0]
    assert report["coverage"]["level"] == 0.9 and 0 < report["coverage"]["coverage"] <= 1


@pytest.mark.parametrize("change, message", [
    ({"--de_train": None}, "argument --de_train: this method trains on the benchmark's de_train.h5ad"),
    ({"--de_train": "{data}/de_train.parquet"}, "de_train.parquet is not an .h5ad file"),
    ({"--de_train": "{data}/missing.h5ad"}, "argument --de_train: no file "),
    ({"--id_map": "{data}/missing.csv"}, "argument --id_map: no file "),
    ({"--output": "{tmp}"}, "is a folder; give the prediction file's path"),
    ({"--output_model": "{data}/id_map.csv"}, "id_map.csv is a file, not a folder; pass another --output_model"),
    ({"--output_mod": "{tmp}/models"}, "unrecognized arguments: --output_mod"),
    ({"--reps": "0"}, "argument --reps: must be a positive integer, got '0'"),
    ({"--layer": "counts"}, "no layer 'counts'; layers present: "),
    ({"--id_map": "{tmp}/bad_id_map.csv"}, "bad_id_map.csv: 1 pair(s) have a cell type or perturbation that never occurs"),
])
def test_bad_arguments_are_one_line_and_write_nothing(h5ad_data, tmp_path, capsys, change, message):
    (tmp_path / "bad_id_map.csv").write_text("id,cell_type,sm_name\n0,B cells,Nothing\n")
    arguments = {"--de_train": "{data}/de_train.h5ad", "--id_map": "{data}/id_map.csv",
                 "--output": "{tmp}/out/prediction.h5ad", "--stage": "simple", "--epochs": "1", **change}
    argv = [text.format(data=h5ad_data, tmp=tmp_path) for name, value in arguments.items() if value is not None
            for text in (name, value)]
    code = cli.run(benchmark.main, argv)
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and message in error, error
    assert "pertnet-benchmark-" not in error  # names the user's files, never the working folder's copies
    assert not (tmp_path / "out").exists()
