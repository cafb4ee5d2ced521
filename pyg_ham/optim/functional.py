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
* ``"foreach"``: ``torch._foreach_*`` kernels over lists grouped by (device, dtype), applied in
  chunks through one reused scratch buffer of bounded size (see :func:`foreach_chunk_plan`):
  on CPU chunks of ``chunk_numel`` elements that stay cache-resident, elsewhere of at most
  :data:`DEVICE_CHUNK_NUMEL` elements,
* ``"fused"``: a :func:`torch.compile`-d single pass (reads :math:`\mathbf{w}` and
  :math:`\mathbf{g}` once, writes :math:`\mathbf{w}` once, allocates nothing), compiled with
  static shapes for each *signature* (device, dtype and the sizes of up to
  :data:`FUSED_GROUP_SIZE` tensors stepped in one call). Every signature gets its own code
  object, so no compilation is ever repeated (no recompile limit to run into), and at most
  :data:`FUSED_CACHE_SIZE` signatures are compiled per process; tensors of further signatures
  take the foreach path. It falls back to ``"foreach"`` with one warning when compilation
  fails; an error raised while the compiled step runs propagates.

Under :func:`torch.compile` of a training step every implementation emits the plain
per-tensor expression, which the surrounding compilation fuses into one kernel per tensor.

For ``float16``/``bfloat16`` weights every path computes the exponent and ``exp`` in
``float32`` (``lr``, ``alpha`` and ``beta`` stay ``float32`` too) and rounds once, when it
writes the weight. ``DTensor`` parameters (FSDP2) are stepped on their local shards.

No path synchronises the device with the host or copies a Python number to the device per
step: ``lr`` may be a float or a tensor; the fused path keeps its hyper-parameters in
0-dim device tensors that are refilled in place (a kernel launch, no transfer) when a value
changes; a step skipped by :class:`torch.amp.GradScaler` (``found_inf`` > 0) is masked on the
device, with the flag copied once to each device that holds parameters (see
:func:`found_inf_per_device`). With ``stats`` (:class:`~pyg_ham.optim.ExponentStats`) every
path also accumulates the exponent's diagnostics inside the same pass, on the device.
"""
from __future__ import annotations

import math
import sys
import types
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import Tensor

from pyg_ham.optim.sharding import local_shards

if TYPE_CHECKING:
    from pyg_ham.optim.stats import ExponentStats

__all__ = ["hyperbolic_step_", "foreach_chunk_plan", "found_inf_per_device", "compute_dtype", "IMPLEMENTATIONS",
           "DEFAULT_CHUNK_NUMEL", "DEVICE_CHUNK_NUMEL", "FUSED_MIN_NUMEL", "FUSED_GROUP_SIZE", "FUSED_CACHE_SIZE"]

Scalar = Union[float, Tensor]
#: One chunk of the foreach plan: ``(tensor index, start, stop)`` flat element ranges.
Chunk = List[Tuple[int, int, int]]

#: The available implementations of the step.
IMPLEMENTATIONS = ("for-loop", "foreach", "fused")
#: Largest number of elements the foreach path processes at once on CPU: its only temporary is
#: a scratch buffer of this many elements (1 MiB in float32, which stays in a CPU's L2/L3 cache).
DEFAULT_CHUNK_NUMEL = 1 << 18
#: Largest chunk of the foreach path on other devices (CUDA, ...): few launches per op, and a
#: scratch buffer of at most this many elements (or the largest non-contiguous tensor).
DEVICE_CHUNK_NUMEL = 1 << 26
#: With ``implementation=None``, the fused path is used from this many elements on (below it,
#: a one-off compilation costs more than it saves over a short run).
FUSED_MIN_NUMEL = 4_000_000
#: Device types whose foreach chunks are sized for the cache (``chunk_numel``).
CHUNKED_DEVICE_TYPES = ("cpu",)
#: At most this many tensors are stepped by one call of a compiled kernel: one call costs its
#: dispatch and one parallel region, which its tensors share; more would make compilation slow.
FUSED_GROUP_SIZE = 16
#: At most this many signatures are compiled per process (each once, with static shapes);
#: a real model has a handful. Tensors of further signatures take the foreach path.
FUSED_CACHE_SIZE = 64

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

    Every chunk holds at most :obj:`chunk_numel` elements on a device type in
    :data:`CHUNKED_DEVICE_TYPES` (CPU) and at most ``max(chunk_numel, DEVICE_CHUNK_NUMEL)``
    elsewhere: a splittable tensor larger than that is cut into flat ranges, small tensors are
    batched together, and a non-splittable (non-contiguous) tensor larger than that forms a
    chunk of its own. The foreach path's scratch buffer is as large as the largest chunk.

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
    if device_type not in CHUNKED_DEVICE_TYPES:
        chunk_numel = max(chunk_numel, DEVICE_CHUNK_NUMEL)
    if sum(numels) <= chunk_numel:
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


def _exponent(w: Tensor, g: Tensor, lr: Scalar, alpha: float, beta: float, max_exponent: Optional[float],
              stats: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """``-lr * (alpha * sign(w) * g + beta)`` in the compute dtype, optionally clamped; with
    :obj:`stats` (this step's ``(largest, hits)``) also the largest ``|lr alpha sign(w) g|`` and
    the count of ``|e| >= max_exponent``, read off the same intermediate values."""
    cd = compute_dtype(w.dtype)
    e = torch.sign(w) if w.dtype == cd else w.to(cd).sign_()
    if isinstance(lr, Tensor):
        lr = lr.to(device=w.device, dtype=cd)
    e = e.mul_(g).mul_(alpha)
    if stats is not None and e.numel():
        torch.maximum(stats[0], (e * lr).abs_().amax().to(stats[0].dtype), out=stats[0])
    e = e.add_(beta).mul_(-lr)
    if max_exponent is not None:
        if stats is not None:
            stats[1].add_((e.abs() >= max_exponent).sum())
        e.clamp_(-max_exponent, max_exponent)
    return e


def _single_tensor_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float, beta: float,
                         max_exponent: Optional[float], skip: Optional[Tensor],
                         stats: Optional[Tuple[Tensor, Tensor]]) -> None:
    for w, g in zip(params, grads):
        e = _exponent(w, g, lr, alpha, beta, max_exponent, stats)
        if skip is not None:
            e.masked_fill_(skip, 0.0)  # a fill, so inf/NaN gradients leave no NaN behind
        w.mul_(e.exp_())  # in the compute dtype, rounded once to the weight's dtype


def _expression_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float, beta: float,
                      max_exponent: Optional[float], skip: Optional[Tensor]) -> None:
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


def _foreach_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float, beta: float,
                   max_exponent: Optional[float], skip: Optional[Tensor], chunk_numel: int,
                   stats: Optional[Tuple[Tensor, Tensor]]) -> None:
    # e = -lr*alpha*sign(w)*g - lr*beta, computed chunk by chunk in one reused scratch buffer
    # (of the compute dtype): a fresh allocation per chunk costs page faults that dominate on
    # CPU, and a chunk that fits the cache keeps the intermediate passes off main memory.
    device, cd = params[0].device, compute_dtype(params[0].dtype)
    if isinstance(lr, Tensor):
        lr = lr.to(device=device, dtype=cd)
    scale: Scalar = lr * (-alpha)
    shift: Scalar = lr * (-beta)
    numels = [w.numel() for w in params]
    splittable = [w.is_contiguous() and g.is_contiguous() for w, g in zip(params, grads)]
    plan = foreach_chunk_plan(device.type, numels, chunk_numel, splittable)
    scratch = torch.empty(max(sum(b - a for _, a, b in chunk) for chunk in plan), dtype=cd, device=device)
    if stats is not None and max_exponent is not None:  # |e| - bound of a chunk, for the diagnostics
        below = torch.empty_like(scratch)
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
        flat = scratch[:offset]  # the chunk's exponents, contiguous: one op each for the diagnostics
        torch._foreach_copy_(es, ws)
        torch._foreach_sign_(es)
        torch._foreach_mul_(es, gs)
        torch._foreach_mul_(es, scale)
        if stats is not None and offset:  # the largest |lr alpha sign(w) g|
            low, high = torch.aminmax(flat)
            torch.maximum(stats[0], torch.maximum(high, low.neg_()).to(stats[0].dtype), out=stats[0])
        torch._foreach_add_(es, shift)
        if max_exponent is not None:
            torch._foreach_clamp_min_(es, -max_exponent)
            torch._foreach_clamp_max_(es, max_exponent)
            if stats is not None:  # at the clamp: |e| - bound == 0
                stats[1].sub_(torch.count_nonzero(torch.abs(flat, out=below[:offset]).sub_(max_exponent))).add_(offset)
        if skip is not None:
            flat.masked_fill_(skip, 0.0)  # a fill, so inf/NaN gradients leave no NaN behind
        torch._foreach_exp_(es)
        torch._foreach_mul_(ws, es)


def _fused_kernel(ws: List[Tensor], gs: List[Tensor], lr: Tensor, alpha: Tensor, beta: Tensor,
                  max_exponent: Tensor, skip: Tensor) -> None:
    # Flat tensors of static sizes; the scalars are 0-dim tensors of the compute dtype.
    for w, g in zip(ws, gs):
        e = -lr * (alpha * torch.sign(w).to(lr.dtype) * g.to(lr.dtype) + beta)
        e = torch.clamp(e, -max_exponent, max_exponent)
        e = torch.where(skip, torch.zeros_like(e), e)
        w.copy_(w.to(lr.dtype) * torch.exp(e))


def _fused_kernel_with_stats(ws: List[Tensor], gs: List[Tensor], lr: Tensor, alpha: Tensor, beta: Tensor,
                             max_exponent: Tensor, skip: Tensor, top: Tensor, hits: Tensor) -> None:
    # The same step (the same expression, so the same weights) and the largest
    # |lr alpha sign(w) g| and the count of exponents at the clamp, read off the *new* weights:
    # the step keeps every sign, and a reduction over the values it writes fuses into its loop.
    largest, count = top, hits
    for w, g in zip(ws, gs):
        e = -lr * (alpha * torch.sign(w).to(lr.dtype) * g.to(lr.dtype) + beta)
        e = torch.clamp(e, -max_exponent, max_exponent)
        e = torch.where(skip, torch.zeros_like(e), e)
        new = w.to(lr.dtype) * torch.exp(e)
        w.copy_(new)
        geometric = alpha * torch.sign(new) * g.to(lr.dtype)
        largest = torch.maximum(largest, (lr * geometric).abs().amax().to(top.dtype))
        count = count + ((lr * (geometric + beta)).abs() >= max_exponent).sum()
    top.copy_(largest)
    hits.copy_(count)


class _FusedKernels:
    """The compiled kernels, one per signature (device, dtype, sizes, with diagnostics or not),
    each compiled once with static shapes from its own code object: no guard of one signature
    can fail on another, so no signature is ever recompiled. At most :data:`FUSED_CACHE_SIZE`."""

    def __init__(self) -> None:
        self.kernels: Dict[Tuple[object, ...], Callable[..., None]] = {}
        self.unavailable = False

    def get(self, signature: Tuple[object, ...], source: Callable[..., None]) -> Optional[Callable[..., None]]:
        """The kernel compiled from :obj:`source` for :obj:`signature` (compiled now if new);
        :obj:`None` once :data:`FUSED_CACHE_SIZE` kernels exist."""
        signature = (source.__name__,) + signature
        kernel = self.kernels.get(signature)
        if kernel is None and len(self.kernels) < FUSED_CACHE_SIZE:
            name = f"{source.__name__}_{len(self.kernels)}"
            names: Dict[str, str] = {"co_name": name}
            if sys.version_info >= (3, 11):
                names["co_qualname"] = name
            code = source.__code__.replace(**names)  # type: ignore[arg-type]
            kernel = torch.compile(types.FunctionType(code, source.__globals__, name), dynamic=False, fullgraph=True)
            self.kernels[signature] = kernel
        return kernel


_kernels = _FusedKernels()


class _DeviceScalar:
    """A 0-dim device tensor holding one hyper-parameter: refilled in place (a kernel launch
    with the value as its argument, no host-device copy) only when the value changes."""

    __slots__ = ("tensor", "value")

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.tensor = torch.zeros((), dtype=dtype, device=device)
        self.value: Optional[float] = 0.0

    def __call__(self, value: Scalar) -> Tensor:
        if isinstance(value, Tensor):
            self.value = None
            return value.to(device=self.tensor.device, dtype=self.tensor.dtype)
        if value != self.value:
            self.tensor.fill_(value)
            self.value = value
        return self.tensor


#: (device, compute dtype, role) -> its device scalar; roles: lr, alpha, beta, bound, no-skip flag.
_scalars: Dict[Tuple[torch.device, torch.dtype, str], _DeviceScalar] = {}


def _device_scalar(role: str, value: Scalar, device: torch.device, dtype: torch.dtype) -> Tensor:
    slot = _scalars.get((device, dtype, role))
    if slot is None:
        slot = _scalars[(device, dtype, role)] = _DeviceScalar(device, dtype)
    return slot(value)


def _compile_errors() -> Tuple[Type[BaseException], ...]:
    """Exceptions that mean "this could not be compiled" (raised before the kernel runs)."""
    import torch._dynamo.exc as dynamo_exc
    import torch._inductor.exc as inductor_exc
    return (dynamo_exc.TorchDynamoException, dynamo_exc.FailOnRecompileLimitHit, inductor_exc.CppCompileError,
            inductor_exc.InvalidCxxCompiler, inductor_exc.OperatorIssue)


def _warn_unavailable(exc: BaseException) -> None:
    _kernels.unavailable = True
    warnings.warn(f"pyg_ham: the fused (compiled) HAM step is unavailable here ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); using the foreach path instead.",
                  RuntimeWarning, stacklevel=4)


def _fused_step_(params: Sequence[Tensor], grads: Sequence[Tensor], lr: Scalar, alpha: float, beta: float,
                 max_exponent: Optional[float], skip: Optional[Tensor],
                 stats: Optional[Tuple[Tensor, Tensor]]) -> List[int]:
    """Run the compiled pass, up to :data:`FUSED_GROUP_SIZE` tensors per call; return the
    indices of the tensors it stepped.

    Left to the caller: tensors the kernel does not take (non-contiguous), those of signatures
    beyond :data:`FUSED_CACHE_SIZE`, and all of them after a compilation failure (which warns once)."""
    if _kernels.unavailable:
        return []
    device, dtype = params[0].device, params[0].dtype
    try:
        errors = _compile_errors()
    except Exception as exc:  # torch.compile itself unavailable (unsupported Python, ...)
        _warn_unavailable(exc)
        return []
    cd = compute_dtype(dtype)
    scalars = (_device_scalar("lr", lr, device, cd), _device_scalar("alpha", alpha, device, cd),
               _device_scalar("beta", beta, device, cd),
               _device_scalar("bound", math.inf if max_exponent is None else max_exponent, device, cd),
               skip if skip is not None else _device_scalar("no skip", False, device, torch.bool))
    extra = () if stats is None else stats
    eligible = [i for i, (w, g) in enumerate(zip(params, grads)) if w.is_contiguous() and g.is_contiguous()]
    stepped: List[int] = []
    for start in range(0, len(eligible), FUSED_GROUP_SIZE):
        call = eligible[start:start + FUSED_GROUP_SIZE]
        kernel = _kernels.get((device, dtype, tuple(params[i].numel() for i in call)),
                              _fused_kernel if stats is None else _fused_kernel_with_stats)
        if kernel is None:  # the cache is full: this signature takes the foreach path
            continue
        # flat aliases that are not views (no ``_base`` for the compiled graph to guard on)
        ws = [params[i].view(-1).detach() for i in call]
        gs = [grads[i].view(-1).detach() for i in call]
        try:
            kernel(ws, gs, *scalars, *extra)
        except errors as exc:  # raised while compiling, before the kernel wrote anything
            _warn_unavailable(exc)
            return stepped
        stepped += call
    return stepped


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
    if sum(p.numel() for p in params) >= FUSED_MIN_NUMEL and not _kernels.unavailable:
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
    stats: Optional["ExponentStats"] = None,
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
        lr (float or Tensor): the learning rate :math:`\eta`; a float changing every step (a
            scheduler) costs no recompilation and no host-device copy, a 0-dim device tensor
            (``capturable``) is read on the device.
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
        stats (ExponentStats, optional): also accumulate the largest
            :math:`|\eta\alpha\,\mathrm{sign}(w)\,g|` and the number of exponents at the clamp
            into it, inside the same pass; a skipped step (``found_inf``) adds nothing.
            The weights are the same with and without. (default: :obj:`None`)

    Memory: the for-loop path allocates one temporary the size of the largest tensor, the
    foreach path one scratch buffer as large as its largest chunk (:func:`foreach_chunk_plan`),
    the fused path nothing (temporaries are in ``float32`` for ``float16``/``bfloat16`` weights).
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
    if compiling:
        stats = None  # no diagnostics inside a compiled training step
    for (device, _), (ws, gs) in groups.items():
        skip = skips.get(device)
        clamped = 0 if max_exponent is None else sum(w.numel() for w in ws)
        step_stats = None if stats is None else stats.begin(device)
        if compiling:
            _expression_step_(ws, gs, lr, alpha, beta, max_exponent, skip)
        else:
            if impl == "fused":
                stepped = set(_fused_step_(ws, gs, lr, alpha, beta, max_exponent, skip, step_stats))
                ws = [w for i, w in enumerate(ws) if i not in stepped]
                gs = [g for i, g in enumerate(gs) if i not in stepped]
            if ws and impl == "for-loop":
                _single_tensor_step_(ws, gs, lr, alpha, beta, max_exponent, skip, step_stats)
            elif ws:
                _foreach_step_(ws, gs, lr, alpha, beta, max_exponent, skip, chunk_numel, step_stats)
        if stats is not None:
            stats.end(device, skip, clamped)
