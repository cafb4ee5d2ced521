"""Model builders on top of :mod:`torch_geometric.nn`.

* :func:`build_node_model` -- node classification: PyG's ``GCN``, ``GraphSAGE``,
  ``GAT``, ``GIN`` (:class:`~torch_geometric.nn.models.BasicGNN`) and an ``MLP``
  that ignores the graph; called as ``model(x, edge_index, **kw)``.
* :func:`build_graph_model` -- graph classification in the style of OGB's
  graph property baselines (:class:`GraphGNN`, optional :class:`VirtualNode`);
  called as ``model(batch)``.
* :func:`build_hetero_model` -- node classification on ``HeteroData`` (ogbn-mag):
  GraphSAGE via ``to_hetero`` or R-GCN, embeddings for featureless node types;
  called as ``model(x_dict, edge_index_dict, n_id_dict)`` or ``model.forward_batch(batch)``.

Example::

    from pyg_ham.models import build_graph_model, build_node_model, count_parameters

    arxiv_gcn = build_node_model("gcn", 128, 40, cached=True)       # 110,120 params
    molhiv_gin = build_graph_model("gin", 9, 1, ogb_mol=True)       # OGB's "gin"
    count_parameters(molhiv_gin)

Bad arguments raise :class:`~pyg_ham.errors.ConfigError`.
"""
from pyg_ham.models._checks import NORMS, count_parameters
from pyg_ham.models.graph import GRAPH_MODELS, POOLS, GraphGNN, build_graph_model
from pyg_ham.models.hetero import HETERO_MODELS, HeteroNodeModel, build_hetero_model
from pyg_ham.models.node import NODE_MODELS, NodeMLP, build_node_model
from pyg_ham.models.virtual_node import VirtualNode

__all__ = [
    "GRAPH_MODELS",
    "HETERO_MODELS",
    "NODE_MODELS",
    "NORMS",
    "POOLS",
    "GraphGNN",
    "HeteroNodeModel",
    "NodeMLP",
    "VirtualNode",
    "build_graph_model",
    "build_hetero_model",
    "build_node_model",
    "count_parameters",
]
