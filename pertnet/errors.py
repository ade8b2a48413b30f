"""The two ways a command ends early, at the bottom of the package so that every layer can raise them.

`pertnet.cli.run` turns a UserError into one line on stderr and exit code 2, and an Interrupted into
one line saying what was kept and exit code 128 + the signal's number.
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
