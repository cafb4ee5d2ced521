"""Fixtures for the vision adapter tests: one torch thread (the CI machine is shared), the
digits task, and a fake torchvision (the real one cannot be installed beside CPU torch)."""
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _one_thread():
    """Small convolutions run fastest (and without spin-waiting) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    from pyg_ham.vision import load_vision_task

    return load_vision_task("digits")


@pytest.fixture
def no_torchvision(monkeypatch):
    """Simulate an environment without torchvision (import fails with ImportError)."""
    monkeypatch.setitem(sys.modules, "torchvision", None)


def _images(n, shape, seed):
    gen = np.random.default_rng(seed)
    return gen.integers(0, 256, size=(n, *shape), dtype=np.uint8)


class _FakeVisionDataset:
    folder = ""
    shape = (28, 28)
    classes = 10
    sizes = {True: 600, False: 100}
    downloads = []

    def __init__(self, root, train=True, download=False):
        from pathlib import Path

        where = Path(root) / self.folder
        if not where.exists():
            if not download:
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            type(self).downloads.append(str(where))
            raise OSError("network access is disabled in tests\nsecond line")
        n = self.sizes[train]
        self.raw = _images(n, self.shape, seed=int(train))
        labels = np.arange(n) % self.classes
        self.data = torch.from_numpy(self.raw) if len(self.shape) == 2 else self.raw
        self.targets = torch.from_numpy(labels) if len(self.shape) == 2 else labels.tolist()


class FakeMNIST(_FakeVisionDataset):
    folder = "MNIST"


class FakeCIFAR10(_FakeVisionDataset):
    folder = "cifar-10-batches-py"
    shape = (32, 32, 3)


class FakeResNet(nn.Module):
    """The attributes of torchvision's ResNet that the adapter touches."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture
def fake_torchvision(monkeypatch):
    """A stand-in ``torchvision`` with MNIST, CIFAR10 and a ``resnet18``-like model."""
    tv = types.ModuleType("torchvision")
    tv.datasets = types.SimpleNamespace(MNIST=FakeMNIST, CIFAR10=FakeCIFAR10, CIFAR100=FakeCIFAR10)
    built = []

    def get_model(name, weights=None, num_classes=1000):
        assert weights is None
        built.append(name)
        return FakeResNet(num_classes)

    tv.models = types.SimpleNamespace(list_models=lambda module=None: ["resnet18"], get_model=get_model)
    tv.built = built
    FakeMNIST.downloads = []
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.delenv("PYG_HAM_OFFLINE", raising=False)
    return tv
