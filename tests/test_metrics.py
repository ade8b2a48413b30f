"""The row-wise metrics against values worked out by hand, and the baselines."""
import numpy as np
import pandas as pd
import pytest

from pertnet import metrics, report, schemas, tablefile

TRUTH = np.array([[1.0, 2.0, 3.0, 4.0],
                  [0.0, 0.0, 0.0, 0.0]])
PREDICTED = np.array([[2.0, 2.0, 2.0, 6.0],   # errors 1, 0, -1, 2
                      [1.0, -1.0, 1.0, -1.0]])


def test_rmse_and_mae_by_hand():
    assert metrics.row_rmse(PREDICTED, TRUTH) == pytest.approx([np.sqrt(6 / 4), 1.0])
    assert metrics.mrrmse(PREDICTED, TRUTH) == pytest.approx((np.sqrt(1.5) + 1.0) / 2)
    scores = metrics.row_scores({"model": PREDICTED}, TRUTH)["model"]
    assert scores["mrrmse"] == pytest.approx([np.sqrt(6 / 4), 1.0]) and scores["mae"] == pytest.approx([1.0, 1.0])


def test_correlations_by_hand():
    # row 0: centred prediction (-1, -1, -1, 3), centred truth (-1.5, -0.5, 0.5, 1.5)
    pearson = (1.5 + 0.5 - 0.5 + 4.5) / (np.sqrt(12) * np.sqrt(5))
    # ranks: prediction (2, 2, 2, 4) (ties share their average rank), truth (1, 2, 3, 4);
    # centred: (-0.5, -0.5, -0.5, 1.5) and (-1.5, -0.5, 0.5, 1.5)
    spearman = (0.75 + 0.25 - 0.25 + 2.25) / (np.sqrt(3) * np.sqrt(5))
    cosine = (2 + 4 + 6 + 24) / (np.sqrt(48) * np.sqrt(30))
    scores = metrics.row_scores({"model": PREDICTED}, TRUTH)["model"]
    assert scores["pearson"][0] == pytest.approx(pearson)
    assert scores["spearman"][0] == pytest.approx(spearman)
    assert scores["cosine"][0] == pytest.approx(cosine)


def test_a_zero_variance_row_scores_zero_on_the_correlations():
    scores = metrics.row_scores({"model": PREDICTED}, TRUTH)["model"]  # row 1: the truth is constant (all zeros)
    assert scores["pearson"][1] == scores["spearman"][1] == scores["cosine"][1] == 0.0
    constant = metrics.row_scores({"model": np.array([[5.0, 5.0, 5.0, 5.0]])}, TRUTH[:1])["model"]
    assert constant["pearson"] == pytest.approx([0.0]) and constant["spearman"] == pytest.approx([0.0])
    assert constant["cosine"] > 0.5  # not centred: not zero


def test_identical_inputs_are_perfect():
    scores = metrics.row_scores({"model": TRUTH[:1]}, TRUTH[:1])["model"]
    assert scores["mrrmse"] == pytest.approx([0.0]) and scores["mae"] == pytest.approx([0.0])
    for name in ("pearson", "spearman", "cosine"):
        assert scores[name] == pytest.approx([1.0])


def test_nan_predictions_and_shape_mismatches_are_errors():
    with pytest.raises(ValueError, match="NaN"):
        metrics.row_rmse(np.array([[np.nan, 1.0]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="same"):
        metrics.row_rmse(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same"):  # row_scores works a block of rows at a time: checked whole
        metrics.row_scores({"model": np.zeros((40, 3))}, np.zeros((2, 3)))


def test_ranks_match_scipys_with_ties_and_repeated_rows():
    from scipy.stats import rankdata

    values = np.round(np.random.default_rng(0).normal(size=(40, 30)), 1)  # many ties
    values[[5, 9, 33]] = values[2]  # repeated rows are ranked once
    values[7] = 0.0
    for layout in (values, np.asfortranarray(values)):
        assert np.array_equal(metrics.rank_rows(layout), rankdata(values, axis=1))


def test_row_scores_block_by_block_match_scipy_on_every_row():
    """70 rows (3 blocks of 32) in the layout evaluation reads, a baseline that repeats one row: each row's
    Pearson and Spearman as SciPy computes them, RMSE, MAE and cosine by their definitions."""
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(1)
    truth = np.asfortranarray(np.round(rng.normal(size=(70, 50)), 1))  # ties, for the ranks
    predictions = {"model": np.asfortranarray(truth + rng.normal(size=truth.shape)),
                   "baseline": np.tile(rng.normal(size=50).astype(np.float32), (70, 1))}
    scores = metrics.row_scores(predictions, truth)
    for key, predicted in predictions.items():
        assert list(scores[key]) == list(metrics.METRICS)
        predicted = predicted.astype(np.float64)
        expected = dict(mrrmse=np.sqrt(((predicted - truth) ** 2).mean(axis=1)), mae=np.abs(predicted - truth).mean(axis=1),
                        pearson=[pearsonr(p, t)[0] for p, t in zip(predicted, truth)],
                        spearman=[spearmanr(p, t)[0] for p, t in zip(predicted, truth)],
                        cosine=(predicted * truth).sum(axis=1) / np.linalg.norm(predicted, axis=1)
                        / np.linalg.norm(truth, axis=1))
        for name, values in expected.items():
            assert scores[key][name] == pytest.approx(values, rel=1e-9, abs=1e-12), (key, name)


def test_baselines():
    train = pd.DataFrame({"cell_type": ["A", "A", "B"], "sm_name": ["x", "y", "x"],
                          "g1": [1.0, 3.0, 5.0], "g2": [0.0, 2.0, 4.0]})
    pairs = pd.DataFrame({"cell_type": ["B"], "sm_name": ["y"]})
    expected = {"zeros": [0, 0], "compound_mean": [3, 2], "cell_type_mean": [5, 4], "training_mean": [3, 2]}
    baselines = report.Baselines(train[schemas.PAIR], tablefile.gene_blocks(train[["g1", "g2"]].to_numpy(), 4),
                                 ["g1", "g2"], pairs, "the training rows")  # a block of each gene
    for key, prediction in baselines.predict(pairs).items():
        assert prediction.tolist() == [expected[key]], key
