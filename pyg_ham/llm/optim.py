r"""The plain-PyTorch path: a HAM optimizer for a language model, without the ``Trainer``."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch.optim import Optimizer

from pyg_ham.llm.selection import llm_ham_selector
from pyg_ham.optim.factory import build_optimizer
from pyg_ham.optim.groups import Selector
from pyg_ham.optim.ham import HAM_DEFAULTS

__all__ = ["build_llm_optimizer"]


def build_llm_optimizer(
    model: torch.nn.Module,
    name: str = "adamw",
    lr: float = 2e-4,
    weight_decay: float = 0.0,
    ham: bool = True,
    alpha: float = HAM_DEFAULTS["ham_alpha"],
    beta: float = HAM_DEFAULTS["ham_beta"],
    *,
    include_embeddings: bool = False,
    include_lm_head: bool = False,
    select: Selector = None,
    exclude: Selector = None,
    decay: Selector = None,
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"],
    **kwargs: Any,
) -> Optimizer:
    r""":func:`~pyg_ham.optim.build_optimizer` on a (``peft``-wrapped) causal LM, with the LLM
    selection of :func:`~pyg_ham.llm.llm_ham_selector` (weight matrices without embeddings and
    LM head by default; under LoRA the LoRA matrices). Frozen tensors are left out; weight decay
    goes to tensors with ``ndim >= 2`` unless :obj:`decay` says otherwise.

    Example:
        >>> opt = build_llm_optimizer(peft_model, lr=2e-4, alpha=200.0, beta=1e-3)
        >>> model(**batch).loss.backward(); opt.step(); opt.zero_grad()
    """
    predicate = llm_ham_selector(model, include_embeddings=include_embeddings, include_lm_head=include_lm_head,
                                 select=select, exclude=exclude)
    return build_optimizer(model, name, lr=lr, weight_decay=weight_decay, ham=ham, alpha=alpha, beta=beta,
                           select=predicate, decay=decay, max_exponent=max_exponent, **kwargs)
