"""Training on a Dask cluster (dask.distributed): `--workers N` starts a local cluster of N processes on this
machine, `--cluster ADDRESS` connects to a running scheduler (`dask scheduler`, or dask-jobqueue's on
SLURM: docs/cluster.md). The unit of work is an entry's whole rep stack (`Stage.fit_on`): the client
sends the small training arrays (label codes, SVD-space targets) with each task, so the workers need only
the package installed, no shared folder; the weights come back and are saved here, as `train` saves them.
"""
import contextlib
import logging
import socket

from pertnet.errors import UserError
from pertnet.quiet import import_tensorflow_quietly


def require_reachable(address, seconds=5.0):
    """Fail before any work, in one line, where --cluster names no listening scheduler (tcp://host:port)."""
    if address is None:
        return
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not address.startswith("tcp://") or not host or not port.isdigit():
        raise UserError(f"--cluster {address}: not a scheduler address; give it as tcp://host:port (e.g. "
                        "tcp://127.0.0.1:8786, what `dask scheduler` prints)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as error:
        raise UserError(f"--cluster {address}: cannot reach the scheduler ({error.strerror or error}); check the "
                        "address and that `dask scheduler` runs there") from None


@contextlib.contextmanager
def executor(workers=None, address=None, log=print):
    """A concurrent.futures.Executor on the cluster the options ask for, or None (train here, in this process).
    A task whose worker is lost is rerun on another (dask's own retries); leaving the block closes what
    it started."""
    if workers is None and address is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--workers / --cluster need dask.distributed: pip install -r requirements.txt") from None
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its own notes would bury ours
    with contextlib.ExitStack() as stack:
        if address is None:
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
            where = f"a local cluster of {workers} worker processes"
        else:
            try:
                client = stack.enter_context(Client(address, timeout="10s"))
            except (OSError, TimeoutError, ValueError) as error:
                raise UserError(f"--cluster {address}: cannot reach the scheduler ({type(error).__name__}: {error}); "
                                "check the address (e.g. tcp://host:8786) and that `dask scheduler` runs") from None
            where = f"the cluster at {address} ({len(client.scheduler_info()['workers'])} workers now)"
        client.run(import_tensorflow_quietly)  # each worker loads TensorFlow now, without its start-up notes
        log(f"training on {where}")
        yield client.get_executor(pure=False)
