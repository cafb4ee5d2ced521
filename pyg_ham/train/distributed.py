r"""Training in several processes: ``torch.distributed`` set up once, for :func:`~pyg_ham.train.fit`.

A run started by ``torchrun`` (``torchrun --nproc-per-node N -m pyg_ham train ...``, or
``pyg-ham train --nproc N``, which launches the same) finds ``RANK``/``WORLD_SIZE``/
``MASTER_ADDR``/``MASTER_PORT`` in its environment; :func:`session` then starts the process
group (NCCL on CUDA, gloo on the CPU), picks each rank's device (``cuda:LOCAL_RANK``) and ends
the group when the experiment ends. Without those variables every helper here is the identity
of one process (rank 0 of 1), so the same code path trains in one process.

What is split how (data parallelism, the way PyG's ``examples/multi_gpu`` do it):

* the model is replicated and wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
  (:func:`wrap_model`): gradients are averaged over ranks before the (HAM) step, so every rank
  takes the same step and the replicas stay bit-identical;
* each rank takes a disjoint, equal-sized slice of the same epoch permutation of the training
  examples (:class:`~torch.utils.data.distributed.DistributedSampler`), with ``batch_size /
  world_size`` examples per step, so the global batch is the one process's batch;
* BatchNorm becomes a synchronised BatchNorm (statistics over the global batch,
  :class:`CPUSyncBatchNorm` on the CPU, where torch's is not available).
"""
from __future__ import annotations

import os
import signal
import sys
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_ham.errors import ConfigError

__all__ = ["world_size", "rank", "local_rank", "is_main", "is_distributed", "session", "describe", "barrier",
           "broadcast_object", "gather_objects", "all_gather_cat", "all_reduce_sum", "on_main", "wrap_model",
           "CPUSyncBatchNorm", "convert_sync_batchnorm", "launched", "launch", "check_config",
           "check_global_batch", "death_reason", "error_line", "launched_world_size"]

T = TypeVar("T")
_STATE: Dict[str, Any] = {"devices": None}


def launched() -> bool:
    """Whether this process was started by ``torchrun`` for more than one process."""
    return launched_world_size() > 1


def launched_world_size() -> int:
    """The number of processes ``torchrun`` started (``$WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (``$RANK`` before the group starts; 0 in one process)."""
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its machine (``$LOCAL_RANK``; without it, the global rank)."""
    return int(os.environ.get("LOCAL_RANK", rank()))


def is_main() -> bool:
    """Rank 0: the one process that writes results, checkpoints and logs."""
    return rank() == 0


@contextmanager
def session(device: torch.device, devices: Optional[List[int]] = None) -> Iterator[torch.device]:
    r"""Start the process group if ``torchrun`` launched several processes, and end it afterwards.

    The backend is NCCL for CUDA devices and gloo otherwise; with CUDA each rank trains on
    ``cuda:LOCAL_RANK`` (``cuda:devices[LOCAL_RANK]`` with :obj:`devices`). Yields this rank's
    device. Re-entrant: a group that is already running is used as it is (and left running).

    Args:
        device (torch.device): the device the configuration asks for.
        devices (list of int, optional): the CUDA devices of this machine's ranks (``--devices``).
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield _rank_device(device, devices) if is_distributed() else device
        return
    if not dist.is_available():
        raise ConfigError("torch.distributed is not available in this torch build; run in one process")
    device = _rank_device(device, devices)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    try:
        _STATE["devices"] = gather_objects(str(device))
        yield device
    except BaseException:
        _STATE["devices"] = None  # a failing rank leaves the group as it is: ending it could wait on the peers
        raise
    _STATE["devices"] = None
    dist.destroy_process_group()


def _rank_device(device: torch.device, devices: Optional[List[int]] = None) -> torch.device:
    if devices:  # --devices: this machine's ranks in order (check_config: one each)
        return torch.device("cuda", devices[local_rank()])
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank() % max(torch.cuda.device_count(), 1))
    return device


def describe(device: Any = None) -> Dict[str, Any]:
    """Provenance of the process group: ``world_size``, ``backend`` and every rank's device."""
    if not is_distributed():
        return {"world_size": 1, "backend": None, "devices": [str(device)] if device is not None else None}
    devices = _STATE["devices"] or gather_objects(str(device))
    return {"world_size": world_size(), "backend": dist.get_backend(), "devices": devices}


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank :obj:`src`'s :obj:`obj` on every rank (picklable objects; identity in one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> List[Any]:
    """Every rank's :obj:`obj`, in rank order, on every rank (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_gather_cat(tensor: Tensor) -> Tensor:
    r"""The concatenation (in rank order, along dim 0) of every rank's :obj:`tensor`; the ranks'
    first dimensions may differ (each is padded to the largest for the collective)."""
    if not is_distributed():
        return tensor
    backend_device = tensor.device if dist.get_backend() != "gloo" else torch.device("cpu")
    local = tensor.to(backend_device).contiguous()
    sizes = gather_objects(local.shape[0])
    padded = local.new_zeros((max(sizes),) + tuple(local.shape[1:]))
    padded[:local.shape[0]] = local
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[:n] for o, n in zip(out, sizes)]).to(tensor.device)


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """The sum of :obj:`tensor` over ranks (a new tensor; :obj:`tensor` itself in one process)."""
    if not is_distributed():
        return tensor
    out = tensor.clone() if dist.get_backend() != "gloo" else tensor.detach().cpu().clone()
    dist.all_reduce(out)
    return out.to(tensor.device)


def on_main(fn: Callable[[], T]) -> T:
    r"""Run :obj:`fn` on rank 0 only and return its result on every rank; an exception on rank
    0 (e.g. a :class:`~pyg_ham.errors.ConfigError`) is raised on every rank, so none waits."""
    if not is_distributed():
        return fn()
    result: Any = None
    error: Optional[BaseException] = None
    if is_main():
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
            error = exc
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the backward pass sums the gradients over ranks too."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    r"""BatchNorm whose training statistics are those of the global batch over all ranks, on the
    CPU with gloo (:class:`torch.nn.SyncBatchNorm` is CUDA-only and DDP refuses it on the CPU).

    In training mode over :math:`R` ranks, each with :math:`n_r` rows :math:`x_{r,i}`,

    .. math::
        \mu = \frac{1}{n} \sum_{r,i} x_{r,i}, \qquad
        \sigma^2 = \frac{1}{n} \sum_{r,i} (x_{r,i} - \mu)^2, \qquad n = \sum_r n_r,

    computed with two differentiable all-reduces (their backward is an all-reduce too), so the
    backward pass sums the statistics' gradients over ranks as torch's CUDA kernel does; the
    running statistics are updated from them (unbiased variance) as in :class:`torch.nn.BatchNorm1d`.
    In eval mode, or without a process group, it is plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:  # noqa: A002 - torch's signature
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - torch's signature
        if not self.training or not is_distributed():
            return super().forward(input)
        self._check_input_dim(input)
        all_reduce = _AllReduceSum.apply
        dims = [0] + list(range(2, input.dim()))
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([input.numel() / input.size(1)], dtype=input.dtype)
        total = all_reduce(torch.cat([input.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = input - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * (n / (n - 1)) if float(n) > 1 else var.detach()
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)
        return out


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Every ``BatchNorm*d`` of :obj:`model` synchronised over ranks, in place (same parameters and
    buffers, so an optimizer built before the conversion keeps working): :class:`torch.nn.SyncBatchNorm`
    on CUDA, :class:`CPUSyncBatchNorm` on the CPU."""
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if device.type == "cpu":
        for module in model.modules():
            if type(module) is torch.nn.SyncBatchNorm:
                module.__class__ = CPUSyncBatchNorm
    return model


def wrap_model(model: torch.nn.Module, device: torch.device, sync_bn: bool = True) -> torch.nn.Module:
    r""":obj:`model` in :class:`~torch.nn.parallel.DistributedDataParallel` (rank 0's weights
    broadcast to every rank), BatchNorm synchronised unless :obj:`sync_bn` is ``False``;
    :obj:`model` itself in one process. The wrapped module stays :obj:`model` (its parameters,
    checkpoints and evaluation are the unwrapped ones).

    Args:
        model (Module): the model, already on :obj:`device`.
        device (torch.device): this rank's device.
        sync_bn (bool): synchronise BatchNorm statistics over ranks. (default: :obj:`True`)
    """
    if not is_distributed():
        return model
    if sync_bn:
        convert_sync_batchnorm(model, device)
    from torch.nn.parallel import DistributedDataParallel

    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def check_config(cfg: Any, processes: int) -> None:
    r"""Refuse, with one line and before any process starts, settings that cannot train in
    :obj:`processes` processes: ``--jobs`` worker processes, what the dataset's task kind refuses
    (:meth:`~pyg_ham.train.TrainingTask.check_processes`, found in the registry: e.g. full-batch
    node training, where every rank would compute the same step), a global batch that does not
    split evenly over the ranks; and more processes on this machine than CUDA devices for them
    (two ranks on one GPU fail in NCCL's first collective)."""
    if processes <= 1:
        return
    from pyg_ham.datasets import get_info
    from pyg_ham.train.task import TASK_KINDS

    _check_devices(cfg, int(os.environ.get("LOCAL_WORLD_SIZE", processes)))

    if cfg.jobs > 1:
        raise ConfigError("--jobs runs independent runs in worker processes of one process; in several "
                          "processes every run already uses all of them: drop --jobs")

    # the kind's own rules (pyg_ham.train.kinds registers the built-in kinds; an unregistered kind has none)
    kind = TASK_KINDS.get(get_info(cfg.dataset).task)
    if kind is not None:
        kind.check_processes(cfg, processes)
    if cfg.batch_size is not None:
        check_global_batch(cfg.batch_size, processes)


def check_global_batch(batch_size: int, processes: int) -> None:
    """The global batch :obj:`batch_size` splits evenly over :obj:`processes` (one-line error otherwise)."""
    if batch_size % processes:
        raise ConfigError(f"batch_size {batch_size} is the global batch and must split evenly over "
                          f"{processes} processes; use a multiple of {processes}")


def _check_devices(cfg: Any, local: int) -> None:
    """One CUDA device for each of the :obj:`local` processes on this machine, or a one-line error."""
    if cfg.devices:
        if len(cfg.devices) < local:
            listed = ",".join(map(str, cfg.devices))
            raise ConfigError(f"--devices {listed} names {len(cfg.devices)} CUDA device(s) for {local} processes on "
                              f"this machine; give one per process (e.g. --devices {','.join(map(str, range(local)))})"
                              f" or start {len(cfg.devices)} (--nproc {len(cfg.devices)})")
        return
    from pyg_ham.train.config import resolve_device

    device = resolve_device(cfg.device)
    if device.type != "cuda":
        return
    if device.index is not None:
        raise ConfigError(f"device {cfg.device} would put all {local} processes on one GPU; use --device cuda "
                          f"(process r trains on cuda:r) or --devices with one index per process")
    count = torch.cuda.device_count()
    if local > count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise ConfigError(f"{local} processes on this machine need one CUDA device each, but {count} "
                          f"{'is' if count == 1 else 'are'} visible{shown}; start at most {count} (--nproc {count}), "
                          f"or train on the CPU (--device cpu)")


def death_reason(exitcode: Optional[int]) -> str:
    """Why a worker process ended, from its exit code (``-9``: ``"killed by SIGKILL (out of memory?)"``)."""
    if exitcode is None:
        return "it closed its pipe"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {"SIGKILL": " (out of memory, or killed)", "SIGSEGV": " (a crash in native code)",
                "SIGBUS": " (a crash in native code)", "SIGABRT": " (aborted)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"it exited with status {exitcode}"


#: Errors a rank raises because another rank died (its peer closed the connection): that rank's
#: own error line is the one to read, so these end quietly.
_PEER_ERRORS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Socket closed")


def error_line(exc: BaseException) -> Optional[str]:
    r"""The one line a rank prints for :obj:`exc` (``Error: rank 1 of 2: ValueError: ...``), or
    ``None`` for a collective that failed because another rank ended first."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, getattr(dist, "DistBackendError", ())) or any(p in str(exc) for p in _PEER_ERRORS):
        return None
    return f"Error: rank {rank()} of {os.environ.get('WORLD_SIZE', '1')}: {type(exc).__name__}: {message}"


def launch(nproc: int, argv: List[str], module: str = "pyg_ham", kept: Optional[Callable[[], str]] = None) -> int:
    r"""Run ``python -m pyg_ham ARGV`` in :obj:`nproc` processes on this machine through torch's own
    launcher (what ``torchrun --standalone --nproc-per-node NPROC -m pyg_ham ARGV`` does) and
    return the exit status: 0, or the first failing rank's (that rank prints its one error line;
    the launcher's own logs are silenced). A rank killed by a signal (``SIGKILL`` from the OOM
    killer, a segfault) cannot say so itself, and the others end as soon as their next collective
    finds it gone: the launcher prints the one line then (``Error: rank 1 of 2 was killed by
    SIGKILL ...``), ending with :obj:`kept`'s note on what was kept and how to continue.

    Args:
        nproc (int): processes (ranks) to start.
        argv (list of str): the command line after ``pyg_ham``.
        module (str): the module to run. (default: ``"pyg_ham"``)
        kept (callable, optional): what a failed job kept (e.g. "rerun with --resume ...").
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    if not (isinstance(nproc, int) and nproc >= 1):
        raise ConfigError(f"nproc must be an integer >= 1, got {nproc!r}")
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    args = parse_args(["--nproc-per-node", str(nproc), "--module", module, *argv])
    # what torchrun --standalone does: a c10d rendezvous on a free local port
    args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id = "c10d", "localhost:0", str(uuid.uuid4())
    config, cmd, cmd_args = config_from_args(args)
    try:
        elastic_launch(config, cmd)(*cmd_args)
    except ChildFailedError as exc:
        killed = sorted((f.timestamp, f.signal_name() == "SIGTERM", r, f) for r, f in exc.failures.items()
                        if f.exitcode < 0)
        if killed:
            _, _, dead, failure = min(killed, key=lambda k: k[1])  # SIGTERM: the launcher stopping the others
            note = f"; {kept()}" if kept is not None else ""
            print(f"Error: rank {dead} of {nproc} was {death_reason(failure.exitcode)}; the other ranks were "
                  f"stopped{note}", file=sys.stderr, flush=True)
        _, failure = exc.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0
