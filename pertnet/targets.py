"""The target codec: a truncated SVD that maps gene vectors to a few components and back."""
import dataclasses
import time

import numpy as np

from pertnet import tablefile


def n_dim_limit(targets):
    """The most components the targets (rows x genes) have: min(rows, genes)."""
    return min(np.shape(targets))


def cap_n_dim(entries, limit):
    """The entries with n_dim at most `limit` (what the data allows; other fields as they are)."""
    return [dataclasses.replace(e, n_dim=min(e.n_dim, limit)) for e in entries]


EXACT_UP_TO = 4096  # targets whose smaller side is at most this get the exact basis; larger ones a randomized one
# the products of the targets with the basis take a block of genes this large (as float32) at a time: the
# competition's whole table (869 x 18,211: 63 MB) is one block, one product, rounded as it always was
PRODUCT_BLOCK_BYTES = 64 * 2 ** 20


class SVDCodec:
    """Truncated SVD without centring, as scikit-learn's TruncatedSVD, but exact and deterministic.

    TruncatedSVD's default randomized solver approximates the top singular vectors and is
    unseeded in the original; here the exact top `n_components` right singular vectors are
    used, with signs fixed (largest-magnitude loading positive), so a refit gives the same basis.
    Fitting once with the largest n_dim of a stage and `truncate`-ing per entry gives every
    entry exactly the codec it would get from its own exact fit.

    Beyond EXACT_UP_TO rows and genes (screens tens of times the competition's, where the exact
    basis costs minutes and a Gram matrix of rows x rows), the basis is a seeded randomized SVD
    with power iterations (`randomized_right_singular_vectors`): a departure, said in one line.
    """

    def __init__(self, n_components):
        self.n_components = n_components

    def fit(self, targets, log=print):
        if not 0 < self.n_components <= min(np.shape(targets)):
            raise ValueError(f"n_components={self.n_components} must be in 1..{min(np.shape(targets))} "
                             f"for targets of shape {np.shape(targets)}")
        started = time.perf_counter()
        if min(np.shape(targets)) > EXACT_UP_TO:
            log(f"SVD basis of {np.shape(targets)[0]} x {np.shape(targets)[1]} targets: randomized (seeded, "
                f"{POWER_ITERATIONS} power iterations), as the exact one would need a {min(np.shape(targets))}-square "
                "eigendecomposition; a departure from the exact basis (docs/method.md, section 8)")
            vt = randomized_right_singular_vectors(targets, self.n_components, log=log)
        else:
            vt = top_right_singular_vectors(tablefile.to_array(targets, np.float64), self.n_components)
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
        self.components_ = (vt * signs[:, None]).astype(np.float32)
        log(f"SVD basis: {self.n_components} components of {np.shape(targets)[0]} x {np.shape(targets)[1]} targets "
            f"in {time.perf_counter() - started:.1f}s")
        return self

    @classmethod
    def from_components(cls, components):
        codec = cls(len(components))
        codec.components_ = np.asarray(components, dtype=np.float32)
        return codec

    def truncate(self, n_components):
        """The codec of the first `n_components` components (the exact fit at that size)."""
        return SVDCodec.from_components(self.components_[:n_components])

    def transform(self, targets):
        """The components of targets (an array, or a pertnet/tablefile.py table read by blocks of genes)."""
        return sum(np.asarray(values, np.float32) @ self.components_[:, columns].T
                   for columns, values in tablefile.gene_blocks(targets, PRODUCT_BLOCK_BYTES))

    def inverse_transform(self, components):
        return np.asarray(components, dtype=np.float32) @ self.components_


POWER_ITERATIONS = 4
OVERSAMPLING = 32


def randomized_right_singular_vectors(a, k, seed=0, log=lambda line: None):
    """The top k right singular vectors of `a` (rows x genes: an array or a pertnet/tablefile.py table),
    approximated as Halko, Martinsson and Tropp's randomized SVD does, with POWER_ITERATIONS power
    iterations and a seeded sketch: the same basis on every run. `a` is read a block of genes at a time (in
    float64), so memory holds a block and the sketches (rows + genes) x (k + OVERSAMPLING), never a float64
    copy of `a` or a square Gram matrix. log: a line after each pass over `a`, with the time left."""
    rows, genes = np.shape(a)
    width = min(k + OVERSAMPLING, rows, genes)

    def times(matrix):  # a @ matrix, (rows, width)
        return sum(np.asarray(values, np.float64) @ matrix[columns]
                   for columns, values in tablefile.gene_blocks(a, PRODUCT_BLOCK_BYTES))

    def transposed_times(matrix):  # a.T @ matrix, (genes, width)
        return np.concatenate([np.asarray(values, np.float64).T @ matrix
                               for _, values in tablefile.gene_blocks(a, PRODUCT_BLOCK_BYTES)])

    started, passes = time.perf_counter(), 2 * POWER_ITERATIONS + 2

    def said(done):
        elapsed = time.perf_counter() - started
        log(f"SVD basis: pass {done}/{passes} over the targets, {elapsed:.0f}s, about "
            f"{elapsed / done * (passes - done):.0f}s left")

    sketch = np.linalg.qr(times(np.random.default_rng(seed).standard_normal((genes, width))))[0]
    said(1)
    for iteration in range(POWER_ITERATIONS):  # each pass sharpens the gap between the kept and the dropped ones
        sketch = np.linalg.qr(times(np.linalg.qr(transposed_times(sketch))[0]))[0]
        said(2 * iteration + 3)
    _, _, vt = np.linalg.svd(transposed_times(sketch).T, full_matrices=False)
    said(passes)
    return vt[:k]


def top_right_singular_vectors(a, k):
    """The top k right singular vectors of `a` (rows), from the eigenvectors of its smaller Gram matrix.

    The same vectors as np.linalg.svd's (to ~1e-13 in float64 on the demo targets, before the cast
    to float32) at a fraction of the cost: eigh of 614 x 614 instead of an SVD of 614 x 18,211.
    """
    if a.shape[0] < a.shape[1]:
        values, u = np.linalg.eigh(a @ a.T)
        top = np.argsort(values)[::-1][:k]
        singular = np.sqrt(np.clip(values[top], 0, None))
        # beyond the targets' rank (repeated or all-zero rows) a vector is 0/0: it is left all zeros,
        # a component that encodes and decodes nothing, instead of NaN
        real = singular > singular[0] * 1e-7
        return np.where(real[:, None], u[:, top].T @ a, 0) / np.where(real, singular, 1)[:, None]
    values, v = np.linalg.eigh(a.T @ a)
    return v[:, np.argsort(values)[::-1][:k]].T
