"""Any size of screen: small shapes (rows, genes, cell types, compounds) through `repro` of every stage
and `evaluate --cv` (and `predict --interval` from its calibration) end in a result or in one line on
stderr with exit code 2, never in a traceback."""
import numpy as np
import pandas as pd
import pytest

import evaluate
import predict
import repro
from conftest import dirs
from pertnet import cli, synthetic
from pertnet.entries import stage_entries, write_stages
from pertnet.stage import Stage

# Each stage's largest n_dim (simple 100, stage_1 126, stage_2 246) and batch (128, 128, 224), what a
# small screen falls short of, in 4 of the stages' 28 entries: the sweep stays cheap.
ENTRIES = {"simple": ["7"], "stage_1": ["6"], "stage_2": ["8d", "1a"]}

# name: (cell types, compounds, held-out design, genes), and what `evaluate --cv` gives
SHAPES = {
    "3 rows x 3 genes": (2, 2, dict(test_cell_types=1, test_compounds=1), 3,
                         "cross-validation needs at least 2 folds"),
    "11 rows x 1 gene": (3, 4, dict(test_cell_types=1, test_compounds=1), 1, "scheme cell_type"),
    "19 rows x 40 genes, every cell type tested": (4, 6, dict(scattered=5), 40, "scheme compound_groups"),
}


def names(kind, count):
    return [f"{kind} {i}" for i in range(1, count + 1)]


@pytest.fixture(scope="module")
def stages_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stages") / "stages.json"
    write_stages(path, {stage: stage_entries(stage, ids=ids) for stage, ids in ENTRIES.items()})
    return path


def run(capfd, main, *args):
    """(exit code, stdout, stderr) of a command run as `python -m` runs it."""
    code = cli.run(main, [*map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(code, err, message):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("shape", SHAPES)
def test_small_screens_give_a_result_or_one_line(shape, tmp_path, stages_file, capfd):
    cell_types, compounds, held_out, genes, cv_outcome = SHAPES[shape]
    data = tmp_path / "data"
    synthetic.generate(data, n_genes=genes, design=synthetic.screen_design(
        names("cell type", cell_types), names("compound", compounds), **held_out))
    quick = ["--reps", "1", "--epochs", "1", "--stages", stages_file, *dirs(tmp_path, data)]
    for stage in ("simple", "stage_2"):  # stage_2 runs stage_1 first
        code, out, err = run(capfd, repro.main, "--stage", stage, *quick)
        assert code == 0 and "Traceback" not in err, err
        rows = len(pd.read_parquet(data / "de_train.parquet"))
        if min(rows, genes) < 246:
            assert f"allow at most {min(rows, genes)} SVD components" in out  # the departure, on stdout
        assert "improves MRRMSE" in out  # scored against the screen's truth
    for stage in ENTRIES:
        submission = pd.read_csv(tmp_path / "submissions" / f"{stage}_submission.csv")
        assert submission.shape == (len(pd.read_csv(data / "id_map.csv")), genes + 1)
        assert np.isfinite(submission.to_numpy()).all()
    code, out, err = run(capfd, evaluate.main, "--stage", "simple", "--cv", *quick)
    if cv_outcome.startswith("scheme"):
        assert code == 0 and cv_outcome in out and "Traceback" not in err, err
        code, out, err = run(capfd, predict.main, "--stage", "simple", "--interval", "0.9", *quick[4:])
        if code:  # bounds, or one line saying the out-of-fold rows are too few for the level
            assert_one_line_error(code, err, "which support levels up to")
        else:
            assert (tmp_path / "submissions" / "simple_lower.csv").is_file()
    else:
        assert_one_line_error(code, err, cv_outcome)


def test_below_the_minimum_is_one_line_naming_it(tmp_path, capfd):
    data = tmp_path / "data"
    synthetic.generate(data, n_genes=5, design=synthetic.screen_design(
        names("cell type", 3), names("compound", 4), test_cell_types=1, test_compounds=1))
    id_map = pd.read_csv(data / "id_map.csv")
    id_map.assign(sm_name="compound 9").to_csv(data / "id_map.csv", index=False)  # only in the pairs to predict
    code, _, err = run(capfd, repro.main, "--stage", "simple", *dirs(tmp_path, data))
    assert_one_line_error(code, err, "never occurs in the training data")
    assert "one embedding per training label" in err  # why, and what to do
    train = pd.read_parquet(data / "de_train.parquet")
    train.head(1).to_parquet(data / "de_train.parquet")
    id_map.assign(cell_type=train.cell_type[0], sm_name=train.sm_name[0]).head(1).to_csv(data / "id_map.csv", index=False)
    code, _, err = run(capfd, repro.main, "--stage", "simple", *dirs(tmp_path, data))
    assert_one_line_error(code, err, "1 training row(s); the method needs at least 2")


def test_an_n_dim_above_the_data_trains_at_the_largest_allowed_with_one_line():
    lines = []
    training_set = dict(train_inputs=np.zeros((5, 2), np.int32),
                        train_targets=np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32),
                        genes=np.array(names("gene", 8)), vocabulary=np.array(["a", "b"]),
                        clip_low=np.zeros(8, np.float32), clip_high=np.ones(8, np.float32))
    stage = Stage.start("stage_1", stage_entries("stage_1"), training_set, 42, lines.append)
    assert [e.n_dim for e in stage.entries] == [5] * 7 and stage.codec.components_.shape == (5, 8)
    assert lines == ["[stage_1] departing from the configuration: 5 training rows x 8 genes allow at most 5 SVD "
                     "components; entries 1 (n_dim 50), 2 (n_dim 60), 3 (n_dim 119), 5 (n_dim 71), 6 (n_dim 126), "
                     "7 (n_dim 100), 8 (n_dim 100) train at n_dim 5", lines[1]]
    assert lines[1].startswith("SVD basis: 5 components of 5 x 8 targets in ")
