"""One run per folder: an OS file lock on what a command writes, which the kernel drops when the
process ends, so a run killed with `kill -9` leaves nothing to clean up.

`train` (models/<stage>/) and `prepare_data` (data/prepared/<stage>.npz) hold an exclusive lock
while they write; `predict` holds a shared one while it reads a stage's bundles, so it never reads
a stage being trained, and several predictions may run at once. A command that cannot take its lock
refuses at once (UserError), naming the folder and the process holding it. The locks are
re-entrant within a process: `repro` holds its stage's locks for the whole chain, and the steps it
runs take them again.
"""
import contextlib
import fcntl
import os
from pathlib import Path

from pertnet.errors import UserError

_held = {}  # lock file -> "exclusive" / "shared", the locks this process holds


@contextlib.contextmanager
def hold(lock_file, refusal, exclusive=True):
    """Hold the lock in `lock_file` for the block, or raise UserError(refusal), whose "{holder}" says
    which process holds it. A shared lock on a folder that does not exist (nothing to read) is skipped.

    The lock file, and the folders made for it, are removed again when the block ends (folders only
    where the run left them empty), so a refused or failed run leaves nothing on disk."""
    lock_file = Path(lock_file).absolute()
    if _held.get(lock_file) == "exclusive" or (not exclusive and lock_file in _held):
        yield  # this process already holds it
        return
    if not exclusive and not lock_file.parent.is_dir():
        yield
        return
    made = [folder for folder in lock_file.parents if not folder.exists()]
    try:
        handle = _locked(lock_file, exclusive, refusal)
    except PermissionError:  # a read-only folder (require_writable refused it to the writers): nothing to guard
        yield
        return
    except BaseException:
        _remove_empty(made)
        raise
    _held[lock_file] = "exclusive" if exclusive else "shared"
    try:
        yield
    finally:
        del _held[lock_file]
        _release(handle, lock_file)
        _remove_empty(made)


def _locked(lock_file, exclusive, refusal):
    """The open lock file, locked. Another run may remove the file between our open and our lock
    (it ended), so the lock counts only if the path still names the file we locked."""
    while True:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(lock_file, "a")
        except FileNotFoundError:  # its folder was removed in between by a run that ended
            continue
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError(refusal.format(holder=_holder(lock_file))) from None
        if _same_file(handle, lock_file):
            return handle
        handle.close()


def _release(handle, lock_file):
    """Remove the lock file while still holding it exclusively (a shared holder only where no other
    process holds it), then close it, which drops the lock."""
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # other predictions still read this stage: the last one removes it
            return
        if _same_file(handle, lock_file):
            lock_file.unlink()


def _same_file(handle, path):
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _remove_empty(folders):
    """Remove the folders this run made, innermost first, where it left them empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            return


def _holder(lock_file):
    """'process <pid> (<its command line>)' holding a lock on `lock_file`, from Linux's /proc/locks."""
    inode = os.stat(lock_file).st_ino
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].split(":")[-1] == str(inode):
            pid = fields[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode()
            except OSError:
                return f"process {pid}"
            return f"process {pid} ({_shortened(command)})"
    return "another process"


def _shortened(command):
    """A command line as a user typed it: `python -m train ...` rather than the interpreter's full path."""
    program, _, rest = command.partition(" ")
    return f"{Path(program).name} {rest}".strip()
