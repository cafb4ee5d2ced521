r"""The built-in datasets: one :class:`~pyg_ham.datasets.registry.DatasetInfo` each, the only
place their names, folders, metrics, families and recipes are written."""
from __future__ import annotations

from pyg_ham.datasets import graph, hetero, node, ogbn_raw
from pyg_ham.datasets.info import DatasetInfo, add_dataset

#: Heterophilous graphs with one binary target, scored by ROC-AUC (Platonov et al., ICLR 2023).
HETEROPHILOUS_BINARY = ("Minesweeper", "Tolokers", "Questions")


def _register() -> None:
    for n in ("Cora", "CiteSeer", "PubMed"):
        add_dataset(DatasetInfo(n, "node", "acc", node.planetoid, "Planetoid", n, family="planetoid",
                                recipe="planetoid-gcn"))
    for n in ("Cornell", "Texas", "Wisconsin"):
        add_dataset(DatasetInfo(n, "node", "acc", node.webkb, "WebKB", n.lower(), family="webkb",
                                recipe="webkb-sage"))
    add_dataset(DatasetInfo("Actor", "node", "acc", node.actor, "Actor", "", family="webkb",
                            recipe="webkb-sage"))
    for n in ("Roman-empire", "Amazon-ratings", *HETEROPHILOUS_BINARY):
        add_dataset(DatasetInfo(n, "node", "rocauc" if n in HETEROPHILOUS_BINARY else "acc", node.heterophilous,
                                "HeterophilousGraphDataset", n.lower().replace("-", "_"), family="heterophilous",
                                recipe="heterophilous-sage"))
    for n in node.LINKX_NAMES:
        add_dataset(DatasetInfo(n, "node", "rocauc" if n == "genius" else "acc", node.linkx, "LINKX", n,
                                family="linkx", recipe="linkx-sage"))
    for n in ("USA", "Brazil", "Europe"):
        add_dataset(DatasetInfo(n, "node", "acc", node.airports, "Airports", n.lower(), family="airports",
                                recipe="airports-sage"))
    for n, metric, recipe in (("ogbn-arxiv", "acc", "ogbn-arxiv-sage"), ("ogbn-products", "acc", "ogbn-products-sage"),
                              ("ogbn-proteins", "rocauc", "ogbn-arxiv-sage")):
        add_dataset(DatasetInfo(n, "node", metric, node.ogbn, "ogb", n.replace("-", "_"), family="ogbn",
                                recipe=recipe))
    # OGB's raw binary layout, read into the on-disk layout (never OGB's in-memory loader)
    add_dataset(DatasetInfo("ogbn-papers100M", "node", "acc", ogbn_raw.ogbn_from_raw, "ogb", "ogbn_papers100M",
                            family="ogbn", recipe="ogbn-papers100m-sage"))
    add_dataset(DatasetInfo("synthetic", "node", "acc", node.synthetic, family="synthetic"))
    add_dataset(DatasetInfo("ogbn-mag", "hetero-node", "acc", hetero.mag_dataset, "ogb", "ogbn_mag", family="ogbn",
                            recipe="ogbn-mag-sage"))
    add_dataset(DatasetInfo("synthetic-mag", "hetero-node", "acc", hetero.synthetic_mag_dataset,
                            family="synthetic", recipe="ogbn-mag-sage"))
    for n in graph.TU_NAMES:
        add_dataset(DatasetInfo(n, "graph", "acc", graph.tu, "TUDataset", n, family="tu", recipe="tu-gin"))
    for n in graph.ogbg_names():
        meta = graph.ogbg_meta()[n]
        mol, regression = meta.get("data type") == "mol", meta.get("task type") == "regression"
        recipe = ("ogbg-mol-gin-regression" if regression else "ogbg-mol-gin") if mol else None
        add_dataset(DatasetInfo(n, "graph", meta["eval metric"], graph.ogbg, "ogb", n.replace("-", "_"),
                                family="ogbg-mol" if mol else "ogbg", recipe=recipe))


_register()
