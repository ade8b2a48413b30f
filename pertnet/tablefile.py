"""A float32 table of rows x genes kept on disk as a .npy file, read and written a block of genes at a time
(float64 where a score is computed from it: pertnet/alignment.py).

What lets a screen of tens of thousands of rows prepare and train in a bounded amount of memory:
prepare_data writes the training targets here (`TableWriter`), train reads them back a block of genes
at a time (`TableFile`). The file is in gene order (NumPy's Fortran order: each gene's rows together),
the order a parquet file is read in, so both the writes and the reads are long and contiguous; np.load
reads it as an array. Reads are plain file reads, not a memory map: a map of a 4 GB file counts every
page it touched as the process's own memory until it is unmapped. Anything that reads a table by
`gene_blocks` takes an in-memory array as well.
"""
import os

import numpy as np

from pertnet.files import atomic_path
from pertnet.pace import Pace

BLOCK_BYTES = 16 * 2 ** 20  # a block of genes x all rows as float32, read or written: 73 genes of 57,000 rows
WINDOW_BYTES = 32 * 2 ** 20  # a window of consecutive rows x all genes, read to pick rows from: 460 rows of 18,211 genes
GENES_AT_ONCE = 1000  # and at most this many genes: a parquet read's cost per column outweighs its values below it


def genes_at_once(rows, block_bytes=None):
    """How many genes' rows make a block of about `block_bytes` (default BLOCK_BYTES, and at most
    GENES_AT_ONCE genes: a product with the basis passes its own)."""
    fitting = max(1, (block_bytes or BLOCK_BYTES) // (4 * max(1, rows)))
    return fitting if block_bytes else min(fitting, GENES_AT_ONCE)


def gene_blocks(table, block_bytes=None):
    """(genes, values) of consecutive blocks of a table's genes (a `TableFile` or an array) of about
    `block_bytes` each (default BLOCK_BYTES): genes a slice, values (rows, genes in the block)."""
    rows, genes = np.shape(table)
    width = genes_at_once(rows, block_bytes)
    for start in range(0, genes, width):
        columns = slice(start, min(start + width, genes))
        yield columns, np.asarray(table[:, columns])


def row_windows(table, window_bytes=WINDOW_BYTES):
    """(start, values) of consecutive windows of a table's rows (all genes) of about `window_bytes` each."""
    rows, genes = np.shape(table)
    height = max(1, window_bytes // (4 * max(1, genes)))
    for start in range(0, rows, height):
        yield start, _window(table, start, min(start + height, rows))


def read_rows(table, rows, window_bytes=WINDOW_BYTES):
    """The table's rows `rows` (increasing indices), all genes: (len(rows), genes), read from the windows of
    consecutive rows that hold them, one window at a time."""
    rows = np.asarray(rows, np.int64)
    out = np.empty((len(rows), np.shape(table)[1]), table.dtype if isinstance(table, TableFile) else np.float32)
    height = max(1, window_bytes // (4 * max(1, np.shape(table)[1])))
    done = 0
    while done < len(rows):
        start = int(rows[done])
        inside = int(np.searchsorted(rows, start + height))  # the wanted rows in this window
        window = _window(table, start, int(rows[inside - 1]) + 1)
        out[done:inside] = window[rows[done:inside] - start]
        done = inside
    return out


def _window(table, start, stop):
    return table.rows(start, stop) if isinstance(table, TableFile) else np.asarray(table[start:stop], np.float32)


def update_digest(digest, table):
    """Add a table's values to a hashlib digest, gene after gene (the bytes of its gene-order file), a block
    of genes at a time."""
    for _, values in gene_blocks(table):
        digest.update(np.ascontiguousarray(values.T, np.float32).data)
    return digest


def to_array(table, dtype=np.float32):
    """The whole table in memory as `dtype` (gene order), filled block by block; an array as it is."""
    if isinstance(table, np.ndarray):
        return np.asarray(table, dtype)
    return from_blocks(table.shape, gene_blocks(table), dtype)


def from_blocks(shape, blocks, dtype=np.float32):
    """A table in memory (gene order) filled from (genes: a slice, values) blocks of genes."""
    whole = np.empty(shape, dtype, order="F")
    for columns, values in blocks:
        whole[:, columns] = values
    return whole


class TableFile:
    """A float32 (or float64) (rows, genes) .npy file in gene order, read by blocks of genes: `table[:, a:b]`
    is an array."""

    def __init__(self, path):
        self.path = os.fspath(path)
        with open(self.path, "rb") as handle:
            read_header = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(handle) == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            self.shape, fortran, self.dtype = read_header(handle)
            self.offset = handle.tell()
        if not (fortran or self.shape[1] <= 1) or self.dtype not in (np.float32, np.float64) or len(self.shape) != 2:
            raise ValueError(f"{self.path}: not a float (rows, genes) table in gene order")

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        """np.asarray(table): the whole table in memory (for a look at a small one)."""
        return to_array(self, dtype or self.dtype)

    def __getitem__(self, index):
        rows, columns = index
        if rows != slice(None) or not isinstance(columns, slice) or columns.step not in (None, 1):
            raise IndexError("a TableFile is read by contiguous blocks of genes: table[:, a:b]")
        start, stop, _ = columns.indices(self.shape[1])
        values = np.fromfile(self.path, self.dtype, count=max(stop - start, 0) * self.shape[0],
                             offset=self.offset + start * self.shape[0] * self.dtype.itemsize)
        return values.reshape(max(stop - start, 0), self.shape[0]).T

    def rows(self, start, stop):
        """Rows start..stop, every gene: each gene's run of them read into place (gene order)."""
        out = np.empty((stop - start, self.shape[1]), self.dtype, order="F")
        with open(self.path, "rb") as handle:
            for gene in range(self.shape[1]):
                os.preadv(handle.fileno(), [out[:, gene]],
                          self.offset + (gene * self.shape[0] + start) * self.dtype.itemsize)
        return out


class Rows:
    """Some rows of a table (indices, in their order), then `extra` rows (an array, or None): a table of its own
    read by blocks of genes, as `gene_blocks` reads, without a copy of the rows. What a CV fold trains on."""

    def __init__(self, table, rows, extra=None):
        self.table, self.rows = table, np.asarray(rows, np.int64)
        self.extra = np.zeros((0, np.shape(table)[1]), np.float32) if extra is None else extra
        self.shape = (len(self.rows) + len(self.extra), np.shape(table)[1])

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        return to_array(self, dtype or np.float32)

    def __getitem__(self, index):
        _, columns = index
        block = np.concatenate([np.asarray(self.table[:, columns])[self.rows], self.extra[:, columns]])
        return np.asfortranarray(block, np.float32)  # gene order, as a TableFile's blocks and an encoded table are


class InMemory:
    """The writer's protocol for a table in memory (`array`, in gene order)."""

    def __init__(self, shape):
        self.array = np.empty(shape, np.float32, order="F")

    def write(self, rows, genes, values):
        self.array[rows, genes] = values


class TableWriter:
    """Writes a float32 (or `dtype`) (rows, genes) table into a gene-order .npy file: `write(rows, genes,
    values)` puts a block of values at a range of rows and of genes, in any order. A line at most every
    `every` seconds says how far it is. The file appears complete when the block ends, or not at all."""

    def __init__(self, path, shape, log=lambda line: None, every=30.0, dtype=np.float32):
        self.path, self.shape, self.pace = path, tuple(shape), Pace(log, every)
        self.dtype = np.dtype(dtype)
        self.written = 0

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        self.handle = open(self._atomic.__enter__(), "wb")
        np.lib.format.write_array_header_2_0(self.handle, {"descr": self.dtype.str, "fortran_order": True,
                                                           "shape": self.shape})
        self.offset = self.handle.tell()
        self.handle.truncate(self.offset + self.shape[0] * self.shape[1] * self.dtype.itemsize)
        return self

    def write(self, rows, genes, values):
        """`values` (the rows of slice `rows`, the genes of slice `genes`) into their place."""
        values = np.asfortranarray(values, self.dtype)
        total = self.shape[0]
        for number, gene in enumerate(range(*genes.indices(self.shape[1]))):
            os.pwrite(self.handle.fileno(), values[:, number].data,
                      self.offset + (gene * total + rows.indices(total)[0]) * self.dtype.itemsize)
        self.written += values.size
        size = self.shape[0] * self.shape[1]
        self.pace.tick(self.written, size, f"  {self.path}: {self.written / size:.0%} written")

    def __exit__(self, *error):
        self.handle.close()
        return self._atomic.__exit__(*error)
