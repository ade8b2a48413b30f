import subprocess
import sys
from pathlib import Path

import numpy as np

from pertnet import ensemble


def test_median_over_reps_by_hand():
    reps = np.array([[[1.0, 10.0]], [[3.0, -2.0]], [[2.0, 4.0]]])  # 3 reps, 1 row, 2 genes
    assert np.array_equal(ensemble.median_over_reps(reps), [[2.0, 4.0]])
    assert np.array_equal(ensemble.median_over_reps(reps[:2]), [[2.0, 4.0]])  # even count: mean of middle two


def test_weighted_mean_divides_by_the_sum_of_weights():
    a, b = np.array([[1.0, 2.0]]), np.array([[4.0, 8.0]])
    mean = ensemble.WeightedMean()
    mean.add(a, 0.25)
    mean.add(b, 0.5)
    assert np.allclose(mean.result(), [[(0.25 + 2) / 0.75, (0.5 + 4) / 0.75]])


def test_clip_per_gene():
    values = np.array([[-5.0, 0.5, 9.0], [0.0, -1.0, 1.0]])
    clipped = ensemble.clip_to_bounds(values, np.array([-1.0, 0.0, -2.0]), np.array([1.0, 0.2, 3.0]))
    assert np.array_equal(clipped, [[-1.0, 0.2, 3.0], [0.0, 0.0, 1.0]])


def test_median_over_reps_is_numpys_median():
    rng = np.random.default_rng(1)
    for reps in (1, 2, 3, 10):
        values = rng.normal(size=(reps, 7, 50)).astype(np.float32)
        assert np.array_equal(ensemble.median_over_reps(values), np.median(values, axis=0))


def test_decoded_median_is_the_median_of_the_decoded_reps():
    rng = np.random.default_rng(1)
    components, basis = rng.normal(size=(5, 70, 3)).astype(np.float32), rng.normal(size=(3, 40)).astype(np.float32)
    decoded = ensemble.decoded_median(components, lambda c: c @ basis, rows_per_block=8)
    assert np.array_equal(decoded, ensemble.median_over_reps(components @ basis))


def test_predicting_needs_no_tensorflow():
    """predict's path (CLI, pipeline, inference) imports no TensorFlow: six seconds of start-up saved."""
    code = "import sys, predict; from pertnet import architectures; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
