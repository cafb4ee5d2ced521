r"""The vision adapter: image classification with HAM on the same optimizer core.

.. code-block:: python

    from pyg_ham.vision import load_vision_task, train_vision_run, vision_config

    task = load_vision_task("digits")                  # offline, scikit-learn's 8x8 digits
    cfg = vision_config(epochs=30, ham=True)           # cnn, Adam lr 1e-3, batch 64
    result = train_vision_run(task, cfg, run=0, device=torch.device("cpu"))

or, for any model and any datasets, :func:`fit_classifier`; from the shell,
``pyg-ham vision`` (or ``pyg-ham train --dataset digits``). ``mnist``, ``cifar10``,
``cifar100`` and torchvision models (``resnet18``, ...) need an importable torchvision
(not an install requirement: its wheels pin one exact torch release).
"""
from pyg_ham.vision._torchvision import torchvision_available
from pyg_ham.vision.data import (
    TORCHVISION_DATASETS,
    VISION_DATASETS,
    ImageTensorDataset,
    VisionTask,
    is_vision_dataset,
    list_vision_datasets,
    load_vision_task,
    random_crop_flip,
)
from pyg_ham.vision.models import VISION_MODELS, VisionCNN, VisionMLP, build_vision_model
from pyg_ham.vision.trainer import (
    DEFAULT_VISION_BATCH_SIZE,
    VISION_DEFAULTS,
    fit_classifier,
    make_loader,
    train_vision_run,
    vision_config,
)

__all__ = [
    "VISION_DATASETS", "VISION_MODELS", "TORCHVISION_DATASETS", "is_vision_dataset", "load_vision_task",
    "list_vision_datasets",
    "build_vision_model", "train_vision_run", "fit_classifier", "VisionTask", "ImageTensorDataset", "VisionCNN",
    "VisionMLP", "random_crop_flip", "make_loader", "vision_config", "VISION_DEFAULTS", "DEFAULT_VISION_BATCH_SIZE",
    "torchvision_available",
]
