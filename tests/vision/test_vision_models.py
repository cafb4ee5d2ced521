"""Vision models and which of their tensors get HAM's hyperbolic step."""
import copy
import math

import pytest
import torch
from torch import nn

from pyg_ham.errors import ConfigError, MissingDependencyError
from pyg_ham.train.common import make_optimizer
from pyg_ham.vision import VISION_MODELS, VisionCNN, VisionMLP, build_vision_model, vision_config


@pytest.mark.parametrize("size", [8, 28, 32, (5, 9), 1])
@pytest.mark.parametrize("name", ["cnn", "mlp", "CNN"])
def test_builtin_models_shapes(name, size):
    h, w = (size, size) if isinstance(size, int) else size
    model = build_vision_model(name, 3, 7, size, hidden=8, dropout=0.1, layers=3)
    assert isinstance(model, VisionCNN if name.lower() == "cnn" else VisionMLP)
    assert model(torch.randn(4, 3, h, w)).shape == (4, 7)


def test_cnn_structure():
    model = build_vision_model("cnn", 1, 10, 8, hidden=32, layers=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == [32, 64] and len(bns) == 2
    assert all(c.bias is None for c in convs)
    # params: conv 1*32*9 + 32*64*9, BN 2*(32+64), linear 64*10+10
    assert sum(p.numel() for p in model.parameters()) == 288 + 18432 + 192 + 650


def test_bad_model_names_and_sizes(no_torchvision):
    assert VISION_MODELS == ("cnn", "mlp")
    with pytest.raises(ConfigError, match="unknown image model 'foo'; choose one of: cnn, mlp"):
        build_vision_model("foo", 1, 10, 8)
    with pytest.raises(ConfigError, match="num_classes"):
        build_vision_model("cnn", 1, 0, 8)
    with pytest.raises(ConfigError, match="dropout"):
        build_vision_model("mlp", 1, 10, 8, dropout=1.5)
    with pytest.raises(ConfigError, match="takes no option"):
        build_vision_model("cnn", 1, 10, 8, weights="DEFAULT")


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "mobilenet_v3_small", "ResNet50"])
def test_torchvision_models_need_torchvision(no_torchvision, name):
    with pytest.raises(MissingDependencyError, match=rf"model '{name.lower()}' needs torchvision.*pip install"):
        build_vision_model(name, 3, 10, 32)


def test_torchvision_model_with_small_input_stem(fake_torchvision):
    model = build_vision_model("resnet18", 1, 10, 28)
    assert fake_torchvision.built == ["resnet18"]
    assert model.conv1.in_channels == 1 and model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    big = build_vision_model("resnet18", 1, 5, 96)  # ImageNet stem kept; grey images repeated to RGB
    assert big[1].conv1.kernel_size == (7, 7) and big(torch.randn(2, 1, 96, 96)).shape == (2, 5)
    with pytest.raises(ConfigError, match="choose one of: cnn, mlp, resnet18"):
        build_vision_model("resnet999", 3, 10, 32)
    with pytest.raises(ConfigError, match="3 input channels"):
        build_vision_model("resnet18", 4, 10, 96)


def _one_step(model, cfg, x, y):
    opt = make_optimizer(model, cfg)
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    return grads


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.1)])
def test_hyperbolic_step_on_conv_and_linear_weights_only(optimizer, lr):
    r"""From the same state, HAM's step = the base step followed by
    w <- w * exp(-lr * (alpha * sign(w) * g + beta)) on conv/linear weights; BN and biases
    get exactly the base step."""
    alpha, beta = 200.0, 1e-3
    torch.manual_seed(0)
    model = VisionCNN(1, 10, 8, hidden=8)
    model.classifier.bias.data.normal_()  # non-trivial state everywhere
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    with_ham, without = copy.deepcopy(model), copy.deepcopy(model)
    cfg = vision_config(optimizer=optimizer, lr=lr, alpha=alpha, beta=beta, momentum=0.0,
                       max_exponent=float("inf"))  # the unclamped update
    grads = _one_step(with_ham, cfg.replace(ham=True), x, y)
    grads_base = _one_step(without, cfg.replace(ham=False), x, y)

    hyperbolic = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert hyperbolic == {"features.0.weight", "features.4.weight", "classifier.weight"}
    plain = {n for n, _ in model.named_parameters()} - hyperbolic
    assert plain == {"features.1.weight", "features.1.bias", "features.5.weight", "features.5.bias",
                     "classifier.bias"}
    base_params = dict(without.named_parameters())
    for name, p in with_ham.named_parameters():
        w, g = base_params[name].detach(), grads[name]
        torch.testing.assert_close(g, grads_base[name], rtol=0, atol=0)
        if name in hyperbolic:
            expected = w * torch.exp(-lr * (alpha * torch.sign(w) * g + beta))
            torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)
            assert (p.detach() - w).abs().max() > 1e-4, name  # the hyperbolic step moved it
        else:
            assert torch.equal(p.detach(), w), name
        assert not torch.equal(p.detach(), dict(model.named_parameters())[name].detach()), name  # all trained


def test_hyperbolic_step_multiplier_matches_formula_by_hand():
    """One scalar checked against numbers computed by hand (SGD, no momentum)."""
    layer = nn.Linear(1, 1, bias=False)
    layer.weight.data.fill_(0.5)
    cfg = vision_config(optimizer="sgd", lr=0.1, alpha=2.0, beta=0.5, momentum=0.0)
    opt = make_optimizer(layer, cfg)
    layer.weight.grad = torch.full((1, 1), 0.25)
    opt.step()
    w = 0.5 - 0.1 * 0.25  # SGD: 0.475
    assert layer.weight.item() == pytest.approx(w * math.exp(-0.1 * (2.0 * 0.25 + 0.5)), rel=1e-6)
