"""The 3rd-place method of Open Problems – Single-Cell Perturbations, as a small library.

    import pertnet
    model = pertnet.fit(de_train, stage="stage_1")   # a DataFrame or an AnnData
    prediction = model.predict(id_map)               # a DataFrame, one row per pair
    model.save("models"); pertnet.load("models", stage="stage_1")

`pertnet.PertNet` is the estimator underneath (pertnet/estimator.py; docs/python.md). The entry
modules at the repository root (prepare_data, train, predict, repro, ...) are command lines over
`pertnet.pipeline`, which trains through the same estimator.
"""
__version__ = "1.0.0"
__all__ = ["PertNet", "fit", "load", "cross_validate", "UserError", "Interrupted", "__version__"]


def __getattr__(name):
    """The API, imported on first use: the commands import pertnet without pandas' start-up time."""
    if name in ("PertNet", "fit", "load"):
        from pertnet import estimator

        return getattr(estimator, name)
    if name == "cross_validate":
        from pertnet import evaluation

        return evaluation.cross_validate_model
    raise AttributeError(f"module 'pertnet' has no attribute {name!r}")


class UserError(Exception):
    """A problem with what the user supplied: reported as one line, exit code 2, no traceback."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT from Ctrl-C, SIGTERM, SIGHUP) during a command; `kept` says what was saved.

    Raised at the work's safe points once a signal was recorded (pertnet/stopping.py); training
    adds what it kept, and cli.run prints it and exits with 128 + the signal's number (130, 143,
    129), as a shell reports a signal's end."""

    def __init__(self, signum, kept=""):
        super().__init__(kept)
        self.signum, self.kept = signum, kept
