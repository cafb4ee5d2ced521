"""The on-disk layout: .npz members streamed in chunks, the out-of-core CSC against brute force
and PyG's to_undirected, the stores under the sampler against the in-memory graph, and the
build's versioning and locking (two processes racing, a build killed halfway)."""
import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from pyg_ham.datasets.csc_build import build_csc
from pyg_ham.datasets.npz_stream import NpzReader
from pyg_ham.datasets.ondisk import (
    FORMAT_VERSION,
    OnDiskLayout,
    ensure_layout,
    fingerprint,
    layout_problem,
)
from pyg_ham.errors import DatasetError
from pyg_ham.sampling import CSCGraph, TorchNeighborLoader


# ---------------------------------------------------------------- npz streaming
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_npz_members_stream_in_chunks(tmp_path, save, chunk):
    rng = np.random.default_rng(0)
    feat = rng.normal(size=(53, 4)).astype(np.float32)
    edges = rng.integers(0, 53, (2, 41))
    path = tmp_path / "a.npz"
    save(path, node_feat=feat, edge_index=edges, edge_f=np.asfortranarray(edges), n=np.array([53]))
    with NpzReader(path) as npz:
        member = npz.member("node_feat")
        assert member.shape == (53, 4) and member.dtype == np.float32
        blocks = list(member.iter_rows(chunk))
        assert all(b.shape[0] <= chunk for b in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), feat)
        for key in ("edge_index", "edge_f"):
            cols = list(npz.member(key).iter_columns(chunk))
            np.testing.assert_array_equal(np.concatenate([c[0] for c in cols]), edges[0])
            np.testing.assert_array_equal(np.concatenate([c[1] for c in cols]), edges[1])
        assert npz.member("n").read().tolist() == [53]
        with pytest.raises(DatasetError, match="no array 'node_year'.*edge_index"):
            npz.member("node_year")


def test_npz_truncated_member_is_a_dataset_error(tmp_path):
    import zipfile

    path = tmp_path / "t.npz"
    np.savez(path, x=np.arange(100))
    with zipfile.ZipFile(path) as z:
        data = z.read("x.npy")
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        z.writestr("x.npy", data[:-40])
    with NpzReader(tmp_path / "bad.npz") as npz, pytest.raises(DatasetError, match="ends early"):
        list(npz.member("x").iter_rows(16))


# ---------------------------------------------------------------- out-of-core CSC
def _chunks(edge_index: np.ndarray, size: int):
    return lambda: ((edge_index[0, i:i + size], edge_index[1, i:i + size])
                    for i in range(0, edge_index.shape[1], size))


def _read_csc(folder: Path, num_nodes: int, num_edges: int, dtype) -> tuple:
    colptr = np.fromfile(folder / "colptr.bin", dtype=np.int64)
    row = np.fromfile(folder / "row.bin", dtype=dtype)
    assert colptr.shape == (num_nodes + 1,) and row.shape == (num_edges,)
    return colptr, row


@pytest.mark.parametrize("chunk", [3, 64, 10_000])
def test_directed_csc_matches_brute_force(tmp_path, chunk):
    rng = np.random.default_rng(1)
    n = 37
    edge_index = rng.integers(0, n, (2, 300))
    edge_index[:, 5] = edge_index[:, 4]  # a parallel edge: kept (directed graphs keep multi-edges)
    num_edges, dtype = build_csc(tmp_path, n, _chunks(edge_index, 17), chunk=chunk)
    assert num_edges == 300 and dtype == np.int32
    colptr, row = _read_csc(tmp_path, n, num_edges, dtype)
    for v in range(n):  # column v: the sources of the edges into v, ascending
        expected = sorted(int(u) for u, w in edge_index.T if w == v)
        assert row[colptr[v]:colptr[v + 1]].tolist() == expected


def test_undirected_csc_is_pygs_to_undirected(tmp_path):
    rng = np.random.default_rng(2)
    n = 500
    edge_index = rng.integers(0, n, (2, 4000))
    num_edges, dtype = build_csc(tmp_path, n, _chunks(edge_index, 333), undirected=True, chunk=97)
    ref = CSCGraph.from_edge_index(to_undirected(torch.from_numpy(edge_index), num_nodes=n), n)
    colptr, row = _read_csc(tmp_path, n, num_edges, dtype)
    assert num_edges == ref.num_edges
    assert torch.equal(torch.from_numpy(colptr), ref.colptr)
    assert torch.equal(torch.from_numpy(row).long(), ref.row.long())


def test_csc_refuses_out_of_range_edges(tmp_path):
    with pytest.raises(DatasetError, match="node index 9 but the graph has 9 nodes"):
        build_csc(tmp_path, 9, _chunks(np.array([[0, 9], [1, 2]]), 1))


# ---------------------------------------------------------------- layout + stores
N, F = 400, 6


def _graph(seed: int = 3):
    rng = np.random.default_rng(seed)
    edge_index = rng.integers(0, N, (2, 3000))
    x = rng.normal(size=(N, F)).astype(np.float32)
    y = rng.integers(-1, 5, N)
    return edge_index, x, y


def _build(edge_index, x, y, log=None, pause=0.0):
    def build(w):
        if log is not None:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
        w.csc(N, _chunks(edge_index, 256))
        time.sleep(pause)
        w.rows("x", N, (F,), np.float32, (x[i:i + 50] for i in range(0, N, 50)))
        w.rows("y", N, (), np.int64, [y])
        w.array("split_train", np.arange(10))
    return build


def test_stores_sample_as_the_in_memory_graph(tmp_path):
    edge_index, x, y = _graph()
    ensure_layout(tmp_path / "g", {"v": 1}, _build(edge_index, x, y))
    layout = OnDiskLayout(tmp_path / "g")
    assert layout.array("row").dtype == torch.int32 and layout.array("x").shape == (N, F)
    # The same graph in memory, its edges ordered as the layout's columns (by target, then source).
    order = np.lexsort((edge_index[0], edge_index[1]))
    data = Data(x=torch.from_numpy(x), y=torch.from_numpy(y), edge_index=torch.from_numpy(edge_index[:, order]))
    seeds = torch.arange(0, N, 3)
    on_disk = TorchNeighborLoader(layout.stores(), [4, 3], input_nodes=seeds, batch_size=32, seed=5)
    in_mem = TorchNeighborLoader(data, [4, 3], input_nodes=seeds, batch_size=32, seed=5)
    count = 0
    for a, b in zip(on_disk, in_mem):
        assert torch.equal(a.n_id, b.n_id) and torch.equal(a.edge_index, b.edge_index)
        assert torch.equal(a.x, data.x[a.n_id]) and torch.equal(a.y, data.y[a.n_id])
        assert a.num_sampled_nodes == b.num_sampled_nodes and a.batch_size == b.batch_size
        count += 1
    assert count == len(in_mem) == 5


def test_layout_is_reused_then_rebuilt_on_version_or_source_change(tmp_path, capsys):
    edge_index, x, y = _graph()
    log = tmp_path / "builds.log"
    folder = tmp_path / "g"
    build = _build(edge_index, x, y, log)
    m1 = ensure_layout(folder, {"v": 1}, build)
    m2 = ensure_layout(folder, {"v": 1}, build)
    assert m1 == m2 and len(log.read_text().split()) == 1 and m1["version"] == FORMAT_VERSION
    assert m1["meta"] == {"num_nodes": N, "num_edges": 3000, "undirected": False}
    # an older format: rebuilt, and said so
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = FORMAT_VERSION - 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert "format version 0" in layout_problem(folder, {"v": 1})
    with pytest.raises(DatasetError, match="not an on-disk layout of format version"):
        OnDiskLayout(folder)
    ensure_layout(folder, {"v": 1}, build)
    assert len(log.read_text().split()) == 2 and "rebuilding" in capsys.readouterr().err
    ensure_layout(folder, {"v": 2}, build)  # other source files
    assert len(log.read_text().split()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".g.lock", "builds.log", "g"]


def test_failing_build_leaves_nothing(tmp_path):
    def build(w):
        w.array("a", np.arange(3))
        raise DatasetError("boom")

    with pytest.raises(DatasetError, match="boom"):
        ensure_layout(tmp_path / "g", {}, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".g.lock"]


def _race(folder, log, out, go):
    go.wait(30)
    edge_index, x, y = _graph()
    m = ensure_layout(folder, {"v": 1}, _build(edge_index, x, y, log, pause=0.5), timeout=60)
    Path(out).write_text(json.dumps(m))


def test_two_processes_race_and_build_once(tmp_path):
    ctx = mp.get_context("fork")
    folder, log = tmp_path / "g", tmp_path / "builds.log"
    go = ctx.Event()
    procs = [ctx.Process(target=_race, args=(folder, log, tmp_path / f"out{i}.json", go)) for i in range(2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # one build
    m0, m1 = (json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2))
    assert m0 == m1 and layout_problem(folder, {"v": 1}) is None


def _killed_build(folder, started):
    def build(w):
        w.array("partial", np.arange(1000))
        Path(started).touch()
        time.sleep(120)

    ensure_layout(folder, {"v": 1}, build)


def test_killed_build_is_never_read_and_is_redone(tmp_path):
    ctx = mp.get_context("fork")
    folder, started = tmp_path / "g", tmp_path / "started"
    p = ctx.Process(target=_killed_build, args=(folder, started))
    p.start()
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert started.exists()
    # while it builds: no layout, and a reader waiting for it gives up after its timeout
    assert layout_problem(folder, {"v": 1}) == "it does not exist yet"
    with pytest.raises(DatasetError, match="waited 0.3 s for the lock"):
        ensure_layout(folder, {"v": 1}, lambda w: None, timeout=0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".g.tmp-")]  # the half-built folder
    edge_index, x, y = _graph()
    ensure_layout(folder, {"v": 1}, _build(edge_index, x, y), timeout=10)
    assert not [q.name for q in tmp_path.iterdir() if q.name.startswith(".g.tmp-")]
    layout = OnDiskLayout(folder)
    assert torch.equal(layout.array("x"), torch.from_numpy(x)) and not layout.has("partial")


def test_stores_pickle_as_their_folder(tmp_path):
    import pickle

    edge_index, x, y = _graph()
    ensure_layout(tmp_path / "g", {}, _build(edge_index, x, y))
    fs, gs = OnDiskLayout(tmp_path / "g").stores()
    assert len(pickle.dumps((fs, gs))) < 2000  # not the arrays
    fs2, gs2 = pickle.loads(pickle.dumps((fs, gs)))
    assert torch.equal(fs2.get_tensor(group_name=None, attr_name="x", index=None), torch.from_numpy(x))
    assert torch.equal(gs2.row, gs.row) and torch.equal(gs2.colptr, gs.colptr)


def test_fingerprint_changes_with_the_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"ab")
    a = fingerprint([p])
    p.write_bytes(b"abc")
    assert fingerprint([p]) != a and fingerprint([p])["f"][0] == 3


def test_arrays_larger_than_memory_map(tmp_path):
    """A feature file twice this machine's memory (sparse: no disk used) maps: read-only mappings
    commit no memory (a copy-on-write one is refused with ENOMEM by Linux's overcommit heuristic)."""
    mem = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    rows = 2 * mem // (64 * 4) + 1

    def build(w):
        w.array("y", np.zeros(1, dtype=np.int64))
        (w.folder / "x.bin").touch()
        os.truncate(w.folder / "x.bin", rows * 64 * 4)
        w.arrays["x"] = {"file": "x.bin", "dtype": "<f4", "shape": [rows, 64]}

    ensure_layout(tmp_path / "g", {}, build)
    x = OnDiskLayout(tmp_path / "g").array("x")
    assert x.shape == (rows, 64) and float(x[rows - 1].sum()) == 0.0
