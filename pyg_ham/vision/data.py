r"""Image-classification tasks: ``digits`` (offline, bundled with scikit-learn) and the
torchvision datasets MNIST, CIFAR-10 and CIFAR-100.

Splits are fixed, independent of the run seed (every run of an experiment and every
optimizer sees the same images; runs differ in initialisation and batch order only):

* ``digits``: scikit-learn's 1,797 8x8 digits, scaled to :math:`[0, 1]` (pixel / 16),
  shape ``[1, 8, 8]``; a stratified 60/20/20 train/valid/test split drawn with
  ``split_seed=0`` (1,079 / 359 / 359 images).
* ``mnist``, ``cifar10``, ``cifar100``: the official test set; ``valid_size=5000`` images
  held out of the official training set, stratified by class, with ``split_seed=0``.
  Pixels are scaled to :math:`[0, 1]` and normalised by the usual per-channel mean and
  std of the training set; CIFAR training batches get the standard augmentation (random
  4-pixel-padded crop and horizontal flip, ``augment=True``), applied on the device.

The torchvision datasets are read from the data root (``root``, ``$PYG_HAM_DATA`` or
``~/.cache/pyg_ham/data``) in torchvision's layout (``<root>/MNIST/raw``,
``<root>/cifar-10-batches-py``, ``<root>/cifar-100-python``) and downloaded there when
missing (unless ``download=False`` or ``PYG_HAM_OFFLINE=1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from pyg_ham.datasets.metrics import accuracy
from pyg_ham.errors import ConfigError, DatasetError
from pyg_ham.validation import coerce_option
from pyg_ham.vision import _torchvision

__all__ = ["VISION_DATASETS", "TORCHVISION_DATASETS", "VisionTask", "ImageTensorDataset", "is_vision_dataset",
           "load_vision_task", "list_vision_datasets", "random_crop_flip", "stratified_holdout"]

ImageSize = Union[int, Tuple[int, int]]
BatchTransform = Callable[[Tensor], Tensor]

#: Datasets that need torchvision: name -> (torchvision class, folder under the root, classes,
#: channels, size, mean, std).
TORCHVISION_DATASETS: Dict[str, Dict[str, Any]] = {
    "mnist": {"cls": "MNIST", "folder": "MNIST", "classes": 10, "channels": 1, "size": 28,
              "mean": (0.1307,), "std": (0.3081,), "augment": False},
    "cifar10": {"cls": "CIFAR10", "folder": "cifar-10-batches-py", "classes": 10, "channels": 3, "size": 32,
                "mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616), "augment": True},
    "cifar100": {"cls": "CIFAR100", "folder": "cifar-100-python", "classes": 100, "channels": 3, "size": 32,
                 "mean": (0.5071, 0.4865, 0.4409), "std": (0.2673, 0.2564, 0.2762), "augment": True},
}
#: All image datasets by name (case-insensitive); ``digits`` needs only scikit-learn.
VISION_DATASETS: Tuple[str, ...] = ("digits", *TORCHVISION_DATASETS)

_OPTIONS: Dict[str, Dict[str, Any]] = {
    "digits": {"valid_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
    **{name: {"valid_size": 5000, "split_seed": 0, "download": True, "augment": info["augment"],
              "normalize": True} for name, info in TORCHVISION_DATASETS.items()},
}


def is_vision_dataset(name: str) -> bool:
    """Whether :obj:`name` is an image dataset of :data:`VISION_DATASETS` (case-insensitive)."""
    return isinstance(name, str) and name.strip().lower() in VISION_DATASETS


class ImageTensorDataset(Dataset):
    r"""In-memory images and labels, indexable by one index (one ``(image, label)`` pair) or
    by a 1-D index (a whole batch at once, which the vision trainer uses to skip per-item
    collation).

    Args:
        images (Tensor): ``[N, C, H, W]``, float, or ``uint8`` (scaled by :math:`1/255` on
            access, so large datasets stay compact in memory).
        labels (Tensor): ``[N]`` class indices.
        mean (sequence of float, optional): per-channel mean subtracted on access.
        std (sequence of float, optional): per-channel std divided by on access.
    """

    def __init__(self, images: Tensor, labels: Tensor, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        if labels.dim() != 1 or labels.numel() != images.size(0):
            raise ValueError(f"labels must be [N] with N={images.size(0)}, got shape {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()
        shape = (-1, 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(shape) if mean is not None else None
        self.std = torch.tensor(std, dtype=torch.float32).view(shape) if std is not None else None

    def __len__(self) -> int:
        return self.images.size(0)

    def __getitem__(self, index: Any) -> Tuple[Tensor, Tensor]:
        if isinstance(index, (list, tuple, np.ndarray)):
            index = torch.as_tensor(index, dtype=torch.long)
        x = self.images[index]
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x, self.labels[index]

    def subset(self, index: Tensor) -> "ImageTensorDataset":
        """The images at :obj:`index`, with the same scaling (a copy of the selection)."""
        out = ImageTensorDataset.__new__(ImageTensorDataset)
        out.images, out.labels, out.mean, out.std = self.images[index], self.labels[index], self.mean, self.std
        return out


def random_crop_flip(x: Tensor, padding: int = 4) -> Tensor:
    r"""The standard CIFAR augmentation on a batch ``[B, C, H, W]``: a random crop of the
    zero-padded image (:obj:`padding` pixels each side) and a random horizontal flip, drawn
    per image from the global RNG of :obj:`x`'s device (seeded and checkpointed by the
    trainer)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[torch.arange(b, device=x.device)[:, None, None, None],
                 torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


@dataclass
class VisionTask:
    r"""An image-classification task: three datasets of ``(image, label)`` pairs.

    The trainer reads ``train`` for training (applying :obj:`train_transform` to each
    training batch on the device), selects the epoch on ``valid`` and reports ``test``
    there, as for the graph tasks.

    Attributes:
        name (str): the dataset name (e.g. ``"digits"``).
        train, valid, test (Dataset): ``(image [C, H, W], label)`` pairs.
        num_classes (int): number of classes (the model's output size).
        in_channels (int): image channels.
        image_size (int or (int, int)): image height and width (one int when square).
        metric (str): ``"acc"``.
        higher_is_better (bool): :obj:`True`.
        kind (str): ``"vision"``, the registered task kind that trains it
            (:class:`~pyg_ham.vision.trainer.ImageClassificationTask`).
        train_transform (callable, optional): a batch augmentation ``[B, C, H, W] -> same``.
        description (str): how the data and split were made.
    """

    name: str
    train: Dataset
    valid: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: ImageSize
    metric: str = "acc"
    higher_is_better: bool = True
    kind: str = "vision"
    train_transform: Optional[BatchTransform] = field(default=None, repr=False, compare=False)
    description: str = ""

    def evaluate(self, logits: Tensor, y: Tensor) -> float:
        """Accuracy of :obj:`logits` ``[n, num_classes]`` against labels :obj:`y` ``[n]``."""
        return accuracy(logits, y)

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy of logits :obj:`out` against labels :obj:`y`."""
        return F.cross_entropy(out, y)

    @classmethod
    def from_datasets(cls, name: str, train: Dataset, valid: Dataset, test: Dataset, num_classes: int, *,
                      in_channels: Optional[int] = None, image_size: Optional[ImageSize] = None,
                      train_transform: Optional[BatchTransform] = None, description: str = "") -> "VisionTask":
        r"""A task from any three datasets of ``(image, label)`` pairs (e.g. torchvision
        datasets with a ``ToTensor`` transform, or :class:`ImageTensorDataset`).

        :obj:`in_channels` and :obj:`image_size` are read from the first training image
        ``[C, H, W]`` when not given.
        """
        if int(num_classes) < 1:
            raise ConfigError(f"{name}: num_classes must be >= 1, got {num_classes!r}")
        for split, ds in (("train", train), ("valid", valid), ("test", test)):
            if ds is None or len(ds) == 0:
                raise ConfigError(f"{name}: the {split} dataset is empty; give three non-empty datasets")
        if in_channels is None or image_size is None:
            image = train[0][0]
            if not isinstance(image, Tensor) or image.dim() != 3:
                got = f"a tensor of shape {tuple(image.shape)}" if isinstance(image, Tensor) else type(image).__name__
                raise ConfigError(f"{name}: images must be tensors [C, H, W] (got {got}); "
                                  "add a ToTensor transform or pass in_channels and image_size")
            in_channels = in_channels if in_channels is not None else int(image.size(0))
            h, w = int(image.size(1)), int(image.size(2))
            image_size = image_size if image_size is not None else (h if h == w else (h, w))
        return cls(name=name, train=train, valid=valid, test=test, num_classes=int(num_classes),
                   in_channels=int(in_channels), image_size=image_size, train_transform=train_transform,
                   description=description)


def stratified_holdout(labels: np.ndarray, size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(kept, held_out)`` sorted indices: :obj:`size` items held out, stratified by label."""
    from sklearn.model_selection import train_test_split

    kept, held = train_test_split(np.arange(len(labels)), test_size=int(size), stratify=labels,
                                  random_state=int(seed))
    return np.sort(kept), np.sort(held)


def _options(name: str, given: Dict[str, Any]) -> Dict[str, Any]:
    allowed = _OPTIONS[name]
    given = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
        raise ConfigError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    return {**allowed, **{k: coerce_option(name, k, v, allowed[k]) for k, v in given.items()}}


def _load_digits(valid_fraction: float, test_fraction: float, split_seed: int) -> VisionTask:
    from sklearn.datasets import load_digits

    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ConfigError(f"digits: valid_fraction and test_fraction must be in (0, 1) with a sum < 1, "
                          f"got {valid_fraction} and {test_fraction}")
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # [1797, 1, 8, 8] in [0, 1]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    n = len(labels)
    rest, test = stratified_holdout(bunch.target, round(test_fraction * n), split_seed)
    keep, valid = stratified_holdout(bunch.target[rest], round(valid_fraction * n), split_seed)
    train, valid = rest[keep], rest[valid]
    full = ImageTensorDataset(images, labels)
    sizes = f"{len(train)}/{len(valid)}/{len(test)}"
    return VisionTask(
        name="digits", train=full.subset(torch.from_numpy(train)), valid=full.subset(torch.from_numpy(valid)),
        test=full.subset(torch.from_numpy(test)), num_classes=10, in_channels=1, image_size=8,
        description=(f"scikit-learn digits (8x8, pixel/16 in [0, 1]); stratified train/valid/test {sizes} "
                     f"(split_seed={split_seed}, independent of the run seed)"))


def _as_tensors(name: str, ds: Any) -> Tuple[Tensor, Tensor]:
    data, targets = ds.data, ds.targets
    images = torch.as_tensor(np.asarray(data)) if not isinstance(data, Tensor) else data
    if images.dim() == 3:  # MNIST: [N, H, W]
        images = images.unsqueeze(1)
    elif images.dim() == 4 and images.size(-1) in (1, 3):  # CIFAR: [N, H, W, C] numpy
        images = images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(np.asarray(targets), dtype=torch.long)


def _load_torchvision(name: str, root: Path, valid_size: int, split_seed: int, download: bool, augment: bool,
                      normalize: bool) -> VisionTask:
    from pyg_ham.datasets.paths import offline

    tv = _torchvision.require_torchvision(f"dataset {name!r}")
    info = TORCHVISION_DATASETS[name]
    cls = getattr(tv.datasets, info["cls"])
    download = download and not offline()
    splits = {}
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except Exception:  # noqa: BLE001 - torchvision raises RuntimeError when absent
            if not download:
                raise DatasetError(f"{name} is not under {root / info['folder']} and downloading is disabled "
                                   f"(download=False or PYG_HAM_OFFLINE=1); put torchvision's files there "
                                   f"or allow the download") from None
            try:
                root.mkdir(parents=True, exist_ok=True)
                ds = cls(str(root), train=train, download=True)
            except Exception as exc:  # noqa: BLE001 - network, permissions, checksums
                first = (str(exc).strip().splitlines() or [""])[0]
                raise DatasetError(f"{name}: not under {root / info['folder']} and the download failed "
                                   f"({exc.__class__.__name__}: {first}); download it elsewhere and copy "
                                   f"torchvision's files there") from None
        splits["train" if train else "test"] = _as_tensors(name, ds)
    images, labels = splits["train"]
    if not 0 < valid_size < len(labels):
        raise ConfigError(f"{name}: valid_size must be in [1, {len(labels) - 1}], got {valid_size}")
    keep, valid = stratified_holdout(labels.numpy(), valid_size, split_seed)
    stats = {"mean": info["mean"], "std": info["std"]} if normalize else {}
    full = ImageTensorDataset(images, labels, **stats)
    test = ImageTensorDataset(*splits["test"], **stats)
    return VisionTask(
        name=name, train=full.subset(torch.from_numpy(keep)), valid=full.subset(torch.from_numpy(valid)), test=test,
        num_classes=info["classes"], in_channels=info["channels"], image_size=info["size"],
        train_transform=random_crop_flip if augment else None,
        description=(f"torchvision {info['cls']}: official test set; {valid_size} validation images held out of "
                     f"the training set (stratified, split_seed={split_seed}); "
                     f"{'normalised' if normalize else 'in [0, 1]'}"
                     f"{'; crop+flip augmentation' if augment else ''}"))


def list_vision_datasets(root: Optional[Union[str, Path]] = None) -> List[Dict[str, Any]]:
    r"""The image datasets, in the row format of :func:`pyg_ham.datasets.list_datasets`:
    ``name``, ``task`` (``"vision"``), ``metric``, ``present`` (``digits`` always; the
    torchvision ones when their folder under the data root holds files) and ``path``."""
    from pyg_ham.datasets.paths import data_root, has_files

    base = data_root(root)
    rows = [{"name": "digits", "task": "vision", "metric": "acc", "present": True, "path": ""}]
    for name, info in TORCHVISION_DATASETS.items():
        where = base / info["folder"]
        rows.append({"name": name, "task": "vision", "metric": "acc", "present": has_files(where),
                     "path": str(where)})
    return rows


def load_vision_task(name: str, root: Optional[Union[str, Path]] = None, **options: Any) -> VisionTask:
    r"""Load an image-classification task by name.

    Args:
        name (str): one of :data:`VISION_DATASETS` (case-insensitive).
        root (str or Path, optional): data root for the torchvision datasets (default:
            ``$PYG_HAM_DATA`` or ``~/.cache/pyg_ham/data``); ``digits`` needs none.
        **options: ``digits``: ``valid_fraction=0.2``, ``test_fraction=0.2``,
            ``split_seed=0``. torchvision datasets: ``valid_size=5000``, ``split_seed=0``,
            ``download=True``, ``augment`` (CIFAR: :obj:`True`, MNIST: :obj:`False`),
            ``normalize=True``. Strings (from ``-o key=value``) are converted.

    Raises:
        DatasetError: unknown name, or data absent and not downloadable.
        MissingDependencyError: a torchvision dataset without an importable torchvision.
        ConfigError: an unknown or invalid option.
    """
    key = str(name).strip().lower()
    if key not in VISION_DATASETS:
        raise DatasetError(f"unknown image dataset {name!r}; choose one of: {', '.join(VISION_DATASETS)}")
    opts = _options(key, options)
    if key == "digits":
        return _load_digits(**opts)
    from pyg_ham.datasets.paths import data_root

    return _load_torchvision(key, data_root(root), **opts)
