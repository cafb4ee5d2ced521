r"""The hyperbolic half-step of HAM: the single source of truth for its math.

HAM (Jacobs, Gadhikar, Rubio-Madrigal & Burkholz, *Hyperbolic Aware Minimization:
Implicit Bias for Sparsity*, ICLR 2026, arXiv:2506.02630) follows every step of a base
optimizer with a multiplicative step on the selected weights:

.. math::
    \mathbf{w} \leftarrow \mathbf{w} \odot \exp\big(-\eta\,(\alpha\,\mathrm{sign}(\mathbf{w})
    \odot \mathbf{g} + \beta)\big)

where :math:`\mathbf{w}` are the weights *after* the base step, :math:`\mathbf{g}` the same
(unscaled) gradient the base step used and :math:`\eta` the param group's current learning
rate. The step never changes a sign and keeps exact zeros at zero.

Three implementations share this module and agree to floating-point rounding:

* ``"for-loop"``: one tensor at a time (the reference path),
* ``"foreach"``: ``torch._foreach_*`` kernels over lists grouped by (device, dtype), applied
  in chunks of at most ``chunk_numel`` elements through one reused scratch buffer, so that
  its memory stays bounded (and, on CPU, cache-resident),
* ``"fused"``: a :func:`torch.compile`-d single pass per tensor (reads :math:`\mathbf{w}`
  and :math:`\mathbf{g}` once, writes :math:`\mathbf{w}` once, allocates nothing). It falls
  back to ``"foreach"`` with one warning when compilation is unavailable.

No path synchronises the device with the host: ``lr`` may be a float or a tensor, and a
step skipped by :class:`torch.amp.GradScaler` (``found_inf`` > 0) is masked on the device.
"""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["hyperbolic_step_", "IMPLEMENTATIONS", "DEFAULT_CHUNK_NUMEL", "FUSED_MIN_NUMEL"]

Scalar = Union[float, Tensor]

#: The available implementations of the step.
IMPLEMENTATIONS = ("for-loop", "foreach", "fused")
#: Largest number of elements the foreach path processes at once: its only temporary is a
#: scratch buffer of this many elements (1 MiB in float32, which stays in a CPU's L2/L3 cache).
DEFAULT_CHUNK_NUMEL = 1 << 18
#: With ``implementation=None``, the fused path is used from this many elements on (below it,
#: a one-off compilation costs more than it saves over a short run).
FUSED_MIN_NUMEL = 4_000_000


def _exponent(w: Tensor, g: Tensor, lr: Scalar, alpha: float, beta: float,
              max_exponent: Optional[float]) -> Tensor:
    """``-lr * (alpha * sign(w) * g + beta)``, optionally clamped to ``±max_exponent``."""
    e = torch.sign(w).mul_(g).mul_(alpha).add_(beta).mul_(-lr)
    if max_exponent is not None:
        e.clamp_(-max_exponent, max_exponent)
    return e


def _single_tensor_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar,
                         alpha: float, beta: float, max_exponent: Optional[float],
                         found_inf: Optional[Tensor]) -> None:
    for w, g in zip(params, grads):
        e = _exponent(w, g, lr, alpha, beta, max_exponent)
        if found_inf is not None:
            e = torch.where(found_inf > 0, 0.0, e)
        w.mul_(e.exp_())


def _chunks(params: Sequence[Tensor], grads: Sequence[Tensor],
            chunk_numel: int) -> List[Tuple[List[Tensor], List[Tensor]]]:
    """Split the lists into chunks of at most ``chunk_numel`` elements (views, no copies).

    A contiguous tensor larger than ``chunk_numel`` is cut into flat views; a non-contiguous
    one is kept whole.
    """
    out: List[Tuple[List[Tensor], List[Tensor]]] = []
    ws: List[Tensor] = []
    gs: List[Tensor] = []
    size = 0
    for w, g in zip(params, grads):
        if w.numel() > chunk_numel and w.is_contiguous() and g.is_contiguous():
            pieces = zip(w.view(-1).split(chunk_numel), g.view(-1).split(chunk_numel))
        else:
            pieces = [(w, g)]
        for wp, gp in pieces:
            if ws and size + wp.numel() > chunk_numel:
                out.append((ws, gs))
                ws, gs, size = [], [], 0
            ws.append(wp)
            gs.append(gp)
            size += wp.numel()
    if ws:
        out.append((ws, gs))
    return out


def _foreach_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float,
                   beta: float, max_exponent: Optional[float], found_inf: Optional[Tensor],
                   chunk_numel: int) -> None:
    # e = -lr*alpha*sign(w)*g - lr*beta, computed chunk by chunk in one reused scratch buffer:
    # a fresh allocation per chunk costs page faults that dominate on CPU, and a chunk that
    # fits the cache keeps the intermediate passes off main memory.
    scale: Scalar = lr * (-alpha)
    shift: Scalar = lr * (-beta)
    skip = found_inf > 0 if found_inf is not None else None
    chunks = _chunks(params, grads, chunk_numel)
    scratch = params[0].new_empty(max(sum(w.numel() for w in ws) for ws, _ in chunks))
    for ws, gs in chunks:
        es, offset = [], 0
        for w in ws:
            es.append(scratch[offset:offset + w.numel()].view_as(w))
            offset += w.numel()
        torch._foreach_copy_(es, ws)
        torch._foreach_sign_(es)
        torch._foreach_mul_(es, gs)
        torch._foreach_mul_(es, scale)
        torch._foreach_add_(es, shift)
        if max_exponent is not None:
            torch._foreach_clamp_min_(es, -max_exponent)
            torch._foreach_clamp_max_(es, max_exponent)
        if skip is not None:
            for e in es:
                e.masked_fill_(skip, 0.0)  # a fill, so inf/NaN gradients leave no NaN behind
        torch._foreach_exp_(es)
        torch._foreach_mul_(ws, es)


def _fused_kernel(params: List[Tensor], grads: List[Tensor], lr: Tensor, alpha: Tensor,
                  beta: Tensor, max_exponent: Tensor, skip: Tensor) -> None:
    for w, g in zip(params, grads):
        e = -lr * (alpha * torch.sign(w) * g + beta)
        e = torch.clamp(e, -max_exponent, max_exponent)
        e = torch.where(skip, torch.zeros_like(e), e)
        w.mul_(torch.exp(e))


_compiled_kernel: Optional[Callable[..., None]] = None
_fused_unavailable = False


def _fused_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float,
                 beta: float, max_exponent: Optional[float], found_inf: Optional[Tensor]) -> bool:
    """Run the compiled pass; return ``False`` (after one warning) where it cannot compile."""
    global _compiled_kernel, _fused_unavailable
    if _fused_unavailable:
        return False
    if _compiled_kernel is None:
        _compiled_kernel = torch.compile(_fused_kernel, dynamic=False, fullgraph=True)
    device, dtype = params[0].device, params[0].dtype

    # Hyper-parameters travel as 0-dim tensors so that a scheduler changing ``lr`` does not
    # trigger a recompilation.
    def as_tensor(x: Scalar) -> Tensor:
        return torch.as_tensor(x, dtype=dtype).to(device, non_blocking=True)

    skip = (found_inf > 0).to(device) if found_inf is not None else torch.zeros((), dtype=torch.bool,
                                                                            device=device)
    bound = math.inf if max_exponent is None else max_exponent
    try:
        _compiled_kernel(list(params), list(grads), as_tensor(lr), as_tensor(alpha),
                         as_tensor(beta), as_tensor(bound), skip)
    except Exception as exc:  # compilation unavailable (no compiler, unsupported platform, ...)
        _fused_unavailable = True
        warnings.warn(f"pyg_ham: the fused (compiled) HAM step is unavailable here ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}); using the foreach path instead.",
                      RuntimeWarning, stacklevel=3)
        return False
    return True


def _group_by_device_dtype(params: Sequence[Tensor], grads: Sequence[Tensor]
                           ) -> Dict[Tuple[torch.device, torch.dtype], Tuple[List[Tensor], List[Tensor]]]:
    groups: Dict[Tuple[torch.device, torch.dtype], Tuple[List[Tensor], List[Tensor]]] = defaultdict(
        lambda: ([], []))
    for w, g in zip(params, grads):
        ws, gs = groups[(w.device, w.dtype)]
        ws.append(w)
        gs.append(g)
    return groups


def _default_implementation(params: Sequence[Tensor]) -> str:
    if torch.compiler.is_compiling():
        return "foreach"  # the surrounding compilation fuses it already
    if not all(p.device.type in ("cpu", "cuda") for p in params):
        return "for-loop"
    if sum(p.numel() for p in params) >= FUSED_MIN_NUMEL and not _fused_unavailable:
        return "fused"
    return "foreach"


@torch.no_grad()
def hyperbolic_step_(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    lr: Scalar,
    alpha: float,
    beta: float,
    *,
    max_exponent: Optional[float] = None,
    found_inf: Optional[Tensor] = None,
    implementation: Optional[str] = None,
    chunk_numel: int = DEFAULT_CHUNK_NUMEL,
) -> None:
    r"""Apply the hyperbolic half-step of HAM in place.

    .. math::
        \mathbf{w} \leftarrow \mathbf{w} \odot \exp\big(-\eta\,(\alpha\,\mathrm{sign}
        (\mathbf{w}) \odot \mathbf{g} + \beta)\big)

    Args:
        params (Sequence[Tensor]): the weights after the base step, updated in place.
        grads (Sequence[Tensor]): the (unscaled) gradients the base step used, one per weight.
        lr (float or Tensor): the learning rate :math:`\eta` (a 0-dim tensor avoids
            recompilation under :func:`torch.compile` when a scheduler changes it).
        alpha (float): strength :math:`\alpha \geq 0` of the hyperbolic geometry.
        beta (float): multiplicative decay :math:`\beta \geq 0`.
        max_exponent (float, optional): clamp the exponent to
            :math:`[-\text{max\_exponent}, \text{max\_exponent}]` (the authors' wrapper uses 5).
            (default: :obj:`None`, no clamp: the paper's update)
        found_inf (Tensor, optional): a :class:`~torch.amp.GradScaler` inf/NaN flag; where it
            is positive the step leaves the weights unchanged, without a host sync and without
            turning zeros into NaN. (default: :obj:`None`)
        implementation (str, optional): ``"for-loop"``, ``"foreach"`` or ``"fused"``;
            :obj:`None` picks ``"fused"`` for at least :data:`FUSED_MIN_NUMEL` elements where
            :func:`torch.compile` works, else ``"foreach"``. (default: :obj:`None`)
        chunk_numel (int): largest number of elements the foreach path treats at once; its
            scratch buffer has this size. (default: :data:`DEFAULT_CHUNK_NUMEL`)

    Memory: the for-loop path allocates one temporary the size of the largest tensor, the
    foreach path one scratch buffer of ``chunk_numel`` elements (more only for a
    non-contiguous tensor larger than that), the fused path nothing.
    """
    if len(params) != len(grads):
        raise ValueError(f"hyperbolic_step_: got {len(params)} params but {len(grads)} grads")
    if not params:
        return
    if implementation is not None and implementation not in IMPLEMENTATIONS:
        raise ValueError(f"hyperbolic_step_: implementation must be one of {IMPLEMENTATIONS} or None, "
                         f"got {implementation!r}")
    if chunk_numel < 1:
        raise ValueError(f"hyperbolic_step_: chunk_numel must be >= 1, got {chunk_numel}")
    if alpha == 0.0 and beta == 0.0:
        return  # exp(0) == 1: the base optimizer exactly
    impl = implementation or _default_implementation(params)
    for ws, gs in _group_by_device_dtype(params, grads).values():
        if impl == "fused" and _fused_step_(ws, gs, lr, alpha, beta, max_exponent, found_inf):
            continue
        if impl == "for-loop":
            _single_tensor_step_(ws, gs, lr, alpha, beta, max_exponent, found_inf)
        else:
            _foreach_step_(ws, gs, lr, alpha, beta, max_exponent, found_inf, chunk_numel)
