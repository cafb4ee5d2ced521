"""A fake ogbn-mag in OGB's raw layout, read by OGB's own ``PygNodePropPredDataset``.

``write_fake_mag(root / "ogb" / "ogbn_mag")`` writes::

    RELEASE_v2.txt
    raw/num-node-dict.csv.gz               header: node types; one row of counts
    raw/triplet-type-list.csv.gz           one "src,rel,dst" row per relation
    raw/relations/<src>___<rel>___<dst>/{edge,num-edge-list,edge_reltype}.csv.gz
    raw/node-feat/paper/{node-feat,node_year}.csv.gz
    raw/nodetype-has-label.csv.gz          header: node types; True only for paper
    raw/node-label/paper/node-label.csv.gz
    split/time/nodetype-has-split.csv.gz
    split/time/paper/{train,valid,test}.csv.gz   (time split: < 2018, 2018, 2019)
"""
import gzip
from pathlib import Path
from typing import Dict

import numpy as np

NODE_TYPES = ("author", "field_of_study", "institution", "paper")
RELATIONS = (("author", "affiliated_with", "institution"), ("author", "writes", "paper"),
             ("paper", "cites", "paper"), ("paper", "has_topic", "field_of_study"))
SIZES = {"author": 50, "field_of_study": 12, "institution": 6, "paper": 80}
NUM_CLASSES, NUM_FEATURES = 349, 8


def _write_csv_gz(path: Path, rows, fmt: str = "%d") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows)
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows.reshape(len(rows), -1), fmt=fmt, delimiter=",")


def _write_header_row(path: Path, header, row) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write(",".join(header) + "\n" + ",".join(str(v) for v in row) + "\n")


def write_fake_mag(folder: Path, release: bool = True, seed: int = 0) -> Dict:
    """Writes a small ogbn-mag (``SIZES`` nodes, random relations without duplicate edges,
    labels in ``range(349)``) and returns what was written: ``edges`` per relation,
    ``labels``, ``features``, ``year`` and ``split`` (paper indices)."""
    rng = np.random.default_rng(seed)
    raw = folder / "raw"
    _write_header_row(raw / "num-node-dict.csv.gz", NODE_TYPES, [SIZES[t] for t in NODE_TYPES])
    with gzip.open(raw / "triplet-type-list.csv.gz", "wt") as f:
        f.write("".join(",".join(r) + "\n" for r in RELATIONS))
    edges = {}
    for r, (s, rel, d) in enumerate(RELATIONS):
        pairs = {(int(a), int(b)) for a, b in zip(rng.integers(0, SIZES[s], 4 * SIZES[d]),
                                                  rng.integers(0, SIZES[d], 4 * SIZES[d]))
                 if s != d or a != b}
        e = np.array(sorted(pairs))[rng.permutation(len(pairs))]
        sub = raw / "relations" / f"{s}___{rel}___{d}"
        _write_csv_gz(sub / "edge.csv.gz", e)
        _write_csv_gz(sub / "num-edge-list.csv.gz", [len(e)])
        _write_csv_gz(sub / "edge_reltype.csv.gz", np.full(len(e), r))
        edges[(s, rel, d)] = e
    n = SIZES["paper"]
    features = rng.normal(size=(n, NUM_FEATURES))
    year = rng.integers(2012, 2020, n)
    year[:3] = [2017, 2018, 2019]  # every split part is non-empty
    labels = rng.integers(0, NUM_CLASSES, n)
    _write_csv_gz(raw / "node-feat" / "paper" / "node-feat.csv.gz", features, fmt="%.6f")
    _write_csv_gz(raw / "node-feat" / "paper" / "node_year.csv.gz", year)
    _write_header_row(raw / "nodetype-has-label.csv.gz", NODE_TYPES, [t == "paper" for t in NODE_TYPES])
    _write_csv_gz(raw / "node-label" / "paper" / "node-label.csv.gz", labels)
    split_dir = folder / "split" / "time"
    _write_header_row(split_dir / "nodetype-has-split.csv.gz", NODE_TYPES, [t == "paper" for t in NODE_TYPES])
    split = {"train": np.nonzero(year < 2018)[0], "valid": np.nonzero(year == 2018)[0],
             "test": np.nonzero(year == 2019)[0]}
    for key, idx in split.items():
        _write_csv_gz(split_dir / "paper" / f"{key}.csv.gz", idx)
    if release:
        (folder / "RELEASE_v2.txt").write_text("fake release for tests\n")
    return {"edges": edges, "labels": labels, "features": features, "year": year, "split": split}
