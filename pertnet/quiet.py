"""TensorFlow imported with its C++ start-up notes muted: they would bury the commands' one-line errors, and
each Dask worker would print them again (pertnet/cluster.py)."""
import os


def import_tensorflow_quietly():
    """Import TensorFlow with stderr muted: its C++ start-up notes would bury our one-line errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
