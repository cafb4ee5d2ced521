r"""One pass for a fused base optimizer and HAM together: each tensor read and written once.

HAM follows the base step with :math:`\mathbf{w} \leftarrow \mathbf{w} \odot \exp(-\eta(\alpha\,
\mathrm{sign}(\mathbf{w}) \odot \mathbf{g} + \beta))` (:mod:`pyg_ham.optim.functional`). Run as a
second pass it reads :math:`\mathbf{w}` and :math:`\mathbf{g}` and writes :math:`\mathbf{w}` again
after the base's own pass; for :class:`torch.optim.AdamW`, :class:`~torch.optim.Adam` and
:class:`~torch.optim.SGD` built with ``fused=True`` this module does both in one compiled pass per
group of tensors: the base update of the weight and its state, then the hyperbolic step on the
updated weight (before it is rounded to its storage dtype), with the same raw gradient.

For AdamW/Adam (step :math:`t`, bias corrections in ``float64`` as torch's fused kernels):

.. math::
    \mathbf{m} &\leftarrow \beta_1 \mathbf{m} + (1-\beta_1)\,\mathbf{d}, \qquad
    \mathbf{v} \leftarrow \beta_2 \mathbf{v} + (1-\beta_2)\,\mathbf{d}^2, \\
    \mathbf{u} &= \mathbf{w}' - \frac{\mathrm{lr}}{1-\beta_1^t}\,
    \frac{\mathbf{m}}{\sqrt{\hat{\mathbf{v}}}/\sqrt{1-\beta_2^t} + \epsilon}, \qquad
    \mathbf{w} \leftarrow \mathbf{u} \odot \exp\big(-\mathrm{lr}\,(\alpha\,\mathrm{sign}(\mathbf{u})
    \odot \mathbf{g} + \beta)\big)

with :math:`\mathbf{d} = \pm\mathbf{g}` (``maximize``) plus :math:`\lambda\mathbf{w}` for Adam's
L2 decay, :math:`\mathbf{w}' = (1 - \mathrm{lr}\,\lambda)\mathbf{w}` for AdamW's decoupled decay
(else :math:`\mathbf{w}`), and :math:`\hat{\mathbf{v}} = \max(\hat{\mathbf{v}}, \mathbf{v})` with
``amsgrad`` (else :math:`\mathbf{v}`). For SGD, :math:`\mathbf{d} = \pm\mathbf{g} + \lambda
\mathbf{w}`, the momentum buffer :math:`\mathbf{b} \leftarrow \mu\mathbf{b} + (1-\tau)\mathbf{d}`
(:math:`\mathbf{d}` on the first step), :math:`\mathbf{u} = \mathbf{w} - \mathrm{lr}\,(\mathbf{d} +
\mu\mathbf{b})` with ``nesterov``, else :math:`\mathbf{w} - \mathrm{lr}\,\mathbf{b}`.

The state is torch's own (created by the base's ``_init_group``, the same keys, dtypes and
devices), so a plain optimizer loads it and HAM loads a plain one's. Tensors HAM does not select
(biases, norms) get torch's fused base step alone. :class:`~torch.amp.GradScaler`'s ``grad_scale``
is divided out of the gradients (written back, as torch's fused kernels do) and ``found_inf``
leaves weights, state and step counts untouched, on the device. Hyper-parameters live in 0-dim
device tensors refilled in place when they change; ``lr`` may be a tensor: no host sync.

:func:`one_pass_refusal` says, in one line, why an optimizer cannot take the pass (then HAM runs
its separate step after the base's).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adam import adam as torch_adam
from torch.optim.sgd import sgd as torch_sgd

from pyg_ham.optim import functional
from pyg_ham.optim.functional import (
    FUSED_GROUP_SIZE,
    Scalar,
    _compile_errors,
    _device_scalar,
    _warn_unavailable,
    compute_dtype,
    found_inf_per_device,
    hyperbolic_step_,
)
from pyg_ham.optim.stats import ExponentStats

__all__ = ["one_pass_refusal", "one_pass_step", "fused_base_by_default", "ONE_PASS_BASES", "ONE_PASS_MIN_NUMEL"]

#: The base optimizers that get the one pass (exactly these classes: a subclass may change the step).
ONE_PASS_BASES: Tuple[type, ...] = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
#: Device types the compiled pass runs on (C++ on the CPU, Triton on CUDA).
ONE_PASS_DEVICE_TYPES = ("cpu", "cuda")
#: The one pass runs from this many elements HAM selects (the separate step's threshold for its
#: compiled path, :data:`~pyg_ham.optim.functional.FUSED_MIN_NUMEL`): below it the Python around a
#: compiled call costs more than the pass saves (measured: ogbn-arxiv's GraphSAGE, 218,664
#: parameters, 2.3x fused AdamW in one pass against 2.0-2.2x in two; README "Speed and memory").
ONE_PASS_MIN_NUMEL = functional.FUSED_MIN_NUMEL

#: ``selects(group, param)``: whether HAM steps :obj:`param` of :obj:`group` (HAM's own rule).
Selects = Callable[[Dict[str, Any], Tensor], bool]


def fused_base_by_default(cls: type, params: Sequence[Tensor]) -> bool:
    """Whether ``fused=None`` ("where the device and base allow") builds :obj:`cls` with
    ``fused=True``: one of :data:`ONE_PASS_BASES`, every parameter a plain floating tensor on a
    device of :data:`ONE_PASS_DEVICE_TYPES` (not a DTensor shard)."""
    return (cls in ONE_PASS_BASES and len(params) > 0
            and all(type(p) in (Tensor, torch.nn.Parameter) and p.is_floating_point()
                    and p.device.type in ONE_PASS_DEVICE_TYPES for p in params))


def one_pass_refusal(optimizer: Optimizer, implementation: Optional[str],
                     before_ham: int = 0, selected: Optional[int] = None) -> Optional[str]:
    r"""Why :obj:`optimizer` cannot take the one pass (:obj:`None`: it can).

    Args:
        optimizer (Optimizer): the base optimizer HAM is registered on.
        implementation (str, optional): HAM's ``implementation``: one given asks for the
            separate step with that implementation; :obj:`None` takes the one pass where it can.
        before_ham (int): the number of step post-hooks registered on the base before HAM's
            (they must see the weights between the two steps).
        selected (int, optional): the number of elements HAM selects (fewer than
            :data:`ONE_PASS_MIN_NUMEL`: two passes); :obj:`None` does not check it.
    """
    name = type(optimizer).__name__
    if type(optimizer) not in ONE_PASS_BASES:
        return f"{name} is not torch.optim.AdamW, Adam or SGD"
    if not all(group.get("fused") for group in optimizer.param_groups):
        return f"{name} was not built with fused=True"
    if implementation is not None:
        return f"implementation={implementation!r} asks for the separate step"
    if functional._kernels.unavailable:
        return "torch.compile is unavailable here"
    if selected is not None and selected < ONE_PASS_MIN_NUMEL:
        return (f"HAM selects {selected:,} elements, fewer than ONE_PASS_MIN_NUMEL = {ONE_PASS_MIN_NUMEL:,} "
                f"(the separate step costs less there)")
    if before_ham:
        return (f"{before_ham} step post-hook(s) registered on the base before HAM see the weights between "
                f"the base step and HAM's")
    for group in optimizer.param_groups:
        values = [group.get(key) for key in ("momentum", "dampening", "weight_decay", "eps")]
        if any(isinstance(v, Tensor) for v in values + list(group.get("betas", ()))):
            return "a param group holds a tensor hyper-parameter other than lr"
    return None


def _tensor_refusal(p: Tensor, g: Tensor) -> bool:
    """Whether one tensor must take the two passes (the compiled pass takes dense, contiguous,
    real, plain tensors on the CPU or CUDA; not a DTensor shard)."""
    plain = type(p) in (Tensor, torch.nn.Parameter) and type(g) is Tensor
    return (not plain or p.is_complex() or g.is_sparse or not (p.is_contiguous() and g.is_contiguous())
            or p.device.type not in ONE_PASS_DEVICE_TYPES)


class _Knobs:
    """One group's HAM knobs as the kernel takes them (``alpha`` signed for ``maximize``)."""

    __slots__ = ("alpha", "beta", "bound")

    def __init__(self, group: Dict[str, Any]) -> None:
        self.alpha = -group["ham_alpha"] if group.get("maximize", False) else group["ham_alpha"]
        self.beta = group["ham_beta"]
        bound = group["ham_max_exponent"]
        self.bound = math.inf if bound is None else bound


# ---------------------------------------------------------------------------------------------
# The compiled passes (flat tensors of static sizes, 0-dim device scalars, bool options that
# dynamo specializes). Each signature compiles its own copy (see functional._FusedKernels).
# ---------------------------------------------------------------------------------------------

def _ham_tail(u: Tensor, grad: Tensor, lr: Tensor, alpha: Tensor, beta: Tensor, bound: Tensor,
              largest: Tensor, count: Tensor, with_stats: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """HAM's step on the base-updated weight :obj:`u` (compute dtype), and the diagnostics."""
    geometric = alpha * torch.sign(u) * grad
    raw = -lr * (geometric + beta)
    new = u * torch.exp(torch.clamp(raw, -bound, bound))
    if with_stats:
        largest = torch.maximum(largest, (lr * geometric).abs().amax().to(largest.dtype))
        count = count + (raw.abs() >= bound).sum()
    return new, largest, count


def _raw_gradient(g: Tensor, dtype: torch.dtype, skip: Tensor, scale: Tensor, unscale: bool,
                  masked: bool) -> Tensor:
    """The raw gradient in the compute dtype: GradScaler's scale divided out and written back
    (not on a skipped step), as torch's fused kernels do."""
    grad = g.to(dtype)
    if unscale:
        grad = grad / scale
        g.copy_(torch.where(skip, g, grad.to(g.dtype)) if masked else grad.to(g.dtype))
    return grad


def _adam_pass(ws: List[Tensor], gs: List[Tensor], ms: List[Tensor], vs: List[Tensor], vmaxs: List[Tensor],
               steps: List[Tensor], coefs: List[Tensor], lr: Tensor, beta1: Tensor, beta2: Tensor, keep1: Tensor,
               keep2: Tensor, eps: Tensor, decay: Tensor, alpha: Tensor, beta: Tensor, bound: Tensor, skip: Tensor,
               scale: Tensor, top: Tensor, hits: Tensor, amsgrad: bool, decoupled: bool, maximize: bool,
               unscale: bool, masked: bool, with_stats: bool) -> None:
    # coefs[i] = (lr / (1 - beta1^t), sqrt(1 - beta2^t)) of tensor i's step t, computed before the
    # kernel (in float64): a scalar expression inside would be recomputed for every vector of elements.
    largest, count = top, hits
    for i in range(len(ws)):
        w, g, m, v = ws[i], gs[i], ms[i], vs[i]
        step_size, root = coefs[i][0], coefs[i][1]
        grad = _raw_gradient(g, lr.dtype, skip, scale, unscale, masked)
        d = -grad if maximize else grad
        p = w.to(lr.dtype)
        if decoupled:
            p = p * (1 - lr * decay)
        else:
            d = d + decay * p
        m_new = m.to(lr.dtype) * beta1 + d * keep1
        v_new = v.to(lr.dtype) * beta2 + d * d * keep2
        if amsgrad:
            v_hat = torch.maximum(vmaxs[i].to(lr.dtype), v_new)
            vmaxs[i].copy_(torch.where(skip, vmaxs[i].to(lr.dtype), v_hat) if masked else v_hat)
        else:
            v_hat = v_new
        u = p - step_size * m_new / (torch.sqrt(v_hat) / root + eps)
        new, largest, count = _ham_tail(u, grad, lr, alpha, beta, bound, largest, count, with_stats)
        if masked:
            new = torch.where(skip, w.to(lr.dtype), new)
            m_new = torch.where(skip, m.to(lr.dtype), m_new)
            v_new = torch.where(skip, v.to(lr.dtype), v_new)
        w.copy_(new)
        m.copy_(m_new)
        v.copy_(v_new)
        steps[i].copy_(torch.where(skip, steps[i], steps[i] + 1) if masked else steps[i] + 1)
    if with_stats:
        top.copy_(largest)
        hits.copy_(count)


def _adam_coefficients(steps: Sequence[Tensor], lr: Scalar, beta1: float, beta2: float,
                       dtype: torch.dtype) -> List[Tensor]:
    r"""Per tensor ``(lr / (1 - beta1^t), sqrt(1 - beta2^t))`` for its coming step :math:`t`, in
    float64 as torch's fused kernels, as rows of one small tensor (a few ops for all tensors)."""
    t = torch.stack(list(steps)).to(torch.float64) + 1
    if isinstance(lr, Tensor):
        lr = lr.to(device=t.device, dtype=torch.float64)
    step_size = lr / (1 - torch.pow(beta1, t))
    root = torch.sqrt(1 - torch.pow(beta2, t))
    return list(torch.stack([step_size, root], dim=1).to(dtype))


def _sgd_pass(ws: List[Tensor], gs: List[Tensor], bufs: List[Tensor], lr: Tensor, decay: Tensor,
              momentum: Tensor, dampening: Tensor, alpha: Tensor, beta: Tensor, bound: Tensor, skip: Tensor,
              scale: Tensor, top: Tensor, hits: Tensor, has_momentum: bool, first: bool, nesterov: bool,
              maximize: bool, unscale: bool, masked: bool, with_stats: bool) -> None:
    largest, count = top, hits
    for i in range(len(ws)):
        w, g = ws[i], gs[i]
        grad = _raw_gradient(g, lr.dtype, skip, scale, unscale, masked)
        d = -grad if maximize else grad
        p = w.to(lr.dtype)
        d = d + decay * p
        if has_momentum:
            b = d if first else bufs[i].to(lr.dtype) * momentum + (1 - dampening) * d
            d = d + momentum * b if nesterov else b
            bufs[i].copy_(torch.where(skip, bufs[i].to(lr.dtype), b) if masked else b)
        u = p - lr * d
        new, largest, count = _ham_tail(u, grad, lr, alpha, beta, bound, largest, count, with_stats)
        w.copy_(torch.where(skip, p, new) if masked else new)
    if with_stats:
        top.copy_(largest)
        hits.copy_(count)


# ---------------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------------

class _Call:
    """What one device-and-dtype share of a group needs: scalars, the skip flag, diagnostics."""

    def __init__(self, device: torch.device, dtype: torch.dtype, lr: Scalar, knobs: _Knobs,
                 skip: Optional[Tensor], scale: Optional[Tensor], stats: Optional[ExponentStats]) -> None:
        self.device, self.dtype, self.cd = device, dtype, compute_dtype(dtype)
        self.masked, self.unscale = skip is not None, scale is not None
        scalar = self.scalar
        self.lr = scalar("lr", lr)
        self.ham = (scalar("alpha", knobs.alpha), scalar("beta", knobs.beta), scalar("bound", knobs.bound),
                    skip if skip is not None else _device_scalar("no skip", False, device, torch.bool),
                    scale if scale is not None else scalar("one", 1.0, torch.float32))
        self.stats = stats
        self.accumulators = stats.begin(device) if stats is not None else (
            scalar("top", 0.0, torch.float32), _device_scalar("hits", 0, device, torch.int64))

    def scalar(self, role: str, value: Scalar, dtype: Optional[torch.dtype] = None) -> Tensor:
        return _device_scalar(role, value, self.device, dtype or self.cd)

    def options(self) -> Tuple[bool, bool, bool]:
        return self.unscale, self.masked, self.stats is not None

    def finish(self, skip: Optional[Tensor], clamped: int) -> None:
        if self.stats is not None:
            self.stats.end(self.device, skip, clamped)


def _run(source: Callable[..., None], call: _Call, lists: Sequence[Sequence[Tensor]], extra: Tuple[Any, ...],
         options: Tuple[bool, ...]) -> List[int]:
    """Run :obj:`source` compiled over the tensors, :data:`FUSED_GROUP_SIZE` per call; return the
    indices it stepped (the rest: signatures beyond the cache, or compilation failed).

    :obj:`lists` are per-tensor lists (weights first; 0-dim step counts are passed as they are,
    the others flat); an empty list stays empty."""
    errors = _compile_errors()
    stepped: List[int] = []
    n = len(lists[0])
    for start in range(0, n, FUSED_GROUP_SIZE):
        idx = range(start, min(start + FUSED_GROUP_SIZE, n))
        signature = (call.device, call.dtype, options, tuple(lists[0][i].numel() for i in idx))
        kernel = functional._kernels.get(signature, source)
        if kernel is None:
            continue
        args = [[t if t.dim() == 0 else t.view(-1).detach() for t in (lst[i] for i in idx)] if lst else []
                for lst in lists]
        try:
            kernel(*args, *extra, *options)
        except errors as exc:  # raised while compiling, before the kernel wrote anything
            _warn_unavailable(exc)
            return stepped
        stepped += idx
    return stepped


def one_pass_step(optimizer: Optimizer, selects: Selects, stats: Optional[ExponentStats] = None) -> None:
    r"""The base step of :obj:`optimizer` (``fused=True`` AdamW/Adam/SGD, see
    :func:`one_pass_refusal`) and HAM's step on the tensors :obj:`selects` picks, in one pass.

    Reads ``grad_scale``/``found_inf`` from the optimizer as the base step would.

    Args:
        optimizer (Optimizer): the base optimizer.
        selects (callable): ``selects(group, param)``: whether HAM steps :obj:`param`.
        stats (ExponentStats, optional): also accumulate the exponent's diagnostics (this step).
    """
    grad_scale: Optional[Tensor] = getattr(optimizer, "grad_scale", None)
    found_inf: Optional[Tensor] = getattr(optimizer, "found_inf", None)
    adam = isinstance(optimizer, torch.optim.Adam)
    with torch.no_grad():
        for group in optimizer.param_groups:
            (_adam_group if adam else _sgd_group)(optimizer, group, selects, grad_scale, found_inf, stats)


def _split(group: Dict[str, Any], params: Sequence[Tensor], grads: Sequence[Tensor], selects: Selects
           ) -> Tuple[List[int], List[int]]:
    """Indices the one pass takes (selected by HAM and eligible) and the others."""
    one: List[int] = []
    rest: List[int] = []
    for i, (p, g) in enumerate(zip(params, grads)):
        (one if selects(group, p) and not _tensor_refusal(p, g) else rest).append(i)
    return one, rest


def _by_device_dtype(indices: Sequence[int], params: Sequence[Tensor]) -> Dict[Tuple[torch.device, torch.dtype],
                                                                               List[int]]:
    out: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
    for i in indices:
        out.setdefault((params[i].device, params[i].dtype), []).append(i)
    return out


def _pick(lst: Sequence[Any], idx: Sequence[int]) -> List[Any]:
    return [lst[i] for i in idx]


def _compiled_calls(source: Callable[..., None], arguments: Callable[..., Tuple[Any, Any, Any]],
                    params: Sequence[Tensor], one: Sequence[int], lr: Scalar, knobs: _Knobs,
                    grad_scale: Optional[Tensor], found_inf: Optional[Tensor], stats: Optional[ExponentStats]
                    ) -> List[int]:
    """Run :obj:`source` over the tensors :obj:`one` of a group, per device and dtype, with the
    kernel arguments :obj:`arguments(call, indices)` gives; return the indices it did not step."""
    flags = found_inf_per_device(found_inf, (params[i].device for i in one))
    scales = found_inf_per_device(grad_scale, (params[i].device for i in one))
    left: List[int] = []
    for (device, dtype), idx in _by_device_dtype(one, params).items():
        skip = flags[device] > 0 if device in flags else None
        call = _Call(device, dtype, lr, knobs, skip, scales.get(device), stats)
        extra, options, lists = arguments(call, idx)
        done = set(_run(source, call, lists, extra, options))
        call.finish(skip, sum(params[i].numel() for j, i in enumerate(idx) if j in done)
                    if math.isfinite(knobs.bound) else 0)
        left += [i for j, i in enumerate(idx) if j not in done]
    return left


def _adam_group(optimizer: Any, group: Dict[str, Any], selects: Selects, grad_scale: Optional[Tensor],
                found_inf: Optional[Tensor], stats: Optional[ExponentStats]) -> None:
    params: List[Tensor] = []
    grads: List[Tensor] = []
    ms: List[Tensor] = []
    vs: List[Tensor] = []
    vmaxs: List[Tensor] = []
    steps: List[Tensor] = []
    optimizer._init_group(group, params, grads, ms, vs, vmaxs, steps)
    if not params:
        return
    amsgrad = group["amsgrad"]
    one, rest = _split(group, params, grads, selects)
    beta1, beta2 = group["betas"]
    knobs = _Knobs(group)
    lr = group["lr"]

    def arguments(call: _Call, idx: List[int]) -> Tuple[Tuple[Any, ...], Tuple[bool, ...], List[List[Tensor]]]:
        extra = (call.lr, call.scalar("beta1", beta1), call.scalar("beta2", beta2), call.scalar("1-beta1", 1 - beta1),
                 call.scalar("1-beta2", 1 - beta2), call.scalar("eps", group["eps"]),
                 call.scalar("decay", group["weight_decay"]), *call.ham, *call.accumulators)
        options = (amsgrad, group["decoupled_weight_decay"], group["maximize"], *call.options())
        lists = [_pick(params, idx), _pick(grads, idx), _pick(ms, idx), _pick(vs, idx),
                 _pick(vmaxs, idx) if amsgrad else [], _pick(steps, idx),
                 _adam_coefficients(_pick(steps, idx), lr, beta1, beta2, call.cd)]
        return extra, options, lists

    rest += _compiled_calls(_adam_pass, arguments, params, one, lr, knobs, grad_scale, found_inf, stats)
    if rest:
        rest.sort()
        torch_adam(
            _pick(params, rest), _pick(grads, rest), _pick(ms, rest), _pick(vs, rest),
            _pick(vmaxs, rest) if amsgrad else [], _pick(steps, rest), amsgrad=amsgrad, beta1=beta1, beta2=beta2,
            lr=lr, weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"], fused=True,
            grad_scale=grad_scale, found_inf=found_inf, decoupled_weight_decay=group["decoupled_weight_decay"],
            has_complex=any(params[i].is_complex() for i in rest))
        _separate_ham(group, knobs, _pick(params, rest), _pick(grads, rest), selects, found_inf, stats)


def _sgd_group(optimizer: Any, group: Dict[str, Any], selects: Selects, grad_scale: Optional[Tensor],
               found_inf: Optional[Tensor], stats: Optional[ExponentStats]) -> None:
    params: List[Tensor] = []
    grads: List[Tensor] = []
    bufs: List[Optional[Tensor]] = []
    has_sparse = optimizer._init_group(group, params, grads, bufs)
    if not params:
        return
    momentum = group["momentum"]
    if momentum == 0:
        bufs = [None] * len(params)  # torch keeps no buffers then
    first = momentum != 0 and all(b is None for b in bufs)
    if first:
        bufs = [torch.empty_like(g) for g in grads]  # as torch's fused SGD: filled by the first step
    mixed = momentum != 0 and any(b is None for b in bufs)
    one, rest = ([], list(range(len(params)))) if has_sparse or mixed else _split(group, params, grads, selects)
    knobs = _Knobs(group)
    lr = group["lr"]

    def arguments(call: _Call, idx: List[int]) -> Tuple[Tuple[Any, ...], Tuple[bool, ...], List[List[Any]]]:
        extra = (call.lr, call.scalar("decay", group["weight_decay"]), call.scalar("momentum", momentum),
                 call.scalar("dampening", group["dampening"]), *call.ham, *call.accumulators)
        options = (momentum != 0, first, group["nesterov"], group["maximize"], *call.options())
        lists = [_pick(params, idx), _pick(grads, idx), _pick(bufs, idx) if momentum != 0 else []]
        return extra, options, lists

    rest += _compiled_calls(_sgd_pass, arguments, params, one, lr, knobs, grad_scale, found_inf, stats)
    if rest:
        rest.sort()
        rest_bufs: List[Optional[Tensor]] = _pick(bufs, rest)
        if first:
            rest_bufs = [None] * len(rest)  # torch's first step creates and fills them
        torch_sgd(
            _pick(params, rest), _pick(grads, rest), rest_bufs, weight_decay=group["weight_decay"],
            momentum=momentum, lr=lr, dampening=group["dampening"], nesterov=group["nesterov"],
            maximize=group["maximize"], has_sparse_grad=has_sparse, fused=True, grad_scale=grad_scale,
            found_inf=found_inf)
        for j, i in enumerate(rest):
            bufs[i] = rest_bufs[j]
        _separate_ham(group, knobs, _pick(params, rest), _pick(grads, rest), selects, found_inf, stats)
    if momentum != 0:
        for p, b in zip(params, bufs):
            optimizer.state[p]["momentum_buffer"] = b


def _separate_ham(group: Dict[str, Any], knobs: _Knobs, params: Sequence[Tensor], grads: Sequence[Tensor],
                  selects: Selects, found_inf: Optional[Tensor], stats: Optional[ExponentStats]) -> None:
    """HAM's separate step on the selected tensors the one pass did not take."""
    pairs = [(p, g) for p, g in zip(params, grads) if selects(group, p) and not g.is_sparse]
    if not pairs:
        return
    ws = [torch.view_as_real(p) if p.is_complex() else p for p, _ in pairs]
    gs = [torch.view_as_real(g) if g.is_complex() else g for _, g in pairs]
    hyperbolic_step_(ws, gs, group["lr"], knobs.alpha, knobs.beta,
                     max_exponent=None if math.isinf(knobs.bound) else knobs.bound, found_inf=found_inf,
                     stats=stats)
