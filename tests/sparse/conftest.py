"""Shared helpers of the sparse-training tests: a small MLP, optimizers, a training loop."""
import pytest
import torch

from pyg_ham.optim import build_optimizer


class MLP(torch.nn.Module):
    def __init__(self, sizes=(12, 32, 24, 3)):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


#: (base optimizer, kwargs): momentum SGD with weight decay, Adam, AdamW with weight decay.
OPTIMIZERS = {
    "sgd": ("sgd", dict(lr=0.05, momentum=0.9, weight_decay=1e-3)),
    "adam": ("adam", dict(lr=1e-2)),
    "adamw": ("adamw", dict(lr=1e-2, weight_decay=0.1)),
}


def _make_mlp(seed=0, sizes=(12, 32, 24, 3), device="cpu"):
    torch.manual_seed(seed)
    return MLP(sizes).to(device)


def _make_optimizer(model, kind="adam", ham=False, alpha=200.0, beta=1e-3):
    name, kwargs = OPTIMIZERS[kind]
    return build_optimizer(model, name, ham=ham, alpha=alpha, beta=beta, **kwargs)


def _batch(step, in_features=12, out_features=3, device="cpu"):
    gen = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, in_features, generator=gen)
    y = torch.randn(32, out_features, generator=gen)
    return x.to(device), y.to(device)


def _train(model, optimizer, sparsifier, steps, start=0, callback=None):
    """``steps`` training steps with both hooks; ``callback(step_count)`` after each."""
    device = next(model.parameters()).device
    in_features = model.layers[0].in_features
    out_features = model.layers[-1].out_features
    for t in range(start, start + steps):
        x, y = _batch(t, in_features, out_features, device)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        sparsifier.before_step()
        optimizer.step()
        sparsifier.after_step()
        if callback is not None:
            callback(sparsifier.step_count)


@pytest.fixture
def make_mlp():
    return _make_mlp


@pytest.fixture
def make_optimizer():
    return _make_optimizer


@pytest.fixture
def train():
    return _train


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: intra-op threads only add contention on a shared 2-core box
    (10x slower under load). Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
