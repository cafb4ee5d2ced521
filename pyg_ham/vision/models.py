r"""Image classifiers: a small CNN with batch norm, an MLP, and torchvision's models.

Which tensors HAM acts on is *not* decided here: :func:`~pyg_ham.optim.build_optimizer`'s
default rule (``ndim >= 2``) gives convolution kernels and linear weights the hyperbolic
step and leaves batch-norm parameters and biases to the base optimizer alone, for these
models and for any other ``nn.Module``.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple, Union

from torch import Tensor, nn

from pyg_ham.errors import ConfigError, MissingDependencyError
from pyg_ham.validation import check_number
from pyg_ham.vision import _torchvision

__all__ = ["VISION_MODELS", "VisionCNN", "VisionMLP", "build_vision_model", "looks_like_torchvision_model"]

#: The built-in models; torchvision's classification models (``resnet18``, ...) are
#: accepted too when torchvision is importable.
VISION_MODELS: Tuple[str, ...] = ("cnn", "mlp")

_TORCHVISION_FAMILIES = re.compile(
    r"^(alexnet|convnext|densenet|efficientnet|googlenet|inception|maxvit|mnasnet|mobilenet|regnet|resnet|"
    r"resnext|shufflenet|squeezenet|swin|vgg|vit|wide_resnet)")


def _pair(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class VisionCNN(nn.Module):
    r"""A small convolutional network with batch norm.

    :obj:`num_layers` blocks ``Conv3x3 (no bias) -> BatchNorm2d -> ReLU -> MaxPool2``
    (the pooling is skipped once the feature map is smaller than 2 pixels), channel widths
    :obj:`hidden`, :obj:`2 * hidden`, :obj:`4 * hidden`, ...; then global average pooling,
    dropout and a linear classifier.

    Args:
        in_channels (int): image channels.
        num_classes (int): output classes.
        image_size (int or (int, int)): input height and width.
        hidden (int): channels of the first block. (default: :obj:`32`)
        num_layers (int): convolution blocks. (default: :obj:`2`)
        dropout (float): dropout before the classifier. (default: :obj:`0.0`)
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: Union[int, Tuple[int, int]] = 32,
                 hidden: int = 32, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        h, w = _pair(image_size)
        blocks: List[nn.Module] = []
        channels = in_channels
        for i in range(num_layers):
            out = hidden * 2 ** i
            blocks += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            if min(h, w) >= 2:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            channels = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.pool(self.features(x)).flatten(1)))


class VisionMLP(nn.Module):
    r"""A multi-layer perceptron on flattened images: :obj:`num_layers` hidden layers
    ``Linear -> ReLU -> Dropout`` of width :obj:`hidden`, then a linear classifier.

    Args:
        in_channels (int): image channels.
        num_classes (int): output classes.
        image_size (int or (int, int)): input height and width.
        hidden (int): hidden width. (default: :obj:`256`)
        num_layers (int): hidden layers (0 gives a linear classifier). (default: :obj:`2`)
        dropout (float): dropout after each hidden layer. (default: :obj:`0.0`)
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: Union[int, Tuple[int, int]] = 32,
                 hidden: int = 256, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        h, w = _pair(image_size)
        layers: List[nn.Module] = [nn.Flatten()]
        width = in_channels * h * w
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _RepeatChannels(nn.Module):
    """Repeat a 1-channel image to 3 channels (for torchvision models built for RGB)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.expand(-1, 3, -1, -1) if x.size(1) == 1 else x


def looks_like_torchvision_model(name: str) -> bool:
    """Whether :obj:`name` is the name of a torchvision model family (``resnet18``, ``vgg11``, ...)."""
    return bool(_TORCHVISION_FAMILIES.match(name))


def _torchvision_names(tv: Any) -> List[str]:
    models = tv.models
    if hasattr(models, "list_models"):
        return sorted(models.list_models(module=models))
    return sorted(n for n in dir(models) if looks_like_torchvision_model(n) and callable(getattr(models, n)))


def _torchvision_model(name: str, in_channels: int, num_classes: int, image_size: Tuple[int, int],
                       small_input: Optional[bool], **kwargs: Any) -> nn.Module:
    tv = _torchvision.require_torchvision(f"model {name!r}")
    names = _torchvision_names(tv)
    if name not in names:
        raise ConfigError(f"unknown image model {name!r}; choose one of: {', '.join(VISION_MODELS + tuple(names))}")
    kwargs.setdefault("weights", None)  # random initialisation: no download
    factory = getattr(tv.models, "get_model", None)
    try:
        model = factory(name, num_classes=num_classes, **kwargs) if factory else \
            getattr(tv.models, name)(num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build torchvision model {name!r}: {exc}") from None
    small = min(image_size) <= 64 if small_input is None else small_input
    conv1 = getattr(model, "conv1", None)
    if small and isinstance(conv1, nn.Conv2d) and isinstance(getattr(model, "maxpool", None), nn.Module):
        # the usual CIFAR stem for ResNets: 3x3 stride-1 first conv, no max pooling
        model.conv1 = nn.Conv2d(in_channels, conv1.out_channels, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        return model
    if in_channels == 1:
        return nn.Sequential(_RepeatChannels(), model)
    if in_channels != 3:
        raise ConfigError(f"torchvision model {name!r} expects 3 input channels (or 1, repeated), got {in_channels}")
    return model


def build_vision_model(name: str, in_channels: int, num_classes: int, image_size: Union[int, Tuple[int, int]],
                       hidden: Optional[int] = None, dropout: float = 0.0, layers: int = 2, *,
                       small_input: Optional[bool] = None, **kwargs: Any) -> nn.Module:
    r"""Build an image classifier by name.

    Args:
        name (str): ``"cnn"`` (:class:`VisionCNN`), ``"mlp"`` (:class:`VisionMLP`) or a
            torchvision classification model (``"resnet18"``, ``"vgg11_bn"``, ...) when
            torchvision is importable (case-insensitive).
        in_channels (int): image channels.
        num_classes (int): output classes.
        image_size (int or (int, int)): image height and width.
        hidden (int, optional): width (CNN: first block's channels, default 32; MLP: hidden
            units, default 256). Ignored by torchvision models.
        dropout (float): dropout probability (built-in models). (default: :obj:`0.0`)
        layers (int): convolution blocks (CNN) or hidden layers (MLP). (default: :obj:`2`)
        small_input (bool, optional): torchvision ResNet-style models only: replace the
            ImageNet stem (7x7 stride-2 conv and max pooling) by a 3x3 stride-1 conv, as is
            usual on CIFAR. (default: :obj:`None`, when the image side is at most 64)
        **kwargs: passed to torchvision's ``get_model`` (``weights`` defaults to
            :obj:`None`: random initialisation).

    Raises:
        ConfigError: unknown name or invalid size.
        MissingDependencyError: a torchvision model name without an importable torchvision.
    """
    key = str(name).strip().lower()
    check_number("in_channels", in_channels, 1, integer=True)
    check_number("num_classes", num_classes, 1, integer=True)
    check_number("layers", layers, 0 if key == "mlp" else 1, integer=True)
    check_number("dropout", dropout, 0.0, 1.0)
    size = _pair(image_size)
    check_number("image_size", min(size), 1, integer=True)
    if hidden is not None:
        check_number("hidden", hidden, 1, integer=True)
    if key in ("cnn", "mlp"):
        if kwargs:
            raise ConfigError(f"model {key!r} takes no option(s) {', '.join(sorted(kwargs))}")
        if key == "cnn":
            return VisionCNN(in_channels, num_classes, size, hidden=hidden or 32, num_layers=layers, dropout=dropout)
        return VisionMLP(in_channels, num_classes, size, hidden=hidden or 256, num_layers=layers, dropout=dropout)
    try:
        return _torchvision_model(key, in_channels, num_classes, size, small_input, **kwargs)
    except MissingDependencyError:
        if looks_like_torchvision_model(key):
            raise
        raise ConfigError(f"unknown image model {name!r}; choose one of: {', '.join(VISION_MODELS)} "
                          f"(or a torchvision model such as resnet18, once torchvision is installed)") from None
