r"""Per-epoch diagnostics of the weights HAM acts on: what the paper's claims are about.

HAM's multiplicative step drives weights with the wrong sign towards zero and lets the base
step flip them; it promotes sparsity. Once per epoch (one host sync per epoch, none per
step) we record, over the selected weights:

* ``near_zero``: the fraction with :math:`|w| < \epsilon` (default :math:`10^{-3}`),
* ``zero``: the fraction of exact zeros (pruned weights),
* ``l1``: :math:`\sum |w|`,
* ``sign_flips``: the fraction whose sign differs from the previous epoch's.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from pyg_ham.optim.groups import ham_selects, is_weight_matrix

__all__ = ["WeightDiagnostics", "selected_weights"]


def selected_weights(model: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> List[Tensor]:
    """The weights HAM acts on: by the optimizer's groups' ``ham`` keys where present, else
    tensors with ``ndim >= 2`` (so a baseline built by ``build_optimizer(..., ham=False)``
    tracks the same tensors as its HAM twin)."""
    if optimizer is not None:
        chosen: List[Tensor] = []
        for group in optimizer.param_groups:
            mode = group.get("ham", "auto")
            if mode is False:
                continue
            chosen.extend(p for p in group["params"] if ham_selects(mode, p))
        return chosen
    return [p for p in model.parameters() if p.requires_grad and is_weight_matrix("", p)]


class WeightDiagnostics:
    r"""Tracks near-zero fraction, zeros, L1 norm and sign flips of a set of weights.

    Args:
        weights (list of Tensor): the tensors to watch.
        eps (float): the near-zero threshold :math:`\epsilon`. (default: :obj:`1e-3`)
    """

    def __init__(self, weights: List[Tensor], eps: float = 1e-3) -> None:
        self.weights = list(weights)
        self.eps = eps
        self._signs: Optional[List[Tensor]] = [torch.sign(w.detach()).to(torch.int8) for w in self.weights]

    @classmethod
    def from_optimizer(cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer, eps: float = 1e-3
                       ) -> "WeightDiagnostics":
        return cls(selected_weights(model, optimizer), eps)

    @torch.no_grad()
    def step(self) -> Dict[str, float]:
        """Measure now (call once per epoch); returns the diagnostics as floats."""
        if not self.weights:
            return {}
        total = sum(w.numel() for w in self.weights)
        near = sum((w.abs() < self.eps).sum() for w in self.weights)
        zero = sum((w == 0).sum() for w in self.weights)
        l1 = sum(w.abs().sum(dtype=torch.float64) for w in self.weights)
        signs = [torch.sign(w).to(torch.int8) for w in self.weights]
        flips = sum((s != p).sum() for s, p in zip(signs, self._signs))
        self._signs = signs
        stats = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=self.weights[0].device)
                             for v in (near, zero, l1, flips)]).cpu()  # one host sync
        return {"near_zero": float(stats[0]) / total, "zero": float(stats[1]) / total,
                "l1": float(stats[2]), "sign_flips": float(stats[3]) / total}

    def state_dict(self) -> Dict[str, Any]:
        return {"signs": [s.cpu() for s in self._signs], "eps": self.eps}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.eps = state["eps"]
        self._signs = [s.to(w.device) for s, w in zip(state["signs"], self.weights)]
