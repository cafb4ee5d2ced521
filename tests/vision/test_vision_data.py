"""Vision datasets: the digits split, in-memory datasets, augmentation, names and options."""
import numpy as np
import pytest
import torch

from pyg_ham.errors import ConfigError, DatasetError, MissingDependencyError
from pyg_ham.vision import (
    VISION_DATASETS,
    ImageTensorDataset,
    VisionTask,
    is_vision_dataset,
    load_vision_task,
    random_crop_flip,
)


def test_is_vision_dataset():
    assert VISION_DATASETS == ("digits", "mnist", "cifar10", "cifar100")
    for name in ("digits", "DIGITS", "MNIST", "Cifar10", "cifar100"):
        assert is_vision_dataset(name)
    for name in ("Cora", "MUTAG", "synthetic", "imagenet", "", None):
        assert not is_vision_dataset(name)


def test_digits_task(digits):
    from sklearn.datasets import load_digits

    assert (digits.name, digits.kind, digits.metric, digits.higher_is_better) == ("digits", "vision", "acc", True)
    assert (digits.num_classes, digits.in_channels, digits.image_size) == (10, 1, 8)
    sizes = [len(digits.train), len(digits.valid), len(digits.test)]
    assert sum(sizes) == 1797 and sizes == [1079, 359, 359]
    x, y = digits.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
    # every split image is one of sklearn's images / 16, each used exactly once
    raw = load_digits()
    table = {(bytes((img.astype(np.float32) / 16).tobytes()), int(t)) for img, t in zip(raw.images, raw.target)}
    seen = []
    for ds in (digits.train, digits.valid, digits.test):
        images, labels = ds[torch.arange(len(ds))]
        assert 0.0 <= images.min() and images.max() <= 1.0
        seen += [(bytes(img[0].numpy().tobytes()), int(lbl)) for img, lbl in zip(images, labels)]
    assert len(seen) == 1797 and set(seen) <= table
    # stratified: each class's share in valid/test is within one image of its share overall
    overall = np.bincount(raw.target, minlength=10) / 1797
    for ds in (digits.valid, digits.test):
        counts = np.bincount(ds.labels.numpy(), minlength=10)
        assert np.all(np.abs(counts - overall * len(ds)) <= 1)


def test_digits_split_is_fixed_and_seedable(digits):
    again = load_vision_task("Digits")
    assert torch.equal(again.test.labels, digits.test.labels) and torch.equal(again.test.images, digits.test.images)
    other = load_vision_task("digits", split_seed="1", valid_fraction="0.1")  # strings, as from -o key=value
    assert len(other.valid) == 180 and not torch.equal(other.test.images, digits.test.images)


def test_bad_names_and_options():
    with pytest.raises(DatasetError, match="choose one of: digits, mnist, cifar10, cifar100"):
        load_vision_task("imagenet")
    with pytest.raises(ConfigError, match="unknown option.*valid_fraction"):
        load_vision_task("digits", nope=1)
    with pytest.raises(ConfigError, match="split_seed"):
        load_vision_task("digits", split_seed="1.5")
    with pytest.raises(ConfigError, match="valid_fraction"):
        load_vision_task("digits", valid_fraction=0.9)


def test_image_tensor_dataset_item_and_batch():
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 1, 0])
    ds = ImageTensorDataset(images, labels, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    x, y = ds[2]
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.5]).view(3, 1, 1)
    torch.testing.assert_close(x, (images[2].float() / 255 - mean) / std)
    assert int(y) == 2
    xb, yb = ds[[4, 2]]
    torch.testing.assert_close(xb[1], x)
    assert yb.tolist() == [0, 2]
    sub = ds.subset(torch.tensor([1, 3]))
    assert len(sub) == 2 and torch.equal(sub[0][0], ds[1][0])
    with pytest.raises(ValueError):
        ImageTensorDataset(torch.zeros(3, 4, 4), labels[:3])


def test_random_crop_flip_is_a_padded_crop():
    x = torch.randn(16, 2, 5, 6, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    out = random_crop_flip(x, padding=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(16):
        candidates = [(padded[i, :, a:a + 5, b:b + 6], f) for a in range(5) for b in range(5) for f in (False, True)]
        matches = [f for crop, f in candidates if torch.equal(out[i], crop.flip(-1) if f else crop)]
        assert matches, f"image {i} is not a crop of the padded image"
        flips += all(matches)
    assert 0 < flips < 16  # some flipped, some not
    torch.manual_seed(0)
    assert torch.equal(random_crop_flip(x, padding=2), out)  # drawn from the (seeded) global RNG


def test_from_datasets_infers_shapes():
    train = torch.utils.data.TensorDataset(torch.rand(6, 3, 5, 7), torch.arange(6) % 2)
    task = VisionTask.from_datasets("toy", train, train, train, num_classes=2)
    assert (task.in_channels, task.image_size, task.kind) == (3, (5, 7), "vision")
    assert task.evaluate(torch.tensor([[2.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0])) == 0.5
    with pytest.raises(ConfigError, match="empty"):
        VisionTask.from_datasets("toy", train, [], train, num_classes=2)
    flat = torch.utils.data.TensorDataset(torch.rand(6, 10), torch.arange(6) % 2)
    with pytest.raises(ConfigError, match=r"\[C, H, W\]"):
        VisionTask.from_datasets("toy", flat, flat, flat, num_classes=2)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "CIFAR100"])
def test_torchvision_datasets_need_torchvision(no_torchvision, name):
    with pytest.raises(MissingDependencyError, match=r"needs torchvision.*pip install .*torchvision"):
        load_vision_task(name)


def test_broken_torchvision_build_counts_as_absent(monkeypatch):
    """A torchvision built for another torch raises RuntimeError on import, not ImportError."""
    from pyg_ham.vision import _torchvision

    def broken(name):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(_torchvision.importlib, "import_module", broken)
    assert not _torchvision.torchvision_available()
    with pytest.raises(MissingDependencyError, match="RuntimeError: operator torchvision::nms"):
        load_vision_task("mnist")


def test_mnist_with_torchvision(fake_torchvision, tmp_path):
    FakeMNIST = fake_torchvision.datasets.MNIST
    (tmp_path / "MNIST").mkdir()
    task = load_vision_task("mnist", root=tmp_path, valid_size=100)
    assert (task.num_classes, task.in_channels, task.image_size, task.train_transform) == (10, 1, 28, None)
    assert (len(task.train), len(task.valid), len(task.test)) == (500, 100, 100)
    raw = FakeMNIST(str(tmp_path), train=True).raw
    # valid carved from train: disjoint, together all 600 training images, stratified (10 per class)
    rows = {bytes(r.tobytes()) for r in raw}
    train_rows = {bytes(r.tobytes()) for r in task.train.images[:, 0].numpy()}
    valid_rows = {bytes(r.tobytes()) for r in task.valid.images[:, 0].numpy()}
    assert train_rows | valid_rows == rows and not train_rows & valid_rows
    assert np.bincount(task.valid.labels.numpy()).tolist() == [10] * 10
    x, _ = task.test[0]
    torch.testing.assert_close(x, (torch.from_numpy(FakeMNIST(str(tmp_path), train=False).raw[0]).float()[None] / 255
                                   - 0.1307) / 0.3081)
    same = load_vision_task("mnist", root=tmp_path, valid_size=100)
    assert torch.equal(same.valid.labels, task.valid.labels) and torch.equal(same.valid.images, task.valid.images)


def test_cifar_with_torchvision(fake_torchvision, tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    task = load_vision_task("cifar10", root=tmp_path, valid_size=50, normalize=False)
    assert (task.in_channels, task.image_size, task.train_transform) == (3, 32, random_crop_flip)
    FakeCIFAR10 = fake_torchvision.datasets.CIFAR10
    raw = FakeCIFAR10(str(tmp_path), train=False).raw
    assert torch.equal(task.test.images[3], torch.from_numpy(raw[3]).permute(2, 0, 1))
    torch.testing.assert_close(task.test[3][0], torch.from_numpy(raw[3]).permute(2, 0, 1).float() / 255)
    assert load_vision_task("cifar10", root=tmp_path, valid_size=50, augment="false").train_transform is None


def test_torchvision_dataset_absent(fake_torchvision, tmp_path, monkeypatch):
    FakeMNIST = fake_torchvision.datasets.MNIST
    with pytest.raises(DatasetError, match=r"not under .*MNIST.*download=False"):
        load_vision_task("mnist", root=tmp_path, download=False)
    monkeypatch.setenv("PYG_HAM_OFFLINE", "1")
    with pytest.raises(DatasetError, match="PYG_HAM_OFFLINE"):
        load_vision_task("mnist", root=tmp_path)
    assert FakeMNIST.downloads == []
    monkeypatch.delenv("PYG_HAM_OFFLINE")
    with pytest.raises(DatasetError, match=r"download failed \(OSError: network access is disabled in tests\)"):
        load_vision_task("mnist", root=tmp_path)
    assert FakeMNIST.downloads == [str(tmp_path / "MNIST")]


def test_list_vision_datasets(tmp_path):
    from pyg_ham.vision import list_vision_datasets

    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"x")
    rows = {r["name"]: r for r in list_vision_datasets(tmp_path)}
    assert list(rows) == list(VISION_DATASETS)
    assert rows["digits"]["present"] and rows["mnist"]["present"] and not rows["cifar10"]["present"]
    assert rows["cifar100"]["path"] == str(tmp_path.resolve() / "cifar-100-python")
    assert {r["task"] for r in rows.values()} == {"vision"}
