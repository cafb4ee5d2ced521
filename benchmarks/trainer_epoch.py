"""The trainer's mini-batch node epoch end to end (``run_experiment``), for timing one checkout
beside another: it imports the ``pyg_ham`` that ``PYTHONPATH`` names (printed), not its own.

Synthetic graph of 60,000 nodes, 128 features, 40 classes, average degree 10; GraphSAGE 2 x 128,
fanout 10,5, batch 512, 4 epochs with HAM's defaults; prints the median time of epochs 2-4 (the
first warms up) and the last loss as one JSON line. Alternate the checkouts, e.g.::

    for r in 1 2 3; do for t in before main; do
        PYTHONPATH=/work/$t OMP_NUM_THREADS=2 python benchmarks/trainer_epoch.py; done; done
"""
import json
import statistics

import torch

import pyg_ham
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment


def main() -> None:
    torch.set_num_threads(2)
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 60000, "num_features": 128,
                                                                 "num_classes": 40, "avg_degree": 10},
                           model="sage", hidden=128, layers=2, fanout=[10, 5], batch_size=512, epochs=4,
                           eval_every=100, eval_train=False, quiet=True, device="cpu", seed=0)
    doc = run_experiment(cfg, log=lambda s: None)
    times = [h["time"] for h in doc["runs"][0]["history"]][1:]
    print(json.dumps({"pyg_ham": pyg_ham.__file__, "epoch_s": statistics.median(times), "all": times,
                      "loss": doc["runs"][0]["history"][-1]["loss"]}))


if __name__ == "__main__":
    main()
