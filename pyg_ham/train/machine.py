r"""Memory the ranks of one machine share: one copy of the graph and of layer-wise evaluation's
rows per machine, not per rank.

Under ``torchrun`` every rank of a machine maps the same file (in ``/dev/shm`` when it has room,
else the temporary folder), written or reserved by the machine's first rank
(``LOCAL_RANK`` 0) and unlinked once every rank has mapped it (the mappings keep it alive until
the last rank lets go):

* :func:`share_memory`: a :class:`~torch_geometric.data.Data` graph's CPU tensors, mapped
  ``MAP_SHARED`` from one file, so that they stay one copy in the page cache, also once pinned
  in place for a GPU (:func:`~pyg_ham.train.placement.pin_in_place`);
* :func:`shared_empty`: an uninitialised tensor every rank of the machine writes rows of and
  reads (after a :func:`~pyg_ham.train.distributed.barrier`), and :func:`complete_rows`, which
  copies the rows other machines' ranks wrote into this machine's tensor (broadcast in chunks
  of at most :data:`EXCHANGE_BYTES`, written by each machine's first rank).

The ranks of a machine are those that share a host name and a launcher (``torchrun``'s agent,
their parent process). In one process every function here is the identity (or a plain tensor).
"""
from __future__ import annotations

import mmap
import os
import socket
import tempfile
import uuid
from typing import Any, Callable, List, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_ham.errors import ConfigError
from pyg_ham.train.distributed import barrier, broadcast_object, gather_objects, is_distributed, local_rank, rank

__all__ = ["share_memory", "release_memory", "shared_empty", "complete_rows", "this_machine", "machine_of_ranks",
           "EXCHANGE_BYTES"]

#: The largest piece of rows :func:`complete_rows` broadcasts at once (its scratch memory).
EXCHANGE_BYTES = 64 * 2**20

_SHARED: set = set()


def this_machine() -> Tuple[str, int]:
    r"""This rank's machine: its host name and its launcher's process id (the same for the ranks
    ``torchrun`` started on one machine)."""
    return socket.gethostname(), os.getppid()


def machine_of_ranks() -> List[Tuple[str, int]]:
    r"""Every rank's :func:`this_machine`, in rank order. Collective."""
    return gather_objects(this_machine())


def _folders() -> List[str]:
    # /dev/shm first (RAM); a container's small /dev/shm (often 64 MB) falls back to the temp folder
    return [folder for folder in ("/dev/shm", tempfile.gettempdir()) if os.path.isdir(folder)]


def _name(what: str) -> str:
    # one name for the job's ranks (rank 0's), this machine's launcher in it (two machines may share a disk)
    return f"pyg_ham_{what}_{broadcast_object(uuid.uuid4().hex)}_{this_machine()[1]}"


def _publish(name: str, nbytes: int, write: Callable[[str], None]) -> str:
    r"""On the machine's first rank, writes (:obj:`write(path)`) the file :obj:`name` of
    :obj:`nbytes` into the first folder with room; then every rank finds it. Collective."""
    paths = [os.path.join(folder, name) for folder in _folders()]
    if local_rank() == 0:
        for candidate in paths:
            try:
                write(candidate + ".tmp")
                os.replace(candidate + ".tmp", candidate)
                break
            except (OSError, RuntimeError):  # torch.save reports a full disk as RuntimeError
                if os.path.exists(candidate + ".tmp"):
                    os.unlink(candidate + ".tmp")
        else:
            raise ConfigError(f"cannot write {nbytes / 2**30:.2f} GiB shared by this machine's ranks to "
                              f"{' or '.join(paths)} (no space?); free space there")
    barrier()
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        raise ConfigError(f"this rank cannot see {name} in {' or '.join(_folders())}, which its machine's first rank "
                          f"wrote: the ranks of one machine need the same /dev/shm and temporary folder")
    return path


def _unlink_when_mapped(path: str) -> None:
    barrier()  # every rank has mapped it
    if local_rank() == 0:
        os.unlink(path)


def share_memory(data: Any) -> Any:
    r"""Tensors of :obj:`data` (a PyG ``Data``) memory-mapped (``MAP_SHARED``) from one file per
    machine, so the ranks on one machine share one copy of the graph in the page cache instead of
    each holding its own. CPU tensors only; identity in one process or when :obj:`data` is on a
    GPU."""
    if not is_distributed() or id(data) in _SHARED:
        return data
    tensors = {k: v for k, v in data.to_dict().items() if isinstance(v, Tensor) and v.device.type == "cpu"}
    if not tensors:
        return data
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    path = _publish(_name("graph") + ".pt", nbytes, lambda path: torch.save(tensors, path))
    with torch.serialization.set_default_mmap_options(mmap.MAP_SHARED):
        shared = torch.load(path, mmap=True, weights_only=True)
    _unlink_when_mapped(path)
    for key, value in shared.items():
        data[key] = value
    _SHARED.add(id(data))
    tensors.clear()  # the private copies: released below
    release_memory()
    return data


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``), so that
    the private copy a rank loaded before :func:`share_memory` stops counting."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def shared_empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    r"""An uninitialised CPU tensor of :obj:`shape` that every rank of this machine maps: rows one
    rank writes, the others read after a barrier. Its file is reserved in full
    (``posix_fallocate``) before any rank maps it, so a full ``/dev/shm`` moves it to the
    temporary folder, and a full disk is one line, instead of a ``SIGBUS`` at the first write.
    Collective (every rank calls it, in the same order); in one process a plain :func:`torch.empty`."""
    if not is_distributed():
        return torch.empty(tuple(shape), dtype=dtype)
    numel = 1
    for size in shape:
        numel *= int(size)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()

    def reserve(path: str) -> None:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, max(nbytes, 1))
        finally:
            os.close(fd)

    path = _publish(_name("rows"), nbytes, reserve)
    out = torch.from_file(path, shared=True, size=numel, dtype=dtype).view(tuple(shape))
    _unlink_when_mapped(path)
    return out


def complete_rows(out: Tensor, ranges: Sequence[Tuple[int, int]], device: torch.device) -> Tensor:
    r"""Rows :obj:`ranges[r]` (start, stop) of the machine-shared :obj:`out` were written by rank
    :math:`r` on its machine; after this every machine's :obj:`out` holds all of them. Each rank's
    rows are broadcast in pieces of at most :data:`EXCHANGE_BYTES` (on :obj:`device` for NCCL) and
    written by the first rank of every other machine; ranks of one machine exchange nothing.
    Collective; ends with a barrier, so every rank may read :obj:`out` after it."""
    if not is_distributed():
        return out
    machines = machine_of_ranks()
    if len(set(machines)) > 1:
        comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
        here = machines[rank()]
        step = max(1, EXCHANGE_BYTES // max(out[0].numel() * out.element_size(), 1))  # rows per piece
        for owner, (start, stop) in enumerate(ranges):
            for lo in range(start, stop, step):
                hi = min(lo + step, stop)
                piece = (out[lo:hi].to(comm) if owner == rank()
                         else torch.empty((hi - lo,) + tuple(out.shape[1:]), dtype=out.dtype, device=comm))
                dist.broadcast(piece, src=owner)
                if machines[owner] != here and local_rank() == 0:
                    out[lo:hi] = piece.cpu()
    barrier()
    return out
