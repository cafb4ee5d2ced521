"""Model builders: node classification (:func:`build_node_model`) and graph
classification (:func:`build_graph_model`) on top of :mod:`torch_geometric.nn`."""
from pyg_ham.models._checks import NORMS, count_parameters
from pyg_ham.models.graph import GRAPH_MODELS, POOLS, GraphGNN, build_graph_model
from pyg_ham.models.node import NODE_MODELS, NodeMLP, build_node_model
from pyg_ham.models.virtual_node import VirtualNode

__all__ = [
    "GRAPH_MODELS",
    "NODE_MODELS",
    "NORMS",
    "POOLS",
    "GraphGNN",
    "NodeMLP",
    "VirtualNode",
    "build_graph_model",
    "build_node_model",
    "count_parameters",
]
