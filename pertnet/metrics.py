"""Scores: the competition's MRRMSE, the Open Problems benchmark's row-wise metrics, and baselines.

Every metric is computed per row across genes and then averaged over rows (the Open Problems
definitions). A row whose prediction or truth has zero variance (zero norm, for cosine) scores
0 on the correlation metrics, where the formula would divide by zero.
"""
import numpy as np

METRICS = ("mrrmse", "mae", "pearson", "spearman", "cosine")  # lower is better only for the first two
# The same metrics' ids in the Open Problems perturbation-prediction benchmark (reports carry both).
BENCHMARK_IDS = dict(mrrmse="mean_rowwise_rmse", mae="mean_rowwise_mae", pearson="mean_rowwise_pearson",
                     spearman="mean_rowwise_spearman", cosine="mean_rowwise_cosine")


def _check(predictions, truth):
    if np.shape(predictions) != np.shape(truth) or np.ndim(truth) != 2:
        raise ValueError(f"predictions {np.shape(predictions)} and truth {np.shape(truth)} must be the same (rows, genes)")
    if not np.isfinite(predictions).all():
        raise ValueError("predictions hold NaN or infinite values")


def _pair(predictions, truth):
    _check(predictions, truth)
    return np.asarray(predictions, np.float64), np.asarray(truth, np.float64)


def _rmse(predictions, truth):
    return np.sqrt(np.mean((predictions - truth) ** 2, axis=1))


def _mae(predictions, truth):
    return np.mean(np.abs(predictions - truth), axis=1)


def _centred(values):
    return values - values.mean(axis=1, keepdims=True)


def _cosine(predictions, truth, truth_norms):
    """Row-wise cosine; truth_norms: the truth's row norms (row_scores computes them once per block)."""
    norms = np.linalg.norm(predictions, axis=1) * truth_norms
    dots = np.sum(predictions * truth, axis=1)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def row_rmse(predictions, truth):
    """Each row's RMSE across genes."""
    return _rmse(*_pair(predictions, truth))


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
    rank = np.arange(1.0, distinct.shape[1] + 1)  # by position in the sorted row, where no value repeats
    if not starts.all():  # the run at positions s..s+k-1 (runs never span rows) shares rank s + (k + 1) / 2
        start = np.flatnonzero(starts)
        length = np.diff(start, append=starts.size)
        rank = np.repeat(start % distinct.shape[1] + (length + 1) / 2, length).reshape(distinct.shape)
    ranks = np.empty(distinct.shape)
    np.put_along_axis(ranks, order, rank, axis=1)
    return ranks[which]


def row_scores(predictions, truth, rows_at_once=32):
    """Every metric's per-row values for each of several predictions of one truth:
    {key: {metric: (rows,)}} for predictions {key: (rows, genes)}. RMSE and MAE; Pearson as the cosine of
    the centred rows, Spearman as the Pearson of the ranks (ties share their average rank), cosine
    (0 where a row is constant or all zeros). A block of rows at a time, so that the temporaries of
    18,211-gene rows take megabytes, not hundreds of them; what depends on the truth alone (its ranks,
    centred rows, row norms) is computed once per block."""
    for predicted in predictions.values():
        _check(predicted, truth)
    blocks = []
    for start in range(0, len(truth), rows_at_once):
        rows = slice(start, start + rows_at_once)
        true = np.asarray(truth[rows], np.float64)
        centred, centred_ranks = _centred(true), _centred(rank_rows(true))
        true_norms, centred_norms, rank_norms = (np.linalg.norm(t, axis=1) for t in (true, centred, centred_ranks))
        blocks.append({})
        for key, predicted in predictions.items():
            predicted = np.asarray(predicted[rows], np.float64)
            blocks[-1][key] = dict(mrrmse=_rmse(predicted, true), mae=_mae(predicted, true),
                                   pearson=_cosine(_centred(predicted), centred, centred_norms),
                                   spearman=_cosine(_centred(rank_rows(predicted)), centred_ranks, rank_norms),
                                   cosine=_cosine(predicted, true, true_norms))
    return joined(blocks)


def joined(blocks):
    """Per-row scores ({key: {metric: (rows,)}}) of consecutive blocks of rows, as one."""
    return {key: {metric: np.concatenate([block[key][metric] for block in blocks]) for metric in METRICS}
            for key in blocks[0]}


def mrrmse(predictions, truth):
    """Mean row-wise RMSE: the competition score (lower is better)."""
    return float(np.mean(row_rmse(predictions, truth)))


BASELINES = {  # key: (label in reports, what a pair's prediction is the mean of, over the training rows: those
    #             of its compound ("sm_name") or its cell type ("cell_type"), all of them ("all"), or none (zeros))
    "zeros": ("baseline: all zeros", None),
    "compound_mean": ("baseline: compound mean", "sm_name"),
    "cell_type_mean": ("baseline: cell-type mean", "cell_type"),
    "training_mean": ("baseline: training mean", "all"),
}
