"""The 3rd-place method of Open Problems – Single-Cell Perturbations, as a small library.

The entry modules at the repository root (prepare_data, train, predict, repro) are thin
command lines over `pertnet.pipeline`.
"""


class UserError(Exception):
    """A problem with what the user supplied: reported as one line, exit code 2, no traceback."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, carrying what was saved: cli.run prints it and exits with 130."""
