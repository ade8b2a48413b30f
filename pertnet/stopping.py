"""Stop requests: a stop signal is recorded where it arrives and acted on where the work can stop.

A Python signal handler runs wherever the interpreter happens to be, a garbage collector's
finalizer included (TensorFlow frees its traced functions there at any moment), and an exception
raised inside a finalizer is printed as "Exception ignored" and dropped. So the handler raises
nothing the first time: it records the request, and the work calls `check` at its safe points
(the end of an epoch, between entries, between the steps of a chain, between tuning trials);
`cli.run` checks once more before it exits. A second signal while the run winds down raises at
once, so a user can still cut a slow clean-up short.
"""
import contextlib
import signal

from pertnet.errors import Interrupted

# Ctrl-C; docker stop, Kubernetes, Slurm and a plain kill; a terminal closing under the run
# (unless the run was started with `nohup`, which asks for SIGHUP to be ignored).
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_requested = None  # the number of the first stop signal received, until the command ends


def _record(signum, frame):
    global _requested
    if _requested is not None:
        raise Interrupted(signum)  # the second signal: stop now, wherever the run is
    _requested = signum


def requested():
    """The first stop signal's number, or None."""
    return _requested


def check():
    """Raise Interrupted if a stop was requested: called where the work can stop without loss."""
    if _requested is not None:
        raise Interrupted(_requested)


@contextlib.contextmanager
def handled():
    """Record stop signals for the block. SIGINT and SIGTERM whatever the parent left (a job started
    with `&` inherits SIGINT as ignored, and SIGTERM would end the run without a word); SIGHUP
    unless it is ignored, as `nohup` asks."""
    global _requested
    _requested = None
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        if not (signum == signal.SIGHUP and previous[signum] == signal.SIG_IGN):
            signal.signal(signum, _record)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


@contextlib.contextmanager
def saying_what_was_kept(kept):
    """Turn a stop (Interrupted, or a KeyboardInterrupt raised by other code) inside the block into
    Interrupted with the signal's number and `kept()`: what the run keeps, for cli.run to print."""
    try:
        yield
    except KeyboardInterrupt as stop:
        raise Interrupted(getattr(stop, "signum", signal.SIGINT), kept()) from None
