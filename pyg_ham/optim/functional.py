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
* ``"foreach"``: ``torch._foreach_*`` kernels over lists grouped by (device, dtype); on CPU
  applied in chunks of at most ``chunk_numel`` elements through one reused scratch buffer, so
  that its memory stays bounded and cache-resident, elsewhere in one pass over the whole list
  (see :func:`foreach_chunk_plan`),
* ``"fused"``: a :func:`torch.compile`-d single pass per tensor (reads :math:`\mathbf{w}` and
  :math:`\mathbf{g}` once, writes :math:`\mathbf{w}` once, allocates nothing), called on
  :data:`FUSED_ARITY` tensors at a time with a symbolic size each: one graph per
  (device, dtype) serves every shape and list length. It falls back
  to ``"foreach"`` with one warning when compilation fails; an error raised while the
  compiled step runs propagates.

Under :func:`torch.compile` of a training step every implementation emits the plain
per-tensor expression, which the surrounding compilation fuses into one kernel per tensor.

For ``float16``/``bfloat16`` weights every path computes the exponent and ``exp`` in
``float32`` (``lr``, ``alpha`` and ``beta`` stay ``float32`` too) and rounds once, when it
writes the weight. ``DTensor`` parameters (FSDP2) are stepped on their local shards.

No path synchronises the device with the host: ``lr`` may be a float or a tensor, and a
step skipped by :class:`torch.amp.GradScaler` (``found_inf`` > 0) is masked on the device,
with the flag copied once to each device that holds parameters (see :func:`found_inf_per_device`).
"""
from __future__ import annotations

import contextlib
import math
import sys
import types
import warnings
from collections import OrderedDict, defaultdict
from typing import Callable, ContextManager, Dict, Iterable, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import Tensor

from pyg_ham.optim.sharding import local_shards

__all__ = ["hyperbolic_step_", "foreach_chunk_plan", "found_inf_per_device", "compute_dtype", "IMPLEMENTATIONS",
           "DEFAULT_CHUNK_NUMEL", "FUSED_MIN_NUMEL", "FUSED_ARITY"]

Scalar = Union[float, Tensor]
#: One chunk of the foreach plan: ``(tensor index, start, stop)`` flat element ranges.
Chunk = List[Tuple[int, int, int]]

#: The available implementations of the step.
IMPLEMENTATIONS = ("for-loop", "foreach", "fused")
#: Largest number of elements the foreach path processes at once on CPU: its only temporary is
#: a scratch buffer of this many elements (1 MiB in float32, which stays in a CPU's L2/L3 cache).
DEFAULT_CHUNK_NUMEL = 1 << 18
#: With ``implementation=None``, the fused path is used from this many elements on (below it,
#: a one-off compilation costs more than it saves over a short run).
FUSED_MIN_NUMEL = 4_000_000
#: Device types whose foreach path is chunked (for their caches); elsewhere chunking only
#: multiplies kernel launches.
CHUNKED_DEVICE_TYPES = ("cpu",)
#: Tensors per call of the compiled kernel: each call costs its dispatch and an OpenMP region (~0.3 ms,
#: 2 threads, benchmarks/fused_dispatch.py), which this many tensors share; shorter lists are padded.
FUSED_ARITY = 16

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    r"""The dtype the step computes in for weights of :obj:`dtype`: ``float32`` for
    ``float16``/``bfloat16`` (whose range and precision :math:`\alpha g` and :math:`\eta`
    exceed), else :obj:`dtype` itself."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def foreach_chunk_plan(device_type: str, numels: Sequence[int], chunk_numel: int = DEFAULT_CHUNK_NUMEL,
                       splittable: Optional[Sequence[bool]] = None) -> List[Chunk]:
    r"""How the foreach path cuts a list of tensors into chunks: a pure function of the
    device type and the sizes.

    On a device type in :data:`CHUNKED_DEVICE_TYPES` (CPU) every chunk holds at most
    :obj:`chunk_numel` elements: a splittable tensor larger than that is cut into flat ranges,
    small tensors are batched together, and a non-splittable (non-contiguous) tensor larger
    than :obj:`chunk_numel` forms a chunk of its own. On any other device (CUDA, ...) the
    whole list is one chunk: one launch per ``torch._foreach_*`` op.

    Args:
        device_type (str): ``"cpu"``, ``"cuda"``, ...
        numels (Sequence[int]): the number of elements of each tensor.
        chunk_numel (int): the largest chunk on CPU. (default: :data:`DEFAULT_CHUNK_NUMEL`)
        splittable (Sequence[bool], optional): whether each tensor may be cut into flat
            ranges (contiguous weight and gradient). (default: all :obj:`True`)

    Returns:
        List[List[Tuple[int, int, int]]]: the chunks, each a list of
        ``(tensor index, start, stop)`` flat element ranges; together they cover every element
        of every tensor exactly once, in order.
    """
    if chunk_numel < 1:
        raise ValueError(f"foreach_chunk_plan: chunk_numel must be >= 1, got {chunk_numel}")
    if device_type not in CHUNKED_DEVICE_TYPES or sum(numels) <= chunk_numel:
        return [[(i, 0, n) for i, n in enumerate(numels)]] if len(numels) else []
    splittable = [True] * len(numels) if splittable is None else splittable
    out: List[Chunk] = []
    chunk: Chunk = []
    size = 0
    for i, (n, split) in enumerate(zip(numels, splittable)):
        if n > chunk_numel and split:
            pieces = [(start, min(start + chunk_numel, n)) for start in range(0, n, chunk_numel)]
        else:
            pieces = [(0, n)]
        for start, stop in pieces:
            if chunk and size + stop - start > chunk_numel:
                out.append(chunk)
                chunk, size = [], 0
            chunk.append((i, start, stop))
            size += stop - start
    if chunk:
        out.append(chunk)
    return out


def found_inf_per_device(found_inf: Optional[Tensor], devices: Iterable[torch.device]) -> Dict[torch.device, Tensor]:
    r""":class:`~torch.amp.GradScaler`'s ``found_inf`` flag on every device that holds
    parameters, as torch's fused optimizers keep it: the flag itself on its own device and one
    non-blocking copy per other device (not one per tensor or per step of a loop).

    Args:
        found_inf (Tensor, optional): the flag (positive: skip the step), on any device.
        devices (iterable of torch.device): the devices of the parameters (repeats allowed).

    Returns:
        Dict[torch.device, Tensor]: device -> the flag on that device (empty for :obj:`None`).
    """
    out: Dict[torch.device, Tensor] = {}
    if found_inf is None:
        return out
    out[found_inf.device] = found_inf
    for device in devices:
        device = torch.device(device)
        if device not in out:
            out[device] = found_inf.to(device, non_blocking=True)
    return out


def _exponent(w: Tensor, g: Tensor, lr: Scalar, alpha: float, beta: float,
              max_exponent: Optional[float]) -> Tensor:
    """``-lr * (alpha * sign(w) * g + beta)`` in the compute dtype, optionally clamped."""
    cd = compute_dtype(w.dtype)
    e = torch.sign(w) if w.dtype == cd else w.to(cd).sign_()
    if isinstance(lr, Tensor):
        lr = lr.to(device=w.device, dtype=cd)
    e = e.mul_(g).mul_(alpha).add_(beta).mul_(-lr)
    if max_exponent is not None:
        e.clamp_(-max_exponent, max_exponent)
    return e


def _single_tensor_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar,
                         alpha: float, beta: float, max_exponent: Optional[float],
                         skip: Optional[Tensor]) -> None:
    for w, g in zip(params, grads):
        e = _exponent(w, g, lr, alpha, beta, max_exponent)
        if skip is not None:
            e.masked_fill_(skip, 0.0)  # a fill, so inf/NaN gradients leave no NaN behind
        w.mul_(e.exp_())  # in the compute dtype, rounded once to the weight's dtype


def _expression_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float,
                      beta: float, max_exponent: Optional[float], skip: Optional[Tensor]) -> None:
    # The plain out-of-place expression, for a surrounding torch.compile to fuse (one kernel
    # per tensor, no foreach fallback, no scratch buffer).
    for w, g in zip(params, grads):
        cd = compute_dtype(w.dtype)
        e = -lr * (alpha * torch.sign(w).to(cd) * g.to(cd) + beta)
        if max_exponent is not None:
            e = torch.clamp(e, -max_exponent, max_exponent)
        if skip is not None:
            e = torch.where(skip, 0.0, e)
        w.copy_(w.to(cd) * torch.exp(e))


def _foreach_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float,
                   beta: float, max_exponent: Optional[float], skip: Optional[Tensor],
                   chunk_numel: int) -> None:
    # e = -lr*alpha*sign(w)*g - lr*beta, computed chunk by chunk in one reused scratch buffer
    # (of the compute dtype): a fresh allocation per chunk costs page faults that dominate on
    # CPU, and a chunk that fits the cache keeps the intermediate passes off main memory.
    device, cd = params[0].device, compute_dtype(params[0].dtype)
    if isinstance(lr, Tensor):
        lr = lr.to(device=device, dtype=cd)
    scale: Scalar = lr * (-alpha)
    shift: Scalar = lr * (-beta)
    numels = [w.numel() for w in params]
    splittable = [n <= chunk_numel or (w.is_contiguous() and g.is_contiguous())
                  for n, w, g in zip(numels, params, grads)]
    plan = foreach_chunk_plan(device.type, numels, chunk_numel, splittable)
    scratch = torch.empty(max(sum(b - a for _, a, b in chunk) for chunk in plan), dtype=cd, device=device)
    for chunk in plan:
        ws, gs, es, offset = [], [], [], 0
        for i, start, stop in chunk:
            w, g = params[i], grads[i]
            if stop - start != numels[i]:
                w, g = w.view(-1)[start:stop], g.view(-1)[start:stop]
            ws.append(w)
            gs.append(g)
            es.append(scratch[offset:offset + stop - start].view_as(w))
            offset += stop - start
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


def _fused_kernel(ws: List[Tensor], gs: List[Tensor], lr: Tensor, alpha: Tensor, beta: Tensor,
                  max_exponent: Tensor, skip: Tensor) -> None:
    # FUSED_ARITY flat tensors; the scalars are 0-dim tensors of the compute dtype.
    for w, g in zip(ws, gs):
        e = -lr * (alpha * torch.sign(w).to(lr.dtype) * g.to(lr.dtype) + beta)
        e = torch.clamp(e, -max_exponent, max_exponent)
        e = torch.where(skip, torch.zeros_like(e), e)
        w.copy_(w.to(lr.dtype) * torch.exp(e))


#: (device, dtype) -> the compiled kernel. Each has its own code object, hence its own
#: compilation cache and recompile limit. Every call takes exactly :data:`FUSED_ARITY` flat
#: tensors, each with its own symbolic size, so one graph serves every shape, list length and model.
_compiled_kernels: Dict[Tuple[torch.device, torch.dtype], Callable[..., None]] = {}
_fused_unavailable = False
#: (device, dtype, arity) -> distinct zero tensors that fill a call's unused slots (distinct,
#: since aliased inputs would be guarded on; zeros, which the step keeps at zero).
_padding: Dict[Tuple[torch.device, torch.dtype, int], Tuple[List[Tensor], List[Tensor]]] = {}
#: (value, device, dtype) -> 0-dim tensor: constant hyper-parameters cost no host->device copy.
_scalar_cache: "OrderedDict[Tuple[object, ...], Tensor]" = OrderedDict()
_SCALAR_CACHE_SIZE = 64


def _compiled_kernel_for(device: torch.device, dtype: torch.dtype) -> Callable[..., None]:
    kernel = _compiled_kernels.get((device, dtype))
    if kernel is None:
        name = f"_fused_kernel_{device.type}{device.index if device.index is not None else ''}_" \
               f"{str(dtype).replace('torch.', '')}"
        names: Dict[str, str] = {"co_name": name}
        if sys.version_info >= (3, 11):
            names["co_qualname"] = name
        code = _fused_kernel.__code__.replace(**names)  # type: ignore[arg-type]
        # dynamic_threads: every loop gets a parallel region and OpenMP decides at run time
        # (inductor otherwise decides at compile time from the first call's sizes: a first call
        # on small tensors would leave every later large one on one thread)
        kernel = torch.compile(types.FunctionType(code, _fused_kernel.__globals__, name), dynamic=True,
                               fullgraph=True, options={"cpp.dynamic_threads": True})
        _compiled_kernels[(device, dtype)] = kernel
    return kernel


def _padding_for(device: torch.device, dtype: torch.dtype, arity: int) -> Tuple[List[Tensor], List[Tensor]]:
    pad = _padding.get((device, dtype, arity))
    if pad is None:
        pad = ([torch.zeros(2, dtype=dtype, device=device) for _ in range(arity)],
               [torch.zeros(2, dtype=dtype, device=device) for _ in range(arity)])
        _padding[(device, dtype, arity)] = pad
    return pad


def _own_size_symbols() -> ContextManager[object]:
    """Give every input size its own symbol when compiling: by default equal sizes share one
    ("duck shaping"), and a later call where they differ would compile another graph."""
    try:
        import torch.fx.experimental._config as fx_config
        return fx_config.patch(use_duck_shape=False)  # type: ignore[attr-defined]
    except (ImportError, AttributeError):  # pragma: no cover - a torch without the option
        return contextlib.nullcontext()


def _device_scalar(value: Scalar, device: torch.device, dtype: torch.dtype) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(device=device, dtype=dtype)
    key = (float(value), device, dtype)
    t = _scalar_cache.get(key)
    if t is None:
        t = torch.tensor(float(value), dtype=dtype, device=device)
        _scalar_cache[key] = t
        if len(_scalar_cache) > _SCALAR_CACHE_SIZE:
            _scalar_cache.popitem(last=False)
    else:
        _scalar_cache.move_to_end(key)
    return t


def _compile_errors() -> Tuple[Type[BaseException], ...]:
    """Exceptions that mean "this could not be compiled" (raised before the kernel runs)."""
    import torch._dynamo.exc as dynamo_exc
    import torch._inductor.exc as inductor_exc
    return (dynamo_exc.TorchDynamoException, dynamo_exc.FailOnRecompileLimitHit, inductor_exc.CppCompileError,
            inductor_exc.InvalidCxxCompiler, inductor_exc.OperatorIssue)


def _warn_unavailable(exc: BaseException) -> None:
    global _fused_unavailable
    _fused_unavailable = True
    warnings.warn(f"pyg_ham: the fused (compiled) HAM step is unavailable here ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); using the foreach path instead.",
                  RuntimeWarning, stacklevel=4)


def _fused_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float, beta: float,
                 max_exponent: Optional[float], skip: Optional[Tensor]) -> List[int]:
    """Run the compiled pass, :data:`FUSED_ARITY` tensors per call; return the indices of the
    tensors it stepped (all of them but after a compilation failure, which warns once).

    Tensors the kernel does not take (non-contiguous, or under 2 elements, whose sizes would be
    specialised on) are left to the caller, as are those after a compilation failure."""
    if _fused_unavailable:
        return []
    device, dtype = params[0].device, params[0].dtype
    try:
        kernel = _compiled_kernel_for(device, dtype)
        errors = _compile_errors()
    except Exception as exc:  # torch.compile itself unavailable (unsupported Python, ...)
        _warn_unavailable(exc)
        return []
    cd = compute_dtype(dtype)
    scalars = (_device_scalar(lr, device, cd), _device_scalar(alpha, device, cd), _device_scalar(beta, device, cd),
               _device_scalar(math.inf if max_exponent is None else max_exponent, device, cd))
    flag = skip if skip is not None else _device_scalar(0.0, device, torch.bool)
    eligible = [i for i, (w, g) in enumerate(zip(params, grads))
                if w.numel() >= 2 and w.is_contiguous() and g.is_contiguous()]
    pad_ws, pad_gs = _padding_for(device, dtype, FUSED_ARITY)
    for start in range(0, len(eligible), FUSED_ARITY):
        call = eligible[start:start + FUSED_ARITY]
        # flat aliases that are not views (no ``_base`` for the compiled graph to guard on)
        ws = [params[i].view(-1).detach() for i in call] + pad_ws[len(call):]
        gs = [grads[i].view(-1).detach() for i in call] + pad_gs[len(call):]
        try:
            with _own_size_symbols():
                kernel(ws, gs, *scalars, flag)
        except errors as exc:  # raised while compiling, before the kernel wrote anything
            _warn_unavailable(exc)
            return eligible[:start]
    return eligible


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
        params (Sequence[Tensor]): the weights after the base step, updated in place; plain
            tensors or :class:`~torch.distributed.tensor.DTensor` (FSDP2), stepped on their
            local shards.
        grads (Sequence[Tensor]): the (unscaled) gradients the base step used, one per weight.
        lr (float or Tensor): the learning rate :math:`\eta` (a 0-dim tensor avoids
            recompilation under :func:`torch.compile` when a scheduler changes it).
        alpha (float): strength :math:`\alpha \geq 0` of the hyperbolic geometry.
        beta (float): multiplicative decay :math:`\beta \geq 0`.
        max_exponent (float, optional): clamp the exponent to
            :math:`[-\text{max\_exponent}, \text{max\_exponent}]` (the authors' wrapper uses 5).
            (default: :obj:`None`, no clamp: the paper's update)
        found_inf (Tensor, optional): a :class:`~torch.amp.GradScaler` inf/NaN flag, on any
            device; where it is positive the step leaves the weights unchanged, without a host
            sync and without turning zeros into NaN. (default: :obj:`None`)
        implementation (str, optional): ``"for-loop"``, ``"foreach"`` or ``"fused"``;
            :obj:`None` picks ``"fused"`` for at least :data:`FUSED_MIN_NUMEL` (local)
            elements where :func:`torch.compile` works, else ``"foreach"``. Inside a
            :func:`torch.compile`-d function every choice emits the plain expression.
            (default: :obj:`None`)
        chunk_numel (int): largest number of elements the foreach path treats at once on CPU;
            its scratch buffer has this size. (default: :data:`DEFAULT_CHUNK_NUMEL`)

    Memory: the for-loop path allocates one temporary the size of the largest tensor, the
    foreach path one scratch buffer of ``chunk_numel`` elements on CPU (more only for a
    non-contiguous tensor larger than that) and one as large as the (device, dtype) group on
    other devices, the fused path nothing (temporaries are in ``float32`` for
    ``float16``/``bfloat16`` weights).
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
    params, grads = local_shards(params, grads)
    for w, g in zip(params, grads):
        if w.shape != g.shape:
            raise ValueError(f"hyperbolic_step_: a weight of shape {tuple(w.shape)} got a gradient of shape "
                             f"{tuple(g.shape)}; pass each weight's own gradient")
    groups = _group_by_device_dtype(params, grads)
    flags = found_inf_per_device(found_inf, (device for device, _ in groups))
    skips = {device: flag > 0 for device, flag in flags.items()}
    compiling = torch.compiler.is_compiling()
    impl = implementation or _default_implementation(params)
    for (device, _), (ws, gs) in groups.items():
        skip = skips.get(device)
        if compiling:
            _expression_step_(ws, gs, lr, alpha, beta, max_exponent, skip)
            continue
        if impl == "fused":
            stepped = set(_fused_step_(ws, gs, lr, alpha, beta, max_exponent, skip))
            ws = [w for i, w in enumerate(ws) if i not in stepped]
            gs = [g for i, g in enumerate(gs) if i not in stepped]
            if not ws:
                continue
        if impl == "for-loop":
            _single_tensor_step_(ws, gs, lr, alpha, beta, max_exponent, skip)
        else:
            _foreach_step_(ws, gs, lr, alpha, beta, max_exponent, skip, chunk_numel)
