r"""The :class:`Sparsifier` base class: masks, the two training-loop hooks, state and report."""
from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.masks import select_parameters
from pyg_ham.validation import check_int, check_number

__all__ = ["Sparsifier"]


def _rank0_masks(masks: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rank 0's :obj:`masks` on every rank of a running process group (the masks as they are otherwise)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return masks
    cpu = dist.get_backend() == "gloo"
    out = {}
    for n in sorted(masks):
        m = masks[n].to(torch.uint8)
        m = m.cpu() if cpu else m
        dist.broadcast(m, src=0)
        out[n] = m.to(device=masks[n].device, dtype=torch.bool)
    return out


class Sparsifier:
    r"""Base class of sparse training: boolean masks over the weight tensors that the
    optimizer updates, kept in force around every optimizer step.

    Pruned entries are exactly zero and stay zero: :meth:`before_step` zeroes their
    gradients, so that neither the base step (SGD with momentum, Adam, AdamW; weight decay
    of a zero is zero) nor HAM's multiplicative step (:math:`0 \cdot e^{x} = 0`) moves them,
    and :meth:`after_step` re-applies the masks to the weights. Whenever a mask changes, the
    optimizer state of the pruned entries (momentum buffers, Adam moments: every state tensor
    of the weight's shape) is zeroed too, so a weight that is regrown later starts from zero
    weight and zero moments. Zero gradient and zero state are a fixed point of those
    optimizers, so masking the state again at every step is not needed (opt in with
    :obj:`mask_state_every_step`).

    Training loop::

        sp = build_sparsifier("rigl", model, optimizer, sparsity=0.9, total_steps=T)
        for batch in loader:                  # T optimizer steps in all
            optimizer.zero_grad()
            loss(model, batch).backward()
            sp.before_step()                  # record dense grads if due, zero pruned grads
            optimizer.step()                  # (clip gradients between the two, if at all)
            sp.after_step()                   # re-mask, advance schedule, update masks if due

    Between mask updates the hooks launch a few ``foreach`` kernels and never synchronise
    the device with the host; a mask update (every so many steps) may.

    With :class:`~torch.amp.GradScaler`, call :meth:`before_step` before
    ``scaler.unscale_``/``scaler.step`` (RiGL ranks gradients, which scaling does not change)
    and :meth:`after_step` after ``scaler.update()``; a step the scaler skips still advances
    the schedule. With gradient accumulation, call each hook once per optimizer step.

    Subclasses set their options and then call ``super().__init__``, which builds the
    initial masks through :meth:`_init_masks`; :meth:`_update` runs after every step.

    Args:
        model (torch.nn.Module): the model; its selected weights are pruned in place.
        optimizer (torch.optim.Optimizer, optional): the optimizer (plain or
            :class:`~pyg_ham.optim.HAM`) whose state is masked.
        sparsity (float): target fraction of zeros :math:`s \in [0, 1)` over the masked tensors.
        total_steps (int): the number of optimizer steps of training (for the schedules).
        select (Selector): which tensors are masked: :obj:`None` for HAM's default
            (``ndim >= 2``), name patterns or a predicate. (default: :obj:`None`)
        seed (int): seed of the sparsifier's own random generator. (default: :obj:`0`)
        mask_state_every_step (bool): also mask the optimizer state after every step.
            (default: :obj:`False`)
    """

    #: The registry name of the method.
    name: ClassVar[str] = "base"

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: Optional[Optimizer],
        sparsity: float,
        total_steps: int,
        *,
        select: Selector = None,
        seed: int = 0,
        mask_state_every_step: bool = False,
    ) -> None:
        self.sparsity = float(check_number("sparsity", sparsity, 0, 1, high_open=True))
        self.total_steps = check_int("total_steps", total_steps)
        self.seed = check_int("seed", seed, low=0)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise ConfigError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.mask_state_every_step = bool(mask_state_every_step)
        self.generator = torch.Generator().manual_seed(self.seed)
        #: The masked tensors, by qualified parameter name.
        self.params: Dict[str, Tensor] = dict(select_parameters(model, select))
        #: The masks (``True``: kept), on the parameters' devices. Replaced, never edited in place.
        self.masks: Dict[str, Tensor] = {n: torch.ones_like(p, dtype=torch.bool) for n, p in self.params.items()}
        #: Completed optimizer steps (calls of :meth:`after_step`).
        self.step_count = 0
        self._masked: List[Tuple[Tensor, Tensor]] = []  # (param, mask) of tensors with pruned entries
        self._dense_grads: Optional[Dict[str, Optional[Tensor]]] = None
        with torch.no_grad():
            self._init_masks()

    # ------------------------------------------------------------------ subclass hooks
    def _init_masks(self) -> None:
        """Build the masks at step 0 (e.g. pruning at initialisation). Default: dense."""

    def _update(self, step: int) -> None:
        """Run after optimizer step number :obj:`step` (1-based): update masks when due."""

    def _wants_dense_grads(self, step: int) -> bool:
        """Whether :meth:`_update` at :obj:`step` needs the dense gradients of that step."""
        return False

    def _extra_state(self) -> Dict[str, Any]:
        """Method-specific state for :meth:`state_dict`."""
        return {}

    def _load_extra_state(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""

    @property
    def current_sparsity(self) -> float:
        """The sparsity the schedule asks for now (the target, for constant-sparsity methods)."""
        return self.sparsity

    # ------------------------------------------------------------------ masks
    def shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The shape of every masked tensor."""
        return {n: tuple(p.shape) for n, p in self.params.items()}

    @torch.no_grad()
    def set_masks(self, masks: Dict[str, Tensor]) -> None:
        """Replace (some of) the masks and apply them to the weights and optimizer state.

        Synchronises once (to find the tensors that have pruned entries). In several processes
        (``torch.distributed``) every rank calls it at the same step and takes rank 0's masks,
        so all replicas prune and regrow the same entries whatever their rounding.
        """
        masks = _rank0_masks(masks)
        for n, m in masks.items():
            p = self.params[n]
            if m.shape != p.shape:
                raise ValueError(f"mask for {n!r} has shape {tuple(m.shape)}, the parameter {tuple(p.shape)}")
            self.masks[n] = m.to(device=p.device, dtype=torch.bool)
        full = [bool(m.all()) for m in self.masks.values()]
        self._masked = [(self.params[n], m) for (n, m), dense in zip(self.masks.items(), full) if not dense]
        self._apply(state=True)

    def _apply(self, state: bool) -> None:
        if not self._masked:
            return
        params, masks = zip(*self._masked)
        torch._foreach_mul_(list(params), list(masks))
        if state and self.optimizer is not None:
            for p, m in self._masked:
                for value in self.optimizer.state.get(p, {}).values():
                    if isinstance(value, Tensor) and value.shape == p.shape and value.is_floating_point():
                        value.mul_(m)

    # ------------------------------------------------------------------ training-loop hooks
    @torch.no_grad()
    def before_step(self) -> None:
        """Call after ``loss.backward()`` and before ``optimizer.step()``.

        Records the dense gradients when the next mask update needs them (RiGL), then zeroes
        the gradients of pruned entries.
        """
        if self._wants_dense_grads(self.step_count + 1):
            self._dense_grads = {n: None if p.grad is None else p.grad.detach().clone()
                                 for n, p in self.params.items()}
        grads, masks = [], []
        for p, m in self._masked:
            if p.grad is not None:
                if p.grad.is_sparse:
                    raise RuntimeError("sparse training does not support sparse gradients; use dense embeddings")
                grads.append(p.grad)
                masks.append(m)
        if grads:
            torch._foreach_mul_(grads, masks)

    @torch.no_grad()
    def after_step(self) -> None:
        """Call after ``optimizer.step()``: re-apply the masks (pruned weights exactly zero),
        advance the schedule and update the masks when due."""
        self._apply(state=self.mask_state_every_step)
        self.step_count += 1
        try:
            self._update(self.step_count)
        finally:
            self._dense_grads = None

    # ------------------------------------------------------------------ state and report
    def state_dict(self) -> Dict[str, Any]:
        """Masks, step counter, random-generator state and the method's own state."""
        return {
            "name": self.name,
            "sparsity": self.sparsity,
            "total_steps": self.total_steps,
            "step": self.step_count,
            "masks": {n: m.clone() for n, m in self.masks.items()},
            "rng": self.generator.get_state(),
            "extra": self._extra_state(),
        }

    @torch.no_grad()
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (masks onto the parameters' devices) and apply the
        masks to the weights and optimizer state.

        Raises :class:`~pyg_ham.errors.ConfigError` if the checkpoint comes from another
        method, sparsity, length of training or set of masked tensors.
        """
        for key, mine in (("name", self.name), ("sparsity", self.sparsity), ("total_steps", self.total_steps)):
            if state_dict.get(key) != mine:
                raise ConfigError(f"sparsifier checkpoint has {key}={state_dict.get(key)!r}, this sparsifier "
                                  f"{key}={mine!r}")
        masks = state_dict["masks"]
        if set(masks) != set(self.params):
            raise ConfigError(f"sparsifier checkpoint masks {sorted(masks)}, this model selects {sorted(self.params)}")
        self.step_count = int(state_dict["step"])
        self.generator.set_state(state_dict["rng"])
        self._load_extra_state(state_dict.get("extra", {}))
        self.set_masks(masks)

    @torch.no_grad()
    def report(self) -> Dict[str, Any]:
        """The achieved sparsity: the fraction of exact zeros in the masked tensors.

        Returns:
            dict: ``overall`` (over all masked tensors), ``layers`` (name → fraction),
            ``target`` (the final target sparsity), ``current`` (what the schedule asks for
            now) and ``step``. Synchronises with the device.
        """
        zeros = torch.stack([(p == 0).sum().cpu() for p in self.params.values()]).tolist()
        numels = [p.numel() for p in self.params.values()]
        return {
            "overall": sum(zeros) / sum(numels),
            "layers": {n: z / k for n, z, k in zip(self.params, zeros, numels)},
            "target": self.sparsity,
            "current": self.current_sparsity,
            "step": self.step_count,
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(sparsity={self.sparsity}, total_steps={self.total_steps}, "
                f"tensors={len(self.params)}, step={self.step_count})")
