"""Scores: the competition's MRRMSE, the Open Problems benchmark's row-wise metrics, and baselines.

Every metric is computed per row across genes and then averaged over rows (the Open Problems
definitions). A row whose prediction or truth has zero variance (zero norm, for cosine) scores
0 on the correlation metrics, where the formula would divide by zero.
"""
import numpy as np

METRICS = ("mrrmse", "mae", "pearson", "spearman", "cosine")  # lower is better only for the first two


def _pair(predictions, truth):
    predictions, truth = np.asarray(predictions, np.float64), np.asarray(truth, np.float64)
    if predictions.shape != truth.shape or predictions.ndim != 2:
        raise ValueError(f"predictions {predictions.shape} and truth {truth.shape} must be the same (rows, genes)")
    if not np.isfinite(predictions).all():
        raise ValueError("predictions hold NaN or infinite values")
    return predictions, truth


def row_rmse(predictions, truth):
    """Each row's RMSE across genes."""
    predictions, truth = _pair(predictions, truth)
    return np.sqrt(np.mean((predictions - truth) ** 2, axis=1))


def row_mae(predictions, truth):
    predictions, truth = _pair(predictions, truth)
    return np.mean(np.abs(predictions - truth), axis=1)


def row_cosine(predictions, truth):
    """Each row's cosine similarity; 0 where either row is all zeros."""
    predictions, truth = _pair(predictions, truth)
    norms = np.linalg.norm(predictions, axis=1) * np.linalg.norm(truth, axis=1)
    dots = np.sum(predictions * truth, axis=1)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def row_pearson(predictions, truth):
    """Each row's Pearson correlation across genes; 0 where either row is constant."""
    predictions, truth = _pair(predictions, truth)
    return row_cosine(predictions - predictions.mean(axis=1, keepdims=True),
                      truth - truth.mean(axis=1, keepdims=True))


def rank_rows(values):
    """Each row's ranks, 1 to n, ties sharing their average rank (scipy's rankdata(values, axis=1),
    without the 0.8 s scipy takes to import). A row that occurs several times is ranked once: the
    baselines repeat theirs (one per compound, one per cell type, or one for all)."""
    values = np.asarray(values)
    first = {}
    which = np.array([first.setdefault(row.tobytes(), len(first)) for row in values], dtype=np.intp)
    distinct = values[np.unique(which, return_index=True)[1]]
    order = np.argsort(distinct, axis=1)
    ordered = np.take_along_axis(distinct, order, axis=1)
    starts = np.ones(distinct.shape, bool)  # where each run of equal values begins
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    start = np.flatnonzero(starts)  # runs never span rows: every row starts one
    length = np.diff(start, append=starts.size)
    average = np.repeat(start % distinct.shape[1] + (length + 1) / 2, length)  # run at columns s..s+k-1
    ranks = np.empty(distinct.shape)
    np.put_along_axis(ranks, order, average.reshape(distinct.shape), axis=1)
    return ranks[which]


def row_spearman(predictions, truth, truth_ranks=None):
    """Each row's Spearman correlation: Pearson of the ranks (ties get their average rank).
    truth_ranks: rank_rows(truth), for callers that score many predictions of one truth."""
    predictions, truth = _pair(predictions, truth)
    return row_pearson(rank_rows(predictions), rank_rows(truth) if truth_ranks is None else truth_ranks)


ROW_METRICS = dict(mrrmse=row_rmse, mae=row_mae, pearson=row_pearson, spearman=row_spearman, cosine=row_cosine)


def row_scores(predictions, truth):
    """Every metric's per-row values for each of several predictions of one truth:
    {key: {metric: (rows,)}} for predictions {key: (rows, genes)}; the truth is ranked once,
    and each prediction made float64 once (not once per metric)."""
    truth = np.asarray(truth, np.float64)
    truth_ranks = rank_rows(truth)
    scores = {}
    for key, predicted in predictions.items():
        predicted, _ = _pair(predicted, truth)
        scores[key] = {name: row_spearman(predicted, truth, truth_ranks) if name == "spearman"
                       else function(predicted, truth) for name, function in ROW_METRICS.items()}
    return scores


def mrrmse(predictions, truth):
    """Mean row-wise RMSE: the competition score (lower is better)."""
    return float(np.mean(row_rmse(predictions, truth)))


def compound_mean_baseline(train, pairs, genes):
    """Per-compound mean over the training cell types, for each (cell_type, sm_name) of `pairs`."""
    means = train.groupby("sm_name")[genes].mean()
    return means.loc[pairs["sm_name"]].to_numpy(np.float32)


def cell_type_mean_baseline(train, pairs, genes):
    """Per-cell-type mean over the training compounds, for each pair."""
    means = train.groupby("cell_type")[genes].mean()
    return means.loc[pairs["cell_type"]].to_numpy(np.float32)


def training_mean_baseline(train, pairs, genes):
    """The mean of all training rows, for every pair."""
    return np.tile(train[genes].mean().to_numpy(np.float32), (len(pairs), 1))


def zeros_baseline(train, pairs, genes):
    return np.zeros((len(pairs), len(genes)), np.float32)


BASELINES = {  # key: (label in reports, function(train, pairs, genes) -> (pairs, genes))
    "zeros": ("baseline: all zeros", zeros_baseline),
    "compound_mean": ("baseline: compound mean", compound_mean_baseline),
    "cell_type_mean": ("baseline: cell-type mean", cell_type_mean_baseline),
    "training_mean": ("baseline: training mean", training_mean_baseline),
}
