"""``python -m failing_rank ARGS``: ``python -m pyg_ham ARGS`` whose rank 1 raises at its third step."""
import os

from pyg_ham.train.node import MiniBatchNodeTask

_loss = MiniBatchNodeTask.batch_loss
_calls = [0]


def batch_loss(self, model, batch):
    _calls[0] += 1
    if os.environ.get("RANK") == "1" and _calls[0] == 3:
        raise RuntimeError("rank 1 failed on purpose at step 3")
    return _loss(self, model, batch)


MiniBatchNodeTask.batch_loss = batch_loss

if __name__ == "__main__":
    from pyg_ham.__main__ import run

    run()
