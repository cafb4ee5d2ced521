"""One rank of the DDP + HAM check (run by test_train_distributed.py as 2 gloo processes).

Rank r of R trains on rows r, r + R, ... of each global batch (the DistributedSampler split),
through pyg_ham's own wrap_model (DDP, BatchNorm synchronised on the CPU) and a HAM optimizer,
with a RiGL sparsifier in the +rigl cases and SAM (two passes per step, pyg_ham's training_step)
in the sam cases; rank 0 saves every rank's final weights and masks.
"""
import os
import sys

import torch

STEPS, BATCH, FEATURES = 6, 16, 8


def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, BATCH, FEATURES, generator=gen)
    y = torch.randint(0, 3, (STEPS, BATCH), generator=gen)
    return x, y


def build():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3))


def optimizer(model, case):
    from pyg_ham.optim import build_optimizer

    return build_optimizer(model, "sgd", lr=0.1, momentum=0.9, ham=case != "plain", alpha=50.0, beta=1e-3,
                           sam="sam" in case, rho=0.05)


CASES = ("plain", "ham", "ham+rigl", "sam+ham", "sam+ham+rigl")


def sparsify(model, opt, case):
    from pyg_ham.sparse import build_sparsifier

    return build_sparsifier("rigl", model, opt, 0.5, STEPS, seed=0, interval=2) if "rigl" in case else None


def train(net, model, opt, rows, sparsifier=None):
    from pyg_ham.train.common import training_step

    x, y = data()
    for step in range(STEPS):
        def loss(step=step):
            return torch.nn.functional.cross_entropy(net(x[step, rows]), y[step, rows]), 1

        training_step(loss, net, opt, sparsifier)
    return model


def shared_graph_pss():
    """share_memory on a 64 MB graph: its values and this rank's PSS increase once every page is read."""
    import psutil
    from torch_geometric.data import Data

    from pyg_ham.train import distributed, machine

    before = psutil.Process().memory_full_info().pss
    gen = torch.Generator().manual_seed(5)
    data = Data(x=torch.randn(2**14, 2**10, generator=gen),
                edge_index=torch.randint(0, 2**14, (2, 1000), generator=gen))
    expected = float(data.x.sum())
    del gen
    machine.share_memory(data)
    total = float(data.x.sum())  # reads every page of the mapping
    distributed.barrier()  # both ranks have read it: each is charged half of each page
    after = psutil.Process().memory_full_info().pss
    return {"same": total == expected, "pss": after - before, "bytes": data.x.numel() * 4}


def shared_rows(rank, world, machines):
    """shared_empty + complete_rows: rank r writes the rows of its range (row i = [i, i + 0.5, i + 0.25]),
    then every rank reads all 10 rows. One machine: the buffer is one mapping (nothing is exchanged, so
    each rank reading the other's rows proves it); ``machines="two"``: each rank its own machine (its
    own buffer), the rows broadcast in pieces of 2 (EXCHANGE_BYTES cut to 24 bytes)."""
    from pyg_ham.train import machine

    saved = machine.this_machine, machine.EXCHANGE_BYTES, os.environ.get("LOCAL_RANK")
    if machines == "two":
        machine.this_machine = lambda: ("host", rank)
        machine.EXCHANGE_BYTES = 24
        os.environ["LOCAL_RANK"] = "0"
    try:
        ranges = [(0, 4), (4, 10)]
        rows = machine.shared_empty((10, 3), torch.float32)
        lo, hi = ranges[rank]
        ids = torch.arange(lo, hi, dtype=torch.float32)
        rows[lo:hi] = torch.stack([ids, ids + 0.5, ids + 0.25], 1)
        machine.complete_rows(rows, ranges, torch.device("cpu"))
        return rows.clone()
    finally:
        machine.this_machine, machine.EXCHANGE_BYTES = saved[:2]
        if saved[2] is None:
            os.environ.pop("LOCAL_RANK", None)
        else:
            os.environ["LOCAL_RANK"] = saved[2]


def main(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from pyg_ham.train import distributed

    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = {}
        for case in CASES:
            model = build()
            opt = optimizer(model, case)
            net = distributed.wrap_model(model, torch.device("cpu"))
            sparsifier = sparsify(model, opt, case)
            train(net, model, opt, slice(rank, None, world), sparsifier)
            state = {"params": [p.detach().clone() for p in model.parameters()],
                     "buffers": [b.clone() for b in model.buffers()]}
            if sparsifier is not None:
                state["masks"] = {n: m.clone() for n, m in sparsifier.masks.items()}
            results[case] = distributed.gather_objects(state)
        results["shared"] = distributed.gather_objects(shared_graph_pss())
        for machines in ("one", "two"):
            results[f"rows-{machines}"] = distributed.gather_objects(shared_rows(rank, world, machines))
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
