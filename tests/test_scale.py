"""Screens far larger than the competition's: memory held by blocks, not by the table (pertnet/tablefile.py),
the same numbers whichever blocks, progress while reading and writing, and a refusal of what cannot fit."""
import subprocess
import sys

import anndata
import numpy as np
import pandas as pd
import pytest

import predict
import prepare_data
import train
from conftest import ROOT, dirs
from pertnet import cli, data, evaluation, memory, pace, pipeline, stage, synthetic, tablefile, training
from pertnet.entries import stage_entries

# The commands one after the other in a fresh process, each one's growth over what the process held when it
# started (everything imported, TensorFlow's start-up included), its peak reset by /proc/self/clear_refs; the
# blocks made small, and the randomized basis used, so that a table of seconds shows the bound.
MEASURED = """
import sys
import numpy as np
from pertnet import entries, memory, pipeline, stage, tablefile, targets, training  # imported before the baseline
import evaluate, predict, prepare_data, train
tablefile.BLOCK_BYTES = targets.PRODUCT_BLOCK_BYTES = 2 ** 22
stage.PAIRS_AT_ONCE = 64
targets.EXACT_UP_TO, targets.POWER_ITERATIONS = 64, 1  # the same sketches held, fewer passes over them
entry = entries.stage_entries("simple", 1, 1)[0]  # TensorFlow's own start-up too, on a tiny training
training.train_entry(entry, np.zeros((8, 2), np.int32), np.zeros((8, entry.n_dim), np.float32), 2, [0])
quick = ["--reps", "1", "--epochs", "1"]
steps = (("prepare_data", prepare_data, []), ("train", train, quick), ("cv", evaluate, ["--cv", *quick]),
         ("predict", predict, ["--interval", "0.9"]), ("score", evaluate, []))
for name, command, extra in steps:
    with open("/proc/self/clear_refs", "w") as peak:
        peak.write("5")  # the peak starts again from what is held now
    baseline = memory.held_bytes()
    assert command.main(["--stage", "simple", *sys.argv[1:], *extra]) in (0, None)
    print("GROWTH", name, memory.peak_bytes() - baseline)
"""


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    """A screen of 2,700 training rows x 10,000 genes (108 MB as float32, 216 MB as the parquet file's float64)
    whose design makes 2 folds x 2 repeats of 450 held-out rows each: 4 cell types, 900 compounds, half of
    them to predict in 2 of the cell types."""
    folder = tmp_path_factory.mktemp("screen")
    design = synthetic.screen_design([f"line {i}" for i in range(4)], [f"drug {i}" for i in range(900)],
                                     test_cell_types=2, test_compounds=450)
    synthetic.generate(folder, n_genes=10000, design=design)
    return folder


def test_prepare_train_the_cross_validation_predict_and_scoring_hold_a_block_not_the_table(screen, tmp_path):
    """Before, the table was read whole: here prepare_data grew by 6.4 times its size, train by 3.7 times, and
    `evaluate --cv`, which held the training rows, each fold's copy of them and its held-out prediction,
    spread, truth and baselines, and the calibration's stacks of all of them, by 20.7 times. Now prepare_data
    and train hold a few blocks of genes (and what the allocators keep of them), the basis's sketches and the
    training's own; the CV's table is a file in its work folder, each fold trains on a view of its rows, and
    the held-out rows are scored and calibrated by blocks: what grows is TensorFlow's training of the folds
    side by side, a block's arrays (each a few rows x every gene) and the compounds' mean baseline
    (compounds x genes), about 4 times the table here, where a Tahoe-size table has 50 rows per compound.
    `predict --interval` held the whole prediction, its spread and bounds (and reordered copies); now a block
    of pairs of each, written as it comes. Scoring that prediction and its bounds (`evaluate`) held the four
    files whole, in float64, and four baselines' predictions; now a block of rows of each."""
    table = 2700 * 10000 * 4
    result = subprocess.run([sys.executable, "-c", MEASURED, *map(str, dirs(tmp_path, screen))],
                            cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    growth = {line.split()[1]: int(line.split()[2]) for line in result.stdout.splitlines() if line.startswith("GROWTH")}
    for command, bound in (("prepare_data", 2), ("train", 2), ("cv", 8)):
        assert growth[command] < bound * table, \
            f"{command} grew by {growth[command] / 2 ** 20:.0f} MB for a {table / 2 ** 20:.0f} MB table"
    # `predict --interval` of the 900 pairs: 238 MB before (6.6 times), 43 to 112 MB now, as much as what the CV
    # before it freed and left to reuse (pyarrow's pool, which formats the CSVs, is given back after a parquet read)
    prediction = 900 * 10000 * 4
    assert growth["predict"] < 4.5 * prediction, f"predict --interval grew by {growth['predict'] / 2 ** 20:.0f} MB"
    # scoring them with their bounds: 719 MB before (20 times), 178 MB now (the training file's baselines too)
    assert growth["score"] < 8 * prediction, f"evaluate --submission grew by {growth['score'] / 2 ** 20:.0f} MB"
    assert "2 folds x 2 repeats" in result.stdout and not list((tmp_path / "models").glob(".pertnet-cv-*"))


def test_the_prepared_targets_are_a_file_read_by_blocks(tiny_data, tmp_path, capsys):
    args = ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]
    assert cli.run(prepare_data.main, args) == 0
    prepared = pipeline.load_prepared(tiny_data, "simple")
    table = prepared["train_targets"]
    assert isinstance(table, tablefile.TableFile) and table.shape == (len(prepared["train_inputs"]), len(prepared["genes"]))
    truth = pd.read_parquet(tiny_data / "de_train.parquet")
    first = truth[(truth.cell_type + "/" + truth.sm_name) == "/".join(prepared["vocabulary"][prepared["train_inputs"][0]])]
    assert np.array_equal(np.asarray(table)[0], first[list(prepared["genes"])].to_numpy(np.float32)[0])
    old = sorted((tiny_data / "prepared").glob("simple.targets.*.npy"))
    assert cli.run(prepare_data.main, args) == 0  # again: a new pair of files, the earlier targets gone
    new = sorted((tiny_data / "prepared").glob("simple.targets.*.npy"))
    assert len(old) == len(new) == 1 and old != new
    new[0].unlink()
    capsys.readouterr()
    assert cli.run(train.main, args + ["--reps", "1", "--epochs", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and new[0].name in error and "rerun `python -m prepare_data" in error


def test_blocks_of_genes_and_of_pairs_give_the_same_files(tiny_data, tmp_path, monkeypatch):
    """Read by blocks of 7 genes: the same prepared targets. Predicted by blocks of 5 pairs, written by blocks
    of 3 rows (CSV) or 5 (h5ad): the values of one block (up to the rounding of products of other shapes),
    the ids in id_map's order."""
    args = ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]
    assert cli.run(prepare_data.main, args) == 0 and cli.run(train.main, args + ["--reps", "1", "--epochs", "2"]) == 0
    assert cli.run(predict.main, args) == 0
    whole = pd.read_csv(tmp_path / "submissions" / "simple_submission.csv")
    at_once = pipeline.load_prepared(tiny_data, "simple")
    at_once["train_targets"] = np.asarray(at_once["train_targets"])  # before the file is replaced
    monkeypatch.setattr(tablefile, "GENES_AT_ONCE", 7)
    assert cli.run(prepare_data.main, args) == 0
    by_blocks = pipeline.load_prepared(tiny_data, "simple")
    assert np.array_equal(np.asarray(by_blocks["train_targets"]), at_once["train_targets"])
    assert all(np.array_equal(by_blocks[key], at_once[key]) for key in ("train_inputs", "clip_low", "clip_high"))

    monkeypatch.setattr(stage, "PAIRS_AT_ONCE", 5)
    monkeypatch.setattr(data, "CSV_ROWS_AT_ONCE", 3)
    assert cli.run(predict.main, args) == 0
    blocked = pd.read_csv(tmp_path / "submissions" / "simple_submission.csv")
    assert blocked["id"].tolist() == pd.read_csv(tiny_data / "id_map.csv")["id"].tolist() == whole["id"].tolist()
    assert np.allclose(blocked.to_numpy(), whole.to_numpy(), atol=1e-4)
    assert cli.run(predict.main, args + ["--output-format", "h5ad"]) == 0  # the benchmark's file, by blocks too
    written = anndata.read_h5ad(tmp_path / "submissions" / "simple_prediction.h5ad")
    assert written.obs_names.tolist() == blocked["id"].astype(str).tolist()
    values = blocked.drop(columns="id").to_numpy(np.float32)
    assert np.array_equal(written.layers["prediction"].astype(np.float32), values)
    assert np.array_equal(written.X, written.layers["prediction"])


def test_long_steps_say_how_far_they_are(tmp_path):
    lines = []
    with tablefile.TableWriter(tmp_path / "t.npy", (10, 4), lines.append, every=0) as writer:
        writer.write(slice(0, 10), slice(0, 2), np.ones((10, 2)))
        writer.write(slice(0, 10), slice(2, 4), np.zeros((10, 2)))
    assert "50% written" in lines[0] and "100% written" in lines[1] and "s left" in lines[1]
    assert np.array_equal(np.load(tmp_path / "t.npy"), np.c_[np.ones((10, 2)), np.zeros((10, 2))])


def test_scoring_says_how_far_it_is(tiny_data, monkeypatch):
    """Reading the files, fitting the baselines and scoring the rows each say how far they are."""
    monkeypatch.setattr(pace, "EVERY", 0)
    truth = tiny_data / evaluation.TRUTH_FILES[0]
    lines = []
    evaluation.score_submission(truth, truth, tiny_data, "truth", log=lines.append)
    for step in ("de_test.parquet: 100% read", "baselines: ", "scored "):
        assert any(step in line and "s left" in line for line in lines), step


def test_an_epoch_drawn_by_chunks_of_masks_trains_the_same_weights(monkeypatch):
    rng = np.random.default_rng(0)
    inputs = np.stack([rng.integers(0, 10, 300), rng.integers(10, 40, 300)], 1).astype(np.int32)
    entry = stage_entries("stage_1", 2, 2)[2]  # four dropout layers
    targets = rng.standard_normal((300, entry.n_dim)).astype(np.float32)
    at_once = training.train_entry(entry, inputs, targets, 40, [1, 2])
    monkeypatch.setattr(memory, "MASK_CHUNK_BYTES", 100_000)  # a few batches per chunk, and a last smaller chunk
    by_chunks = training.train_entry(entry, inputs, targets, 40, [1, 2])
    assert all(np.array_equal(a, b) for rep_a, rep_b in zip(at_once, by_chunks) for a, b in zip(rep_a, rep_b))


def test_what_cannot_fit_is_refused_before_anything_is_written(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory, "machine_bytes", lambda: memory.held_bytes() + 2 ** 20)
    args = ["--stage", "simple", *map(str, dirs(tmp_path, tiny_data))]
    assert cli.run(prepare_data.main, args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "would need about" in error and "GB this machine has free" in error
    assert not list(tiny_data.glob("prepared/*.np*"))
