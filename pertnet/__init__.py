"""The 3rd-place method of Open Problems – Single-Cell Perturbations, as a small library.

    import pertnet
    model = pertnet.fit(de_train, stage="stage_1")   # a DataFrame or an AnnData
    prediction = model.predict(id_map)               # a DataFrame, one row per pair
    model.save("models"); pertnet.load("models", stage="stage_1")

`pertnet.PertNet` is the estimator underneath (pertnet/estimator.py; docs/python.md). The entry
modules at the repository root (prepare_data, train, predict, repro, ...) are command lines over
`pertnet.pipeline`, which trains through the same estimator.
"""
import importlib
import importlib.util

from pertnet.errors import Interrupted, UserError
from pertnet.version import VERSION as __version__

__all__ = ["PertNet", "fit", "load", "cross_validate", "UserError", "Interrupted", "__version__"]


def __getattr__(name):
    """The API and the package's modules, imported on first use: the commands import pertnet without pandas'
    start-up time, and `pertnet.entries` or `pertnet.defaults` work after a bare `import pertnet`."""
    if name in ("PertNet", "fit", "load"):
        from pertnet import estimator

        return getattr(estimator, name)
    if name == "cross_validate":
        from pertnet import crossval

        return crossval.cross_validate_model
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pertnet' has no attribute {name!r}")


def __dir__():
    """The API (tab completion in a notebook shows it)."""
    return sorted(__all__)
