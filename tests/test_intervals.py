"""Prediction intervals: the conformal quantiles, the ensemble's spread, the choice between scaled and
per-gene intervals, and the commands end to end (calibrate with evaluate --cv, predict --interval,
evaluate the coverage), with the refusals a user meets."""
import json

import numpy as np
import pandas as pd
import pytest

import evaluate
import predict
import prepare_data
import train
from conftest import dirs
from pertnet import UserError, cli, data, ensemble, intervals, tablefile
from pertnet import stage as stage_module
from pertnet.entries import stage_entries
from pertnet.stage import Stage

T_AND_NK = ["NK cells", "T cells CD4+", "T cells CD8+", "T regulatory cells"]  # the author's folds


def test_conformal_quantiles_are_the_ceil_n_plus_1_q_th_smallest():
    scores = np.arange(1, 20, dtype=np.float32)[::-1, None]  # 19 rows: 19, 18, ..., 1
    quantiles = intervals.conformal_quantiles(scores, [0.5, 0.9, 0.95, 0.99])
    assert quantiles[:, 0].tolist() == [10, 18, 19, np.inf]  # ceil(20 q): 10, 18, 19, 20 > 19 rows


def test_the_spread_is_the_weighted_standard_deviation_of_every_rep_of_every_entry():
    rng = np.random.default_rng(0)
    reps = [rng.normal(size=(3, 4, 5)), rng.normal(size=(5, 4, 5)) + 1]  # two entries: 3 and 5 reps
    weights = [0.3, 0.7]
    combined = ensemble.Ensemble(np.full(5, -9.0), np.full(5, 9.0))
    for rep, weight in zip(reps, weights):
        combined.add(rep.mean(axis=0), weight, rep.var(axis=0))
    members = np.concatenate(reps)
    member_weights = np.concatenate([np.full(len(rep), w / len(rep)) for rep, w in zip(reps, weights)])
    expected = np.sqrt(np.cov(members.reshape(len(members), -1).T, aweights=member_weights, ddof=0).diagonal())
    np.testing.assert_allclose(combined.spread().ravel(), expected, rtol=1e-5)


def _stage_predictions(rng, rows, genes, informative):
    """Predictions, spreads and truth whose errors scale with the spread (informative) or not."""
    spread = (rng.uniform(0.1, 2.0, size=(rows, 1)) * rng.uniform(0.5, 1.5, size=(rows, genes))).astype(np.float32)
    noise_scale = spread if informative else np.ones_like(spread)
    prediction = rng.normal(size=(rows, genes)).astype(np.float32)
    return prediction, spread, prediction + noise_scale * rng.normal(size=(rows, genes))


def _residuals(truth, prediction):
    return (truth - prediction).astype(np.float32)


def test_a_calibration_read_by_blocks_of_genes_from_files_is_the_one_of_the_whole(tmp_path, monkeypatch):
    """Every gene's quantiles are its own: blocks of 7 genes read from files give the same quantiles, medians and
    choice of beta, and the same summary up to the rounding of sums taken block by block."""
    rng = np.random.default_rng(4)
    prediction, spread, truth = _stage_predictions(rng, 200, 30, True)
    genes, groups, entries = [f"g{i}" for i in range(30)], np.repeat(np.arange(4), 50), stage_entries("simple")
    whole = intervals.Calibration.fit("simple", genes, entries, _residuals(truth, prediction), spread, groups)
    files = []
    for name, values in (("residuals", _residuals(truth, prediction)), ("spreads", spread)):
        with tablefile.TableWriter(tmp_path / f"{name}.npy", values.shape) as writer:
            writer.write(slice(0, len(values)), slice(0, 30), values)
        files.append(tablefile.TableFile(tmp_path / f"{name}.npy"))
    monkeypatch.setattr(tablefile, "GENES_AT_ONCE", 7)
    lines = []
    blocked = intervals.Calibration.fit("simple", genes, entries, *files, groups, lines.append, every=0)
    assert np.array_equal(blocked.quantiles, whole.quantiles) and np.array_equal(blocked.spread_median, whole.spread_median)
    assert blocked.beta == whole.beta and blocked.error_per_spread == pytest.approx(whole.error_per_spread, rel=1e-9)
    for beta, levels in whole.summary["candidates"].items():
        for level, values in levels.items():
            assert blocked.summary["candidates"][beta][level] == pytest.approx(values, rel=1e-6)
    assert "7 of 30 genes" in lines[0] and "s left" in lines[0]


@pytest.mark.parametrize("informative, method", [(True, "spread"), (False, "per_gene")])
def test_the_folds_choose_the_spread_only_where_it_tells_the_errors_apart(informative, method):
    rng = np.random.default_rng(1)
    prediction, spread, truth = _stage_predictions(rng, 400, 30, informative)
    entries = stage_entries("simple")
    calibration = intervals.Calibration.fit("simple", [f"g{i}" for i in range(30)], entries,
                                            _residuals(truth, prediction), spread, np.repeat(np.arange(4), 100))
    assert calibration.method == method
    new_prediction, new_spread, new_truth = _stage_predictions(rng, 400, 30, informative)  # rows it never saw
    for level in (0.8, 0.9):
        bounds = calibration.bounds(new_prediction, new_spread, level)
        covered = ((new_truth >= bounds.lower) & (new_truth <= bounds.upper)).mean()
        assert abs(covered - level) < 0.02, (level, covered)
        assert calibration.summary["candidates"][calibration.summary["beta"]][str(level)]["coverage"] == \
            pytest.approx(level, abs=0.02)
    if informative:  # the uncertainty score ranks the rows' errors
        row_rmse = np.sqrt(np.mean(np.square(new_truth - new_prediction), axis=1))
        assert pd.Series(bounds.uncertainty).corr(pd.Series(row_rmse), method="spearman") > 0.5


def test_a_single_member_has_no_spread_and_gets_per_gene_intervals():
    rng = np.random.default_rng(3)
    prediction, _, truth = _stage_predictions(rng, 40, 5, False)
    calibration = intervals.Calibration.fit("simple", list("abcde"), stage_entries("simple"), _residuals(truth, prediction),
                                            np.zeros_like(prediction), np.repeat(np.arange(4), 10))
    assert calibration.method == "per_gene" and "the ensemble has no spread" in calibration.summary["chosen_by"]
    assert set(calibration.summary["candidates"]) == {"inf"}
    bounds = calibration.bounds(prediction, np.zeros_like(prediction), 0.9)
    assert np.ptp(bounds.upper - bounds.lower, axis=0).max() < 1e-5  # one width per gene


def test_a_calibration_refuses_other_models_and_levels_its_rows_cannot_support(tmp_path):
    rng = np.random.default_rng(2)
    prediction, spread, truth = _stage_predictions(rng, 12, 3, True)
    genes = ["a", "b", "c"]
    calibration = intervals.Calibration.fit("simple", genes, stage_entries("simple", reps=2),
                                            _residuals(truth, prediction), spread, np.repeat(np.arange(3), 4))
    path = calibration.save(tmp_path / "calibration.npz")
    loaded = intervals.Calibration.load(path, "simple")
    assert loaded.max_level() == 0.92  # 12 rows: ceil(13 q) <= 12 up to q = 12/13
    with pytest.raises(UserError, match=r"support levels up to 0\.92"):
        loaded.require_level(0.95, path)

    def stage(reps, stage_genes=genes):
        return Stage("simple", stage_entries("simple", reps=reps), stage_genes, [], None, None, None, "")
    loaded.check(stage(2), path)
    with pytest.raises(UserError, match=r"other entries than the models' \(7: 2 reps x 141 epochs; the models: 7: 3 reps"):
        loaded.check(stage(3), path)
    with pytest.raises(UserError, match="other genes"):
        loaded.check(stage(2, ["a", "b", "x"]), path)


def test_calibrate_predict_with_bounds_and_measure_their_coverage(tmp_path, tiny_data, capsys, monkeypatch):
    """The commands as a user runs them; the submission is the same, byte for byte, with or without bounds."""
    folders = [*map(str, dirs(tmp_path, tiny_data))]
    common = ["--stage", "simple", *folders]
    submissions = tmp_path / "submissions"
    assert cli.run(prepare_data.main, common) == 0
    assert cli.run(train.main, [*common, "--reps", "2", "--epochs", "1"]) == 0
    assert cli.run(predict.main, common) == 0
    plain = (submissions / "simple_submission.csv").read_bytes()
    capsys.readouterr()

    assert cli.run(predict.main, [*common, "--interval", "0.9"]) == 2  # no calibration yet: one line, nothing written
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "python -m evaluate --stage simple --cv" in error
    assert sorted(p.name for p in submissions.iterdir()) == ["simple_submission.csv"]
    assert cli.run(predict.main, [*common, "--interval", "1.5"]) == 2
    assert "must be a coverage level from 0.5 to 0.99" in capsys.readouterr().err

    plot_path, models_before = tmp_path / "cv.png", set((tmp_path / "models").rglob("*"))
    assert cli.run(evaluate.main, [*common, "--cv", "--reps", "2", "--epochs", "1", "--json",
                                   str(tmp_path / "cv.json"), "--plot", str(plot_path)]) == 0
    out = capsys.readouterr().out
    check_cv_report(out, json.loads((tmp_path / "cv.json").read_text()), plot_path)
    assert "intervals (cross-fitted over the 4 folds)" in out and "calibration -> " in out
    # the folds train in memory: all the CV adds to the models folder is the stage's calibration
    assert set((tmp_path / "models").rglob("*")) - models_before == {tmp_path / "models" / "simple" / "calibration.npz"}
    summary = json.loads((tmp_path / "cv.json").read_text())["intervals"]
    assert set(summary["candidates"]) == {"0", "0.25", "1", "inf"} and summary["rows"] == 2 * (129 + 129 + 127 + 129)

    assert cli.run(predict.main, [*common, "--interval", "0.8"]) == 0
    assert (submissions / "simple_submission.csv").read_bytes() == plain
    written = {path.name: pd.read_csv(path) for path in submissions.iterdir()}
    monkeypatch.setattr(stage_module, "PAIRS_AT_ONCE", 7)  # written 7 pairs at a time: the same tables, up to the
    assert cli.run(predict.main, [*common, "--interval", "0.8"]) == 0  # rounding of a smaller batch in the nets
    for name, table in written.items():
        pd.testing.assert_frame_equal(pd.read_csv(submissions / name), table, rtol=1e-5, atol=1e-6)
    lower, upper = (pd.read_csv(submissions / f"simple_{kind}.csv") for kind in ("lower", "upper"))
    prediction = pd.read_csv(submissions / "simple_submission.csv")
    assert list(lower.columns) == list(prediction.columns) == list(upper.columns)  # id, then the genes
    genes = prediction.columns[1:]
    assert (lower[genes].to_numpy() <= prediction[genes].to_numpy()).all()
    assert (prediction[genes].to_numpy() <= upper[genes].to_numpy()).all()
    scores = pd.read_csv(submissions / "simple_uncertainty.csv")
    assert list(scores.columns) == ["id", "cell_type", "sm_name", "uncertainty", "level"]
    assert (scores["level"] == 0.8).all() and (scores["uncertainty"] > 0).all()
    capsys.readouterr()

    report_path = tmp_path / "scored.json"
    assert cli.run(evaluate.main, [*folders, "--submission", str(submissions / "simple_submission.csv"),
                                   "--json", str(report_path)]) == 0
    assert "intervals at 0.8: coverage" in capsys.readouterr().out
    coverage = json.loads(report_path.read_text())["coverage"]
    truth = data.read_parquet(tiny_data / "de_test.parquet")[2]
    inside = (truth >= lower[genes].to_numpy()) & (truth <= upper[genes].to_numpy())  # same row order: id_map's
    assert coverage["coverage"] == pytest.approx(inside.mean())
    assert set(coverage["by_cell_type"]) == {"B cells", "Myeloid cells"} and len(coverage["by_gene_decile"]) == 10
    assert set(coverage["ranking"]) == {"uncertainty_spearman", "prediction_size_spearman"}

    assert cli.run(predict.main, common) == 0  # without --interval: the earlier bounds go, they are not this one's
    assert sorted(p.name for p in submissions.iterdir()) == ["simple_submission.csv"]
    assert "removed" in capsys.readouterr().out


def check_cv_report(out, report, plot_path):
    """evaluate --cv's table, JSON and plot on the demo's design: the author's T/NK folds."""
    assert "[cv repeat 2/2, fold 4/4 T regulatory cells] 129 held-out rows: MRRMSE" in out  # fold scores
    assert "side by side" in out and "scheme cell_type" in out
    assert "baseline: compound mean" in out and "improves MRRMSE" in out
    assert report["mode"] == "cv" and report["cv"]["held_out_rows"] == [129, 129, 127, 129]
    assert report["rows"] == 2 * (129 + 129 + 127 + 129)
    assert report["cv"]["folds"] == T_AND_NK and report["cv"]["repeats"] == 2
    assert report["cv"]["scheme"]["name"] == "cell_type" and "B cells, Myeloid cells" in report["cv"]["scheme"]["reason"]
    assert set(report["scores"]["model"]["by_cell_type"]) == set(T_AND_NK)
    for key in ("model", "zeros", "compound_mean", "cell_type_mean", "training_mean"):
        assert np.isfinite(report["scores"][key]["overall"]["mrrmse"])
    assert report["scores"]["zeros"]["overall"]["pearson"] == 0.0
    model = report["scores"]["model"]
    assert model["benchmark"] == {"mean_rowwise_rmse": model["overall"]["mrrmse"], "mean_rowwise_mae": model["overall"]["mae"],
                                  "mean_rowwise_pearson": model["overall"]["pearson"],
                                  "mean_rowwise_spearman": model["overall"]["spearman"],
                                  "mean_rowwise_cosine": model["overall"]["cosine"]}
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    with Image.open(plot_path) as image:
        image.verify()
