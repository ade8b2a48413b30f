"""Ensembling a stage's prediction (SPEC.md section 5): median over reps, weighted mean, clip."""
import numpy as np


def median_over_reps(rep_predictions):
    """Element-wise median over the rep axis: (reps, rows, genes) -> (rows, genes).

    np.median's result (the middle value, or the mean of the middle two), from a sort of the
    short rep axis: 2.5x faster than np.median on 10 x 255 x 18,211.
    """
    ordered = np.sort(np.asarray(rep_predictions), axis=0)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def weighted_mean(entry_predictions, weights):
    """Weighted mean over entries, divided by the sum of the weights."""
    weights = np.asarray(weights, dtype=np.float64)
    total = sum(w * np.asarray(p, dtype=np.float64) for w, p in zip(weights, entry_predictions))
    return (total / weights.sum()).astype(np.float32)


def clip_to_bounds(predictions, low, high):
    """Clip every gene column to its [min, max] over the raw training rows."""
    return np.clip(predictions, low, high)
