"""A small ogbn-papers100M in OGB's raw binary layout (raw/data.npz, raw/node-label.npz with NaN
for unlabelled nodes, split/time/*.csv.gz), for the tests and benchmarks/ondisk.py.

The arrays are written in chunks into the .npz members (a zip member opened for writing), so a
graph larger than memory can be generated."""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import numpy as np


def _write_member(z: zipfile.ZipFile, key: str, shape: tuple, dtype, blocks: Iterator[np.ndarray]) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    with z.open(key + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, header)
        for block in blocks:
            f.write(np.ascontiguousarray(block, dtype=dtype).tobytes())


def _csv_gz(path: Path, idx: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        np.savetxt(f, idx.reshape(-1, 1), fmt="%d")


def write_fake_papers100m(folder: Path, num_nodes: int = 300, num_edges: int = 1500, num_features: int = 8,
                          labelled: float = 0.3, num_classes: int = 10, seed: int = 0, compressed: bool = True,
                          chunk: int = 1 << 20, features: Optional[Callable[[np.random.Generator, int], np.ndarray]]
                          = None) -> Dict[str, np.ndarray]:
    """Writes the fake under ``folder`` (``<root>/ogb/ogbn_papers100M``); returns its small arrays
    (all of them when the graph is small: ``edge_index`` and ``x`` only below 10M entries).

    Labels follow a node's feature sign pattern (learnable); ``labelled`` of the nodes have one, and
    the labelled nodes are split 80/10/10 into train/valid/test (by node id, as OGB's time split
    orders papers by year)."""
    rng = np.random.default_rng(seed)
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    n, m, f = num_nodes, num_edges, num_features
    keep = n * f < 10_000_000 and m < 10_000_000
    centers = rng.normal(size=(num_classes, f)).astype(np.float32)
    cls = rng.integers(0, num_classes, n)
    out: Dict[str, np.ndarray] = {}

    def feat_blocks() -> Iterator[np.ndarray]:
        for i in range(0, n, chunk):
            j = min(n, i + chunk)
            block = (features(rng, j - i) if features is not None else
                     centers[cls[i:j]] + rng.normal(size=(j - i, f)).astype(np.float32))
            if keep:
                out.setdefault("x", []).append(block)  # type: ignore[attr-defined]
            yield block

    src = rng.integers(0, n, m)
    # homophilous edges: half of them join two nodes of one class
    same = rng.random(m) < 0.5
    by_class = np.argsort(cls, kind="stable")
    starts = np.searchsorted(cls[by_class], np.arange(num_classes + 1))
    c = cls[src]
    pick = starts[c] + (rng.random(m) * (starts[c + 1] - starts[c])).astype(np.int64)
    dst = np.where(same, by_class[np.minimum(pick, n - 1)], rng.integers(0, n, m))
    with zipfile.ZipFile(raw / "data.npz", "w", mode, allowZip64=True) as z:
        _write_member(z, "edge_index", (2, m), np.int64, iter([src, dst]))
        _write_member(z, "node_feat", (n, f), np.float32, feat_blocks())
        _write_member(z, "node_year", (n, 1), np.int64, iter([np.arange(n).reshape(-1, 1) // max(1, n // 10)]))
        _write_member(z, "num_nodes_list", (1,), np.int64, iter([np.array([n])]))
        _write_member(z, "num_edges_list", (1,), np.int64, iter([np.array([m])]))
    is_labelled = rng.random(n) < labelled
    label = np.where(is_labelled, cls, np.nan).astype(np.float32).reshape(-1, 1)
    with zipfile.ZipFile(raw / "node-label.npz", "w", mode, allowZip64=True) as z:
        _write_member(z, "node_label", (n, 1), np.float32, iter([label]))
    ids = np.flatnonzero(is_labelled)
    a, b = int(0.8 * ids.size), int(0.9 * ids.size)
    split = {"train": ids[:a], "valid": ids[a:b], "test": ids[b:]}
    for k, idx in split.items():
        _csv_gz(folder / "split" / "time" / f"{k}.csv.gz", idx)
    (folder / "RELEASE_v1.txt").write_text("fake release for tests\n")
    out.update({"y": np.where(is_labelled, cls, -1), "cls": cls, **{f"split_{k}": v for k, v in split.items()}})
    if keep:
        out["edge_index"] = np.stack([src, dst])
        out["x"] = np.concatenate(out["x"]) if n else np.zeros((0, f), np.float32)  # type: ignore[call-overload]
    return out
