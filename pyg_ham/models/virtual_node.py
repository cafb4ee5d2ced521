"""The virtual node of OGB's ``*-virtual`` graph property prediction baselines."""
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import global_add_pool
from torch_geometric.nn.models import MLP


class VirtualNode(torch.nn.Module):
    r"""A virtual node connected to every node of its graph, from the `"Neural
    Message Passing for Quantum Chemistry" <https://arxiv.org/abs/1704.01212>`_
    paper, as used by the ``gin-virtual`` / ``gcn-virtual`` baselines of the `"Open
    Graph Benchmark" <https://arxiv.org/abs/2005.00687>`_ paper (``GNN_node_Virtualnode``
    in OGB's ``examples/graphproppred/mol/conv.py``).

    Each graph starts with the learned state :math:`\mathbf{v}^{(0)}` (initialised to
    zero). Before message passing layer :math:`\ell` the state is added to every node
    of its graph, :math:`\mathbf{h}_i \leftarrow \mathbf{h}_i + \mathbf{v}^{(\ell)}`;
    between layers it is updated from the summed node states that entered layer
    :math:`\ell`:

    .. math::
        \mathbf{v}^{(\ell+1)} = \mathrm{Dropout}\Big(\mathrm{MLP}^{(\ell)}\big(
        \textstyle\sum_{i \in G} \mathbf{h}_i + \mathbf{v}^{(\ell)}\big)\Big),

    where each :math:`\mathrm{MLP}^{(\ell)}` is ``Linear(C, 2C) -> norm -> ReLU ->
    Linear(2C, C) -> norm -> ReLU``. With batch norm, a mini-batch holding a single
    graph normalises the virtual node with the running statistics instead of
    failing (PyG's ``BatchNorm(allow_single_element=True)``).

    Args:
        channels (int): Size of the node (and virtual node) states.
        num_layers (int): Number of message passing layers of the GNN; there are
            :obj:`num_layers - 1` updates.
        dropout (float, optional): Dropout probability after each update.
            (default: :obj:`0.`)
        norm (str, optional): Normalisation inside the update MLPs (PyG name).
            (default: :obj:`"batch_norm"`)
        norm_kwargs (Dict[str, Any], optional): Arguments of the normalisation.
            (default: :obj:`None`)
    """

    def __init__(self, channels: int, num_layers: int, dropout: float = 0.0,
                 norm: Optional[str] = "batch_norm",
                 norm_kwargs: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.dropout = dropout
        if norm == "batch_norm":
            norm_kwargs = {**(norm_kwargs or {}), "allow_single_element": True}
        self.embedding = torch.nn.Embedding(1, channels)
        self.mlps = torch.nn.ModuleList([
            MLP([channels, 2 * channels, channels], norm=norm, norm_kwargs=norm_kwargs,
                plain_last=False) for _ in range(num_layers - 1)
        ])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets all learnable parameters of the module."""
        torch.nn.init.zeros_(self.embedding.weight)
        for mlp in self.mlps:
            mlp.reset_parameters()

    def initial(self, num_graphs: int) -> Tensor:
        r"""Returns the initial states :math:`\mathbf{v}^{(0)}`, one row per graph."""
        index = torch.zeros(num_graphs, dtype=torch.long, device=self.embedding.weight.device)
        return self.embedding(index)

    def forward(self, layer: int, x: Tensor, batch: Tensor, state: Tensor) -> Tensor:
        r"""Returns the states after layer :obj:`layer` from the node states
        :obj:`x` that entered that layer (virtual node already added), the batch
        vector :obj:`batch` and the current states :obj:`state`."""
        pooled = global_add_pool(x, batch, size=state.size(0)) + state
        return F.dropout(self.mlps[layer](pooled), p=self.dropout, training=self.training)
