r"""The on-disk layout of a node dataset: a memory-mapped CSC and feature matrix,
built once, served through PyG's :class:`~torch_geometric.data.FeatureStore` /
:class:`~torch_geometric.data.GraphStore`.

A layout is a folder::

    manifest.json     format name and version, the source's fingerprint, every array's file/dtype/shape
    colptr.bin        int64 [N + 1]   CSC offsets (column v: the in-neighbours of v)
    row.bin           int32 [E]       (int64 from 2**31 nodes on) in-neighbours, sorted per column
    x.bin             float [N, F]    node features
    y.bin             int64 [N]       labels (-1: unlabelled)
    split_*.bin       int64           node indices of the train / valid / test split

written by a :class:`LayoutWriter` from streamed chunks (no array whole in memory:
:mod:`pyg_ham.datasets.csc_build`, :mod:`pyg_ham.datasets.npz_stream`), and
opened by :class:`OnDiskLayout`, whose :meth:`~OnDiskLayout.stores` is the
:obj:`(FeatureStore, GraphStore)` pair every pyg-ham (and PyG) loader takes.

**Built once, never read half-built.** :func:`ensure_layout` builds under an
exclusive :func:`fcntl.flock` on ``.<name>.lock`` beside the folder, into a
temporary folder ``.<name>.tmp-<pid>`` that is renamed into place (atomic on
one file system) only once every file and the manifest are written and
synced. A second process (a rank, a ``--jobs`` worker) blocks on the lock and
then finds the finished layout; later runs open it without locking. A build
killed halfway leaves only its temporary folder (the lock dies with the
process), removed by the next build. A manifest of another format version or
of other source files makes the next :func:`ensure_layout` rebuild the layout
(and say so); deleting the folder does the same. Locks need a local file
system (or one whose :func:`fcntl.flock` works across the machines using it).
"""
from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import EdgeAttr, FeatureStore, GraphStore, TensorAttr
from torch_geometric.data.graph_store import EdgeLayout

from pyg_ham.datasets.csc_build import EdgeChunks, build_csc
from pyg_ham.errors import DatasetError

__all__ = ["FORMAT", "FORMAT_VERSION", "LayoutWriter", "OnDiskLayout", "OnDiskFeatureStore",
           "OnDiskGraphStore", "ensure_layout", "fingerprint", "layout_problem"]

#: The layout's format name and version (a manifest of another version is rebuilt).
FORMAT = "pyg-ham-ondisk"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def fingerprint(paths: Iterable[Path]) -> Dict[str, List[int]]:
    r"""Size and modification time (ns) of every file: what a layout was built from."""
    out = {}
    for p in paths:
        st = Path(p).stat()
        out[Path(p).name] = [int(st.st_size), int(st.st_mtime_ns)]
    return out


def _read_manifest(folder: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(folder / MANIFEST) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def layout_problem(folder: Path, source: Dict[str, Any]) -> Optional[str]:
    r"""Why the layout in :obj:`folder` cannot be used for :obj:`source` (:obj:`None`: it can)."""
    if not folder.exists():
        return "it does not exist yet"
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("format") != FORMAT:
        return f"{folder / MANIFEST} is missing or unreadable"
    if manifest.get("version") != FORMAT_VERSION:
        return f"it is format version {manifest.get('version')}, this pyg-ham reads version {FORMAT_VERSION}"
    if manifest.get("source") != json.loads(json.dumps(source)):
        return "its source files or options changed since it was built"
    return None


@contextmanager
def _locked(folder: Path, timeout: Optional[float]) -> Iterator[None]:
    lock_path = folder.parent / f".{folder.name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if not told:
                print(f"pyg-ham: waiting for another process building {folder}", file=sys.stderr)
                told = True
            if timeout is not None and time.monotonic() - start > timeout:
                raise DatasetError(f"waited {timeout:g} s for the lock {lock_path} held by another process "
                                   f"building the on-disk layout; wait for it or stop it")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class LayoutWriter:
    r"""Writes the arrays of a layout into a (temporary) folder, chunk by chunk;
    :func:`ensure_layout` hands one to the build function.

    Args:
        folder (Path): The folder being built.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.arrays: Dict[str, Dict[str, Any]] = {}
        self.meta: Dict[str, Any] = {}

    def _add(self, name: str, dtype: np.dtype, shape: Tuple[int, ...]) -> Path:
        self.arrays[name] = {"file": f"{name}.bin", "dtype": np.dtype(dtype).str, "shape": list(shape)}
        return self.folder / f"{name}.bin"

    def csc(self, num_nodes: int, chunks: EdgeChunks, undirected: bool = False, chunk: int = 1 << 22) -> int:
        r"""The graph from :obj:`(src, dst)` chunks (:func:`~pyg_ham.datasets.csc_build.build_csc`);
        returns the number of edges."""
        num_edges, dtype = build_csc(self.folder, num_nodes, chunks, undirected=undirected, chunk=chunk)
        self._add("colptr", np.dtype(np.int64), (num_nodes + 1,))
        self._add("row", dtype, (num_edges,))
        self.meta.update(num_nodes=int(num_nodes), num_edges=int(num_edges), undirected=bool(undirected))
        return num_edges

    def rows(self, name: str, num_rows: int, row_shape: Tuple[int, ...], dtype: Any,
             chunks: Iterable[np.ndarray]) -> None:
        r"""An array of :obj:`num_rows` rows from chunks of consecutive rows
        (cast to :obj:`dtype`), written through the page cache."""
        dtype = np.dtype(dtype)
        path = self._add(name, dtype, (num_rows, *row_shape))
        done = 0
        with open(path, "wb") as f:
            for block in chunks:
                block = np.ascontiguousarray(block, dtype=dtype).reshape(-1, *row_shape)
                if done + block.shape[0] > num_rows:
                    raise DatasetError(f"{name}: more than the {num_rows} rows announced")
                f.write(block.tobytes())
                done += block.shape[0]
        if done != num_rows:
            raise DatasetError(f"{name}: {done} rows written, {num_rows} announced")

    def array(self, name: str, value: np.ndarray) -> None:
        r"""A small array written whole (split indices)."""
        value = np.ascontiguousarray(value)
        path = self._add(name, value.dtype, tuple(value.shape))
        with open(path, "wb") as f:
            value.tofile(f)


def ensure_layout(folder: Union[str, Path], source: Dict[str, Any], build: Callable[[LayoutWriter], None], *,
                  timeout: Optional[float] = None) -> Dict[str, Any]:
    r"""The manifest of the layout in :obj:`folder`, built by :obj:`build`
    first unless a finished one for :obj:`source` is there (see the module
    docstring for the locking and the atomic rename).

    Args:
        folder (str or Path): Where the layout lives.
        source (dict): What it is built from (file fingerprints, options): a
            layout built from anything else is rebuilt.
        build (callable): Fills a :class:`LayoutWriter` (its :obj:`arrays` and
            :obj:`meta` go into the manifest).
        timeout (float, optional): Seconds to wait for another process's build
            before a :class:`DatasetError`. (default: :obj:`None`: wait)
    """
    folder = Path(folder)
    if layout_problem(folder, source) is None:
        return _read_manifest(folder)  # type: ignore[return-value]
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {folder.parent} for the on-disk layout ({exc})") from None
    with _locked(folder, timeout):
        problem = layout_problem(folder, source)
        if problem is None:  # built by the process we waited for
            return _read_manifest(folder)  # type: ignore[return-value]
        if folder.exists():
            print(f"pyg-ham: rebuilding the on-disk layout {folder}: {problem}", file=sys.stderr)
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # a killed build's (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        tmp.mkdir()
        try:
            writer = LayoutWriter(tmp)
            build(writer)
            manifest = {"format": FORMAT, "version": FORMAT_VERSION, "source": source, "meta": writer.meta,
                        "arrays": writer.arrays}
            with open(tmp / MANIFEST, "w") as f:
                json.dump(manifest, f, indent=1)
            _fsync_tree(tmp)
            old = folder.parent / f".{folder.name}.tmp-{os.getpid()}-old"
            if folder.exists():
                os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return json.loads(json.dumps(manifest))


def _memmap(path: Path, dtype: np.dtype, shape: Tuple[int, ...], random: bool) -> Tensor:
    if int(np.prod(shape)) == 0:
        return torch.from_numpy(np.zeros(shape, dtype=dtype))
    # Read-only: a private (copy-on-write) mapping larger than RAM + swap is refused by Linux's
    # default overcommit heuristic (ENOMEM), a read-only one is not (and commits no memory).
    arr = np.memmap(path, dtype=dtype, mode="r", shape=shape)
    if random and hasattr(mmap, "MADV_RANDOM"):
        arr._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[attr-defined]  # rows gathered at random
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


class OnDiskLayout:
    r"""An on-disk layout opened for reading (every array memory-mapped
    read-only: gather from its tensors, never write into them).

    Args:
        folder (str or Path): The layout (see the module docstring).
    """

    def __init__(self, folder: Union[str, Path]):
        self.folder = Path(folder)
        manifest = _read_manifest(self.folder)
        if manifest is None or manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{self.folder} is not an on-disk layout of format version {FORMAT_VERSION}; "
                               f"delete it and load the dataset again to rebuild it")
        self.manifest = manifest
        self.meta: Dict[str, Any] = manifest["meta"]
        self._cache: Dict[str, Tensor] = {}

    @property
    def num_nodes(self) -> int:
        return int(self.meta["num_nodes"])

    def has(self, name: str) -> bool:
        return name in self.manifest["arrays"]

    def array(self, name: str) -> Tensor:
        r"""The array :obj:`name` as a memory-mapped CPU tensor."""
        if name not in self._cache:
            spec = self.manifest["arrays"].get(name)
            if spec is None:
                raise DatasetError(f"the on-disk layout {self.folder} has no array {name!r}")
            self._cache[name] = _memmap(self.folder / spec["file"], np.dtype(spec["dtype"]), tuple(spec["shape"]),
                                        random=name == "x")
        return self._cache[name]

    def stores(self) -> Tuple["OnDiskFeatureStore", "OnDiskGraphStore"]:
        r"""The :obj:`(FeatureStore, GraphStore)` pair: node attributes :obj:`x`
        (and :obj:`y`), the graph in CSC."""
        names = [n for n in ("x", "y") if self.has(n)]
        features = OnDiskFeatureStore({n: self.array(n) for n in names}, folder=self.folder)
        graph = OnDiskGraphStore(self.array("colptr"), self.array("row"), self.num_nodes, folder=self.folder)
        return features, graph


def _reopen_features(folder: str) -> "OnDiskFeatureStore":
    return OnDiskLayout(folder).stores()[0]


def _reopen_graph(folder: str) -> "OnDiskGraphStore":
    return OnDiskLayout(folder).stores()[1]


class OnDiskFeatureStore(FeatureStore):
    r"""A homogeneous :class:`~torch_geometric.data.FeatureStore` over named
    node tensors (memory-mapped ones from an :class:`OnDiskLayout`); a
    batch's rows are gathered with :meth:`~torch.Tensor.index_select`, so
    only they are read. Pickles as its folder (workers map the files again).

    Args:
        tensors (Dict[str, Tensor]): Attribute name to :obj:`[N, ...]` tensor.
        folder (Path, optional): The layout they are mapped from.
    """

    def __init__(self, tensors: Dict[str, Tensor], folder: Optional[Path] = None):
        super().__init__()
        self._tensors = dict(tensors)
        self.folder = folder

    def __reduce__(self) -> Any:
        if self.folder is None:
            return super().__reduce__()
        return (_reopen_features, (str(self.folder),))

    def _put_tensor(self, tensor: Tensor, attr: TensorAttr) -> bool:
        if attr.group_name is not None or attr.index is not None:
            return False  # one node type; whole tensors only
        self._tensors[attr.attr_name] = tensor
        return True

    def _get_tensor(self, attr: TensorAttr) -> Optional[Tensor]:
        if attr.group_name is not None:
            return None
        tensor = self._tensors.get(attr.attr_name)
        if tensor is None or attr.index is None:
            return tensor
        if isinstance(attr.index, Tensor):
            return tensor.index_select(0, attr.index.to(tensor.device, torch.int64))
        return tensor[attr.index]

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        return self._tensors.pop(attr.attr_name, None) is not None

    def _get_tensor_size(self, attr: TensorAttr) -> Optional[Tuple[int, ...]]:
        tensor = self._tensors.get(attr.attr_name)
        return tuple(tensor.size()) if tensor is not None and attr.group_name is None else None

    def get_all_tensor_attrs(self) -> List[TensorAttr]:
        return [TensorAttr(group_name=None, attr_name=name, index=None) for name in self._tensors]


class OnDiskGraphStore(GraphStore):
    r"""A read-only homogeneous :class:`~torch_geometric.data.GraphStore`
    holding one graph in CSC (:obj:`(row, colptr)`, memory-mapped ones from an
    :class:`OnDiskLayout`); :meth:`csc` hands these tensors over as they are,
    so the sampler walks the mapped files. Pickles as its folder.

    Args:
        colptr (Tensor): :obj:`int64` offsets, :obj:`[N + 1]`.
        row (Tensor): In-neighbours per column, :obj:`[E]`.
        num_nodes (int): :math:`N`.
        folder (Path, optional): The layout they are mapped from.
    """

    def __init__(self, colptr: Tensor, row: Tensor, num_nodes: int, folder: Optional[Path] = None):
        super().__init__()
        self.colptr, self.row, self.num_nodes, self.folder = colptr, row, int(num_nodes), folder

    def __reduce__(self) -> Any:
        if self.folder is None:
            return super().__reduce__()
        return (_reopen_graph, (str(self.folder),))

    def _attr(self) -> EdgeAttr:
        return EdgeAttr(None, EdgeLayout.CSC, True, (self.num_nodes, self.num_nodes))

    def _put_edge_index(self, edge_index: Any, edge_attr: EdgeAttr) -> bool:
        return False  # read-only

    def _get_edge_index(self, edge_attr: EdgeAttr) -> Optional[Tuple[Tensor, Tensor]]:
        if edge_attr.edge_type is None and edge_attr.layout == EdgeLayout.CSC:
            return self.row, self.colptr
        return None

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        return False

    def get_all_edge_attrs(self) -> List[EdgeAttr]:
        return [self._attr()]
