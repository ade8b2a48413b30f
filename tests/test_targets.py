import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD

from pertnet import tablefile
from pertnet.targets import SVDCodec


def low_rank(rows=40, genes=30, rank=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, genes))).astype(np.float32)


def test_round_trip_is_exact_at_full_rank():
    y = low_rank()
    codec = SVDCodec(5).fit(y)
    assert codec.transform(y).shape == (40, 5)
    assert np.allclose(codec.inverse_transform(codec.transform(y)), y, atol=1e-4)


def test_components_are_orthonormal_and_match_sklearn_reconstruction():
    y = low_rank(rank=8) + np.random.default_rng(1).normal(0, 0.1, (40, 30)).astype(np.float32)
    codec = SVDCodec(4).fit(y)
    assert np.allclose(codec.components_ @ codec.components_.T, np.eye(4), atol=1e-5)
    sk = TruncatedSVD(4, algorithm="arpack", random_state=0).fit(y)
    assert np.allclose(codec.inverse_transform(codec.transform(y)), sk.inverse_transform(sk.transform(y)), atol=1e-3)


def test_truncate_equals_a_smaller_fit_and_refit_is_identical():
    y = low_rank(rank=10)
    assert np.allclose(SVDCodec(10).fit(y).truncate(3).components_, SVDCodec(3).fit(y).components_, atol=1e-5)
    assert np.array_equal(SVDCodec(6).fit(y).components_, SVDCodec(6).fit(y).components_)


def test_too_many_components_is_a_clear_error():
    with pytest.raises(ValueError, match="n_components=31"):
        SVDCodec(31).fit(low_rank())


@pytest.mark.parametrize("rows,genes", [(30, 80), (80, 30)], ids=["wide (Gram of rows)", "tall (Gram of genes)"])
def test_components_are_numpys_singular_vectors(rows, genes):
    y = np.random.default_rng(2).normal(size=(rows, genes)).astype(np.float32)
    _, _, vt = np.linalg.svd(y.astype(np.float64), full_matrices=False)
    components = SVDCodec(6).fit(y).components_
    signs = np.sign(np.sum(components * vt[:6], axis=1))
    assert np.allclose(components, vt[:6] * signs[:, None], atol=1e-5)


def test_large_targets_get_a_seeded_randomized_basis_close_to_the_exact_one(monkeypatch, tmp_path):
    """Above EXACT_UP_TO rows and genes the basis is randomized (read by blocks of rows): on targets where
    both run, its components span what the exact ones span, and a refit gives the same bytes."""
    from pertnet import targets

    rng = np.random.default_rng(3)
    y = (rng.normal(size=(700, 12)) * np.geomspace(30, 3, 12)) @ rng.normal(size=(12, 500)) \
        + rng.normal(size=(700, 500))  # 12 strong directions over noise
    y = y.astype(np.float32)
    exact = SVDCodec(12).fit(y).components_
    monkeypatch.setattr(targets, "EXACT_UP_TO", 100)
    lines = []
    randomized = SVDCodec(12).fit(y, lines.append).components_
    assert "randomized (seeded, 4 power iterations)" in lines[0] and "pass 10/10" in lines[-2] and len(lines) == 1 + 6 + 1
    assert lines[-1].startswith("SVD basis: 12 components of 700 x 500 targets in ")
    cosines = np.abs(np.sum(exact * randomized, axis=1))  # unit vectors, each signed as the exact ones
    assert cosines.min() > 0.999
    assert np.array_equal(SVDCodec(12).fit(y, lines.append).components_, randomized)
    monkeypatch.setattr(targets, "PRODUCT_BLOCK_BYTES", 700 * 4 * 64)  # blocks of 64 genes: the same basis, up to rounding
    blocked = SVDCodec(12).fit(y, lines.append)
    assert np.allclose(blocked.components_, randomized, atol=1e-5)
    np.save(tmp_path / "y.npy", np.asfortranarray(y))  # the targets on disk, as prepare_data keeps them: the same bytes
    on_disk = tablefile.TableFile(tmp_path / "y.npy")
    assert np.array_equal(SVDCodec(12).fit(on_disk, lines.append).components_, blocked.components_)
    assert np.array_equal(blocked.transform(on_disk), blocked.transform(y))
