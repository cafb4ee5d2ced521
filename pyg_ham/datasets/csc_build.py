r"""Building a graph's CSC layout out of core, into memory-mapped files.

The edges arrive as chunks :obj:`(src, dst)` from a re-iterable source (an
``.npz`` member streamed twice, :mod:`pyg_ham.datasets.npz_stream`); at no
point is the whole edge list in memory. Three passes:

1. **degree count**: :math:`\deg(v) = |\{(u, v)\}|` per target, one
   :func:`numpy.bincount` per chunk, and :math:`\mathrm{colptr} =
   [0, \mathrm{cumsum}(\deg)]`;
2. **scatter**: every chunk's sources are written at their target's cursor
   into the memory-mapped indices file (one vectorised write per chunk);
3. **normalise**: column ranges of at most :obj:`chunk` entries are sorted by
   :math:`(v, u)` and, for an undirected graph, de-duplicated (PyG's
   :func:`~torch_geometric.utils.to_undirected` coalesces the same way), then
   compacted in place; the file is truncated to the final size.

Memory: at most three :obj:`int64` arrays of :obj:`num_nodes + 1` entries
(:obj:`colptr` and the degrees, cursors or old offsets of the pass) and one
chunk of edges at a time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Tuple

import numpy as np

from pyg_ham.errors import DatasetError

__all__ = ["EdgeChunks", "build_csc", "index_dtype"]

#: A function returning a fresh iterator over :obj:`(src, dst)` chunks (called once per pass).
EdgeChunks = Callable[[], Iterable[Sequence[np.ndarray]]]

_INT32_MAX = 2**31 - 1


def index_dtype(num_nodes: int) -> np.dtype:
    r""":obj:`int32` node indices when :obj:`num_nodes` allows, else :obj:`int64`."""
    return np.dtype(np.int32) if num_nodes < _INT32_MAX else np.dtype(np.int64)


def _directed(chunks: EdgeChunks, num_nodes: int, undirected: bool) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    # (source, target) chunks, with the reverse of every edge for an undirected graph; checked.
    for part in chunks():
        src, dst = np.asarray(part[0]), np.asarray(part[1])
        if src.shape != dst.shape or src.ndim != 1:
            raise DatasetError(f"edge chunks must be two 1-D arrays of one length, got {src.shape} and {dst.shape}")
        if src.size == 0:
            continue
        if src.dtype.kind not in "iu" or dst.dtype.kind not in "iu":
            raise DatasetError(f"edge indices must be integers, got {src.dtype} and {dst.dtype}")
        lo, hi = min(int(src.min()), int(dst.min())), max(int(src.max()), int(dst.max()))
        if lo < 0 or hi >= num_nodes:
            bad = lo if lo < 0 else hi
            raise DatasetError(f"the edges hold node index {bad} but the graph has {num_nodes} nodes "
                               f"(every index must lie in [0, {num_nodes}))")
        src, dst = src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False)
        yield (np.concatenate([src, dst]), np.concatenate([dst, src])) if undirected else (src, dst)


def _degree_pass(chunks: EdgeChunks, num_nodes: int, undirected: bool) -> np.ndarray:
    deg = np.zeros(num_nodes, dtype=np.int64)
    for _, dst in _directed(chunks, num_nodes, undirected):
        deg += np.bincount(dst, minlength=num_nodes)
    return deg


def _scatter_pass(chunks: EdgeChunks, num_nodes: int, undirected: bool, colptr: np.ndarray,
                  rows: np.ndarray) -> None:
    cursor = colptr[:-1].copy()
    for src, dst in _directed(chunks, num_nodes, undirected):
        order = np.argsort(dst, kind="stable")
        dst_s, src_s = dst[order], src[order]
        starts = np.flatnonzero(np.concatenate([[True], dst_s[1:] != dst_s[:-1]]))
        counts = np.diff(np.append(starts, dst_s.size))
        within = np.arange(dst_s.size, dtype=np.int64) - np.repeat(starts, counts)
        rows[cursor[dst_s] + within] = src_s
        cursor[dst_s[starts]] += counts


def _normalise_pass(rows: np.ndarray, colptr: np.ndarray, num_nodes: int, dedup: bool, chunk: int) -> int:
    # Sorts every column by source (dedups), compacts in place; rewrites colptr; returns the edge count.
    write, col = 0, 0
    n = np.int64(max(num_nodes, 1))
    old = colptr.copy()
    while col < num_nodes:
        end = int(np.searchsorted(old, old[col] + chunk, side="right")) - 1
        end = min(max(end, col + 1), num_nodes)
        seg = np.array(rows[old[col]:old[end]], dtype=np.int64)
        cols = np.repeat(np.arange(col, end, dtype=np.int64), np.diff(old[col:end + 1]))
        key = cols * n + seg
        key = np.unique(key) if dedup else np.sort(key)
        c = key // n
        rows[write:write + key.size] = key - c * n
        counts = np.bincount(c - col, minlength=end - col)
        colptr[col + 1:end + 1] = write + np.cumsum(counts)
        write += int(key.size)
        col = end
    return write


def build_csc(folder: Path, num_nodes: int, chunks: EdgeChunks, *, undirected: bool = False,
              chunk: int = 1 << 22) -> Tuple[int, np.dtype]:
    r"""Writes the CSC layout of the streamed edges into :obj:`folder`:
    ``colptr.bin`` (:obj:`int64`, :obj:`[num_nodes + 1]`) and ``row.bin``
    (:func:`index_dtype`, :obj:`[num_edges]`), every column sorted by source.

    Args:
        folder (Path): Where the two files go.
        num_nodes (int): The number of nodes.
        chunks (callable): Returns an iterator over :obj:`(src, dst)` chunks;
            called twice (degree and scatter pass).
        undirected (bool, optional): Add the reverse of every edge and drop
            duplicate edges, as :func:`~torch_geometric.utils.to_undirected`.
            (default: :obj:`False`)
        chunk (int, optional): Entries sorted at once in the last pass.
            (default: :obj:`2**22`)

    Returns:
        The number of edges (after de-duplication) and the index dtype.
    """
    folder = Path(folder)
    dtype = index_dtype(num_nodes)
    deg = _degree_pass(chunks, num_nodes, undirected)
    colptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(deg, out=colptr[1:])
    del deg
    total = int(colptr[-1])
    row_path = folder / "row.bin"
    rows = np.memmap(row_path, dtype=dtype, mode="w+", shape=(max(total, 1),))
    _scatter_pass(chunks, num_nodes, undirected, colptr, rows)
    num_edges = _normalise_pass(rows, colptr, num_nodes, undirected, max(1, int(chunk)))
    rows.flush()
    del rows
    os.truncate(row_path, num_edges * dtype.itemsize)
    with open(folder / "colptr.bin", "wb") as f:
        colptr.tofile(f)
    return num_edges, dtype
