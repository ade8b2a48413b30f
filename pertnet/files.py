"""Atomic writes: every file the project writes appears complete under its name, or not at all."""
import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from pertnet.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def save_npz(path, **arrays):
    """np.savez to `path`, atomically (np.savez appends .npz to names without it, so use a handle)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_npz(path, fix, schema=None):
    """Every array of an .npz; a damaged file, or one without the arrays `schema` (a pertnet.schemas
    Format) requires, is a UserError naming it, ending with `fix`."""
    try:
        with np.load(path) as arrays:
            loaded = {key: arrays[key] for key in arrays.files}
    except Exception as error:  # truncated, overwritten or not an npz at all
        raise UserError(f"{path}: damaged file ({type(error).__name__}: {error}); {fix}") from None
    missing = [name for name in (schema.required if schema else ()) if name not in loaded]
    if missing:
        raise UserError(f"{path}: not a {schema.file} file (no {', '.join(missing)}); {fix}")
    return loaded


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def nearest_existing(folder):
    """`folder`, or where it would be created: its nearest ancestor that exists."""
    folder = Path(folder)
    return next(p for p in (folder, *folder.parents) if p.exists())


def require_writable(folder, option):
    """Fail before any work if `folder` (given by `option`) cannot be created or written to."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise UserError(f"{folder}: {existing} is a file, not a folder; pass another {option} or move the file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: no permission to write in {existing}/; pass another {option} "
                        "or make it writable")

