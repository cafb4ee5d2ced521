"""One of the two processes of ``test_fsdp.py``: FSDP2 (``fully_shard``) + HAM on CPU with gloo.

    python fsdp_worker.py RANK WORLD_SIZE PORT OUT_FILE

Trains every (model, base) of :data:`CASES` for :data:`STEPS` steps on this rank's half of the
batch and, on rank 0, saves the gathered full parameters to ``OUT_FILE``.
"""
import sys
from typing import Any, Dict, List, Tuple

import torch

CASES: List[Tuple[str, str]] = [("small", "sgd"), ("small", "adam"), ("large", "sgd"), ("large", "adam")]
STEPS = 3
BATCH = 8


def build(kind: str) -> torch.nn.Module:
    """The model of a case, with the same initial weights in every process."""
    torch.manual_seed(0)
    if kind == "small":
        return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 8))
    # a 4096 x 2048 matrix: over 4M selected elements on each of 2 ranks (the fused path)
    return torch.nn.Sequential(torch.nn.Linear(16, 2048), torch.nn.Tanh(), torch.nn.Linear(2048, 4096),
                               torch.nn.Tanh(), torch.nn.Linear(4096, 8))


def data(kind: str) -> Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(STEPS, BATCH, 16, generator=gen), torch.randn(STEPS, BATCH, 8, generator=gen)


def optimizer(kind: str, base: str, params) -> torch.optim.Optimizer:
    from pyg_ham.optim import HAM

    if base == "sgd":
        return HAM(torch.optim.SGD(params, lr=0.02, momentum=0.9), alpha=200.0, beta=1e-3)
    return HAM(torch.optim.Adam(params, lr=1e-3, eps=1e-4), alpha=200.0, beta=1e-3)


def train(model: torch.nn.Module, opt: torch.optim.Optimizer, kind: str, rows: slice) -> None:
    xs, ys = data(kind)
    for x, y in zip(xs, ys):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        opt.step()


def fsdp1_orig_params() -> List[str]:
    """FSDP1 with use_orig_params=True: what HAM says about its parameters on every rank."""
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel

    from pyg_ham.errors import ConfigError

    model = FullyShardedDataParallel(build("small"), use_orig_params=True, device_id=torch.device("cpu"))
    shapes = [tuple(p.shape) for p in model.parameters()]
    try:
        optimizer("small", "sgd", model.parameters())
        said = "accepted"
    except ConfigError as exc:
        said = str(exc)
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, (said, shapes))
    return out


def main() -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        result: Dict[str, Any] = {}
        per_rank = BATCH // world
        for kind, base in CASES:
            model = build(kind)
            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    fully_shard(layer, mesh=mesh)
            fully_shard(model, mesh=mesh)
            train(model, optimizer(kind, base, model.parameters()), kind, slice(rank * per_rank, (rank + 1) * per_rank))
            result[f"{kind}-{base}"] = [p.full_tensor().detach().clone() for p in model.parameters()]
        result["fsdp1"] = fsdp1_orig_params()
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
