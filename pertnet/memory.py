"""How much memory training an entry takes, estimated from its widths before anything trains.

Training one entry holds, per model trained side by side (its reps, times the folds of a
cross-validation): every weight four times over (the variable, Adam's two moments, the gradient)
plus the NumPy copies made at the start and the end; the epoch's dropout masks (rows x the width
of each dropout layer, drawn at once); the batch's activations for the backward pass; and its
targets (rows x n_dim). The estimate counts those and is checked against what is free: the
machine's memory (or the container's limit) less what the process already holds. An entry that
would not fit is refused before any training; cross-validation trains fewer folds side by side
where all of them would go over the CLI's budget (defaults.MEMORY_BUDGET_GB).
"""
import ctypes
import math
import os
from pathlib import Path

from pertnet import architectures, defaults
from pertnet.errors import UserError

FLOAT = 4               # bytes of a float32
WEIGHT_COPIES = 6       # variable, Adam m and v, gradient, the initial and the final NumPy copies
MASK_COPIES = 3         # a chunk's masks, their 16-bit draws and the keep test
MASK_CHUNK_BYTES = 32 * 2 ** 20  # an epoch's dropout masks are drawn by chunks of batches this size at most
ACTIVATION_COPIES = 4   # each layer's output kept for the backward pass, its gradient, and temporaries
GB = 2 ** 30


def model_bytes(entry, rows, vocab_size):
    """Estimated bytes one model (one rep of one fold) of `entry` adds while it trains on `rows` rows."""
    weights = sum(math.prod(shape) for shape, _ in architectures.weight_specs(entry, vocab_size))
    widths = architectures.layer_widths(entry)
    network = architectures.layers(entry)
    dropped = sum(w for layer, w in zip(network, widths) if isinstance(layer, architectures.Dropout) and layer.rate > 0)
    batch = min(entry.bs, rows)
    masked_rows = min(rows, max(batch, MASK_CHUNK_BYTES // (FLOAT * entry.reps * max(1, dropped))))  # a chunk's
    return FLOAT * (WEIGHT_COPIES * weights + MASK_COPIES * masked_rows * dropped
                    + ACTIVATION_COPIES * batch * sum(w for layer, w in zip(network, widths) if not isinstance(layer, architectures.Dropout))
                    + 2 * rows * entry.n_dim)


def _status_bytes(field):
    """A memory figure of this process from Linux's /proc/self/status (VmRSS: held now, VmHWM: the peak
    so far), in bytes; None where it cannot be read. Not ru_maxrss: for a process started by a large
    one, Linux reports the larger parent's peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith(f"{field}:")), None)


def held_bytes():
    """What this process holds now, 0 where it cannot be read."""
    return _status_bytes("VmRSS") or 0


def peak_bytes():
    """This process's peak resident memory so far, None where it cannot be read."""
    return _status_bytes("VmHWM")


def peak_note():
    """', peak memory X GB' of this process so far, or '' where it cannot be read."""
    peak = peak_bytes()
    return "" if peak is None else f", peak memory {peak / GB:.2f} GB"


def give_back():
    """Return freed memory to the system, so that what this process holds (what the budget and `side_by_side`
    count) is what it uses: pyarrow's pool keeps what it freed (about 140 MB after a parquet file is read), and
    glibc's heap keeps freed small objects (a parquet footer of 18,211 columns x 28 row groups decodes into
    about 500 MB of them) until malloc_trim. A no-op where either is missing."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _libc():
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def machine_bytes():
    """The memory this process may use: the machine's, or its container's (cgroup) limit where lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def free_bytes():
    """What this process may still take: the machine's (or container's) memory less what it holds."""
    return machine_bytes() - held_bytes()


def unfit(entries, rows, vocab_size, models_per_rep=1, extra=0):
    """A one-line reason why an entry would not fit in memory (the first that would not), or None; extra:
    bytes held beside it (the training targets' components)."""
    free = free_bytes()
    for entry in entries:
        need = model_bytes(entry, rows, vocab_size) * entry.reps * models_per_rep + extra
        if need > free:
            return (f"entry {entry.id} would need about {need / GB:.1f} GB to train ({entry.reps} reps x "
                    f"{models_per_rep} side by side, {rows} rows, batch {entry.bs}, widths "
                    f"{architectures.dense_widths(entry)}), more than the {free / GB:.1f} GB this machine has free")
    return None


def require_fit(entries, rows, genes, vocab_size, source):
    """Refuse, before any work, a stage whose SVD basis, or one of whose entries, would not fit in memory."""
    k = max(e.n_dim for e in entries)
    need, free = basis_bytes(rows, genes, k), free_bytes()
    if need > free:
        raise UserError(f"{source}: the SVD basis of {rows} rows x {genes} genes would need about {need / GB:.1f} GB, "
                        f"more than the {free / GB:.1f} GB this machine has free; use a machine with more memory")
    reason = unfit(entries, rows, vocab_size, extra=4 * rows * k)
    if reason is not None:
        raise UserError(f"{source}: {reason}; make its Dense layers narrower or give it fewer reps")


ROW_LABEL_BYTES = 400  # a row's labels as pandas holds them (its strings and their index), generously


def prepare_bytes(rows, genes):
    """What prepare_data holds: the rows' labels and a block of genes in its copies (as read, as float32,
    shuffled). The pseudolabels pass through a table on disk a block at a time, as the targets do."""
    from pertnet import tablefile

    return ROW_LABEL_BYTES * rows + 4 * tablefile.BLOCK_BYTES


def basis_bytes(rows, genes, k):
    """What the SVD basis of rows x genes targets holds while it is computed: the exact one the targets in
    float64 and a square Gram matrix and its eigenvectors; the randomized one its sketches and a block."""
    from pertnet import targets

    if min(rows, genes) <= targets.EXACT_UP_TO:
        return 8 * rows * genes + 3 * 8 * min(rows, genes) ** 2
    return 4 * 8 * (rows + genes) * (k + targets.OVERSAMPLING) + 3 * targets.PRODUCT_BLOCK_BYTES


def require_weights_search(entries, rows, genes, source):
    """Refuse, before any training, a search of the weights of `entries` whose out-of-fold predictions (each
    entry's prediction and variance over `rows` rows x `genes` genes, float32, and their truth) would not fit."""
    need, free = (8 * len(entries) + 8) * rows * genes, free_bytes()
    if need > free:
        raise UserError(f"{source}: searching the weights of {len(entries)} entries combines their out-of-fold "
                        f"predictions ({rows} rows x {genes} genes each), about {need / GB:.1f} GB, more than the "
                        f"{free / GB:.1f} GB this machine has free; search fewer entries (--stages) or use a machine "
                        "with more memory")


def require_prepare(rows, genes, source):
    """Refuse, before anything is written, a preparation that would not fit in memory."""
    need, free = prepare_bytes(rows, genes), free_bytes()
    if need > free:
        raise UserError(f"{source}: preparing {rows} rows x {genes} genes would need about {need / GB:.1f} GB, more "
                        f"than the {free / GB:.1f} GB this machine has free; use a machine with more memory")


KEPT_AFTER_TRAINING = 0.2  # of the budget: what TensorFlow keeps of a side-by-side training (0.35 GB at 56,000 rows)


def side_by_side(entry, rows, vocab_size, folds, share=1.0):
    """How many of `folds` folds to train side by side so that the process stays within the CLI's
    budget (defaults.MEMORY_BUDGET_GB): all of them where they fit in `share` of the room left, at
    least one. The room is counted from what the process holds now: TensorFlow keeps much of what a
    training of other shapes used, and does not reuse it for trainings of these; and a part of the
    budget (KEPT_AFTER_TRAINING) stays free for what it keeps of this one, which the CV's scoring of
    the held-out rows then works beside."""
    room = ((1 - KEPT_AFTER_TRAINING) * defaults.MEMORY_BUDGET_GB * GB - held_bytes()) * share
    return max(1, min(folds, int(room // (model_bytes(entry, rows, vocab_size) * entry.reps))))
