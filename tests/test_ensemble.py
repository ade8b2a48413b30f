import numpy as np

from pertnet import ensemble


def test_median_over_reps_by_hand():
    reps = np.array([[[1.0, 10.0]], [[3.0, -2.0]], [[2.0, 4.0]]])  # 3 reps, 1 row, 2 genes
    assert np.array_equal(ensemble.median_over_reps(reps), [[2.0, 4.0]])
    assert np.array_equal(ensemble.median_over_reps(reps[:2]), [[2.0, 4.0]])  # even count: mean of middle two


def test_weighted_mean_divides_by_the_sum_of_weights():
    a, b = np.array([[1.0, 2.0]]), np.array([[4.0, 8.0]])
    assert np.allclose(ensemble.weighted_mean([a, b], [0.25, 0.5]), [[(0.25 + 2) / 0.75, (0.5 + 4) / 0.75]])


def test_clip_per_gene():
    values = np.array([[-5.0, 0.5, 9.0], [0.0, -1.0, 1.0]])
    clipped = ensemble.clip_to_bounds(values, np.array([-1.0, 0.0, -2.0]), np.array([1.0, 0.2, 3.0]))
    assert np.array_equal(clipped, [[-1.0, 0.2, 3.0], [0.0, 0.0, 1.0]])


def test_median_over_reps_is_numpys_median():
    rng = np.random.default_rng(1)
    for reps in (1, 2, 3, 10):
        values = rng.normal(size=(reps, 7, 50)).astype(np.float32)
        assert np.array_equal(ensemble.median_over_reps(values), np.median(values, axis=0))
