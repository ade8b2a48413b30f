"""The target codec: a truncated SVD that maps gene vectors to a few components and back."""
import numpy as np


class SVDCodec:
    """Truncated SVD without centring, as scikit-learn's TruncatedSVD, but exact and deterministic.

    TruncatedSVD's default randomized solver approximates the top singular vectors and is
    unseeded in the original; here the exact top `n_components` right singular vectors are
    used, with signs fixed (largest-magnitude loading positive), so a refit gives the same basis.
    Fitting once with the largest n_dim of a stage and `truncate`-ing per entry gives every
    entry exactly the codec it would get from its own exact fit.
    """

    def __init__(self, n_components):
        self.n_components = n_components

    def fit(self, targets):
        targets = np.asarray(targets, dtype=np.float64)
        if not 0 < self.n_components <= min(targets.shape):
            raise ValueError(f"n_components={self.n_components} must be in 1..{min(targets.shape)} "
                             f"for targets of shape {targets.shape}")
        _, _, vt = np.linalg.svd(targets, full_matrices=False)
        vt = vt[:self.n_components]
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
        self.components_ = (vt * signs[:, None]).astype(np.float32)
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
        return np.asarray(targets, dtype=np.float32) @ self.components_.T

    def inverse_transform(self, components):
        return np.asarray(components, dtype=np.float32) @ self.components_
