r"""Which tensors of a language model get the hyperbolic step.

The default follows the HAM paper's rule (weight matrices, ``ndim >= 2``) with two LLM
specifics:

* the token/position embeddings and the LM head are left out (their rows are updated
  sparsely, and for tied weights they are the same tensor); switch them on with
  :obj:`include_embeddings` / :obj:`include_lm_head` for full fine-tuning;
* frozen tensors are never touched, so under LoRA (``peft``) exactly the trainable LoRA
  matrices ``lora_A``/``lora_B`` (and the 2-D weights of ``modules_to_save``) get the step.

Biases and normalisation scales (1-D) never get it unless an explicit :obj:`select` picks them.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Set, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer

from pyg_ham.optim.groups import Selector, as_predicate, is_weight_matrix

__all__ = ["llm_ham_selector", "embedding_tensors", "split_param_groups"]

Predicate = Callable[[str, Tensor], bool]


def _weight(module: Any) -> Any:
    try:
        return getattr(module, "weight", None) if module is not None else None
    except Exception:  # some wrappers raise from a ``weight`` property
        return None


def embedding_tensors(model: torch.nn.Module) -> Tuple[Set[int], Set[int]]:
    r"""The ``id``\ s of the embedding tensors and of the LM-head tensors of :obj:`model`.

    Embeddings are the weights of every :class:`torch.nn.Embedding` and of
    ``model.get_input_embeddings()``; the head is ``model.get_output_embeddings().weight``.
    For tied weights the same tensor is in both sets. LoRA matrices are not in either set
    (``peft``'s wrapped layers expose the frozen base weight as ``.weight``).
    """
    embed: Set[int] = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head: Set[int] = set()
    for getter, ids in (("get_input_embeddings", embed), ("get_output_embeddings", head)):
        fn = getattr(model, getter, None)
        if callable(fn):
            try:
                weight = _weight(fn())
            except (NotImplementedError, AttributeError):
                weight = None
            if isinstance(weight, Tensor):
                ids.add(id(weight))
    return embed, head


def llm_ham_selector(
    model: torch.nn.Module,
    *,
    include_embeddings: bool = False,
    include_lm_head: bool = False,
    select: Selector = None,
    exclude: Selector = None,
) -> Predicate:
    r"""A predicate ``f(name, param)`` that says which tensors of :obj:`model` get the step.

    Args:
        model (torch.nn.Module): the (possibly ``peft``-wrapped) causal language model.
        include_embeddings (bool): also the embedding matrices. (default: :obj:`False`)
        include_lm_head (bool): also the LM head (a tied head is the embedding matrix and is
            selected only when both flags are set). (default: :obj:`False`)
        select (Selector, optional): replaces the default rule (``ndim >= 2`` minus
            embeddings/head) by :mod:`fnmatch` name patterns or a predicate.
        exclude (Selector, optional): removed from the selection, e.g. ``"*.mlp.*"``.

    Example:
        >>> pred = llm_ham_selector(model, include_lm_head=True)
        >>> [n for n, p in model.named_parameters() if p.requires_grad and pred(n, p)]
    """
    embed, head = embedding_tensors(model)
    excluded = as_predicate(exclude, default=lambda name, param: False)

    def default(name: str, param: Tensor) -> bool:
        if not is_weight_matrix(name, param):
            return False
        if id(param) in embed and not include_embeddings:
            return False
        return not (id(param) in head and not include_lm_head)

    chosen = as_predicate(select, default=default)
    return lambda name, param: bool(chosen(name, param)) and not excluded(name, param)


def split_param_groups(optimizer: Optimizer, named_parameters: Iterable[Tuple[str, Tensor]],
                       predicate: Predicate) -> List[str]:
    r"""Split every param group of a freshly built :obj:`optimizer` in two, in place: the
    tensors :obj:`predicate` selects (``ham=True``) and the others (``ham=False``).

    All other keys of a group (``lr``, ``weight_decay``, betas...) are copied to both halves,
    so the base step is unchanged; an LR scheduler created afterwards sees the new groups.
    Empty halves are dropped.

    Args:
        optimizer (torch.optim.Optimizer): an optimizer that has not stepped yet.
        named_parameters (iterable of (str, Tensor)): the model's names for its tensors.
        predicate (callable): ``f(name, param) -> bool``.

    Returns:
        list of str: the names of the selected tensors.

    Raises:
        RuntimeError: if the optimizer already holds state.
    """
    if len(optimizer.state) > 0:
        raise RuntimeError("split_param_groups: the optimizer has already stepped; split its groups before "
                           "the first step (or build the groups with ham_param_groups)")
    names: Dict[int, str] = {id(p): n for n, p in named_parameters}
    selected: List[str] = []
    groups: List[Dict[str, Any]] = []
    for group in optimizer.param_groups:
        group_names = group.get("param_names")
        halves: Dict[bool, Dict[str, list]] = {True: {"params": [], "names": []}, False: {"params": [], "names": []}}
        for i, p in enumerate(group["params"]):
            name = group_names[i] if group_names is not None else names.get(id(p), "")
            flag = bool(predicate(name, p))
            halves[flag]["params"].append(p)
            halves[flag]["names"].append(name)
            if flag:
                selected.append(name)
        for flag in (True, False):
            if not halves[flag]["params"]:
                continue
            new = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            new["params"] = halves[flag]["params"]
            if group_names is not None:
                new["param_names"] = halves[flag]["names"]
            new["ham"] = flag
            groups.append(new)
    if groups:
        optimizer.param_groups = groups
    return selected
