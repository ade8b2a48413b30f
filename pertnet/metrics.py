"""Scores: the competition's MRRMSE, and the baselines it is compared with."""
import numpy as np


def row_rmse(predictions, truth):
    """Each row's RMSE across genes."""
    diff = np.asarray(predictions, np.float64) - np.asarray(truth, np.float64)
    return np.sqrt(np.mean(diff ** 2, axis=1))


def mrrmse(predictions, truth):
    """Mean row-wise RMSE: the competition score (lower is better)."""
    return float(np.mean(row_rmse(predictions, truth)))


def compound_mean_baseline(train, pairs, genes):
    """Per-compound mean over the training cell types, for each (cell_type, sm_name) of `pairs`."""
    means = train.groupby("sm_name")[genes].mean()
    return means.loc[pairs["sm_name"]].to_numpy(np.float32)
