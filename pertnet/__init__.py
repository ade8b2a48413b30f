"""The 3rd-place method of Open Problems – Single-Cell Perturbations, as a small library.

The entry modules at the repository root (prepare_data, train, predict, repro) are thin
command lines over `pertnet.pipeline`.
"""


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
