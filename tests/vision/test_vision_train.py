"""Training image classifiers on the shared engine: accuracy, history, resume, any model/dataset."""
import pytest
import torch
from torch import nn

from pyg_ham.train.runner import run_experiment
from pyg_ham.vision import fit_classifier, train_vision_run, vision_config

CPU = torch.device("cpu")


@pytest.mark.parametrize("ham", [True, False])
def test_digits_cnn_accuracy(digits, ham):
    """10 epochs of the CNN (Adam 1e-3, batch 64) reach >= 0.95 test accuracy (measured ~0.97-0.99 over seeds)."""
    result = train_vision_run(digits, vision_config(epochs=10, ham=ham, quiet=True), 0, CPU)
    assert result.test >= 0.95, result
    assert result.valid >= 0.95 and 1 <= result.best_epoch <= 10
    assert result.extra["run"] == 0 and result.extra["num_params"] == 19562
    last = result.history[-1]
    for key in ("loss", "lr", "train", "valid", "test", "near_zero", "zero", "l1", "sign_flips"):
        assert key in last, key
    assert result.history[0]["loss"] > last["loss"]
    assert result.test == result.history[result.best_epoch - 1]["test"]


def test_ham_and_base_differ_from_the_same_start(digits):
    runs = [train_vision_run(digits, vision_config(epochs=1, ham=ham, quiet=True, eval_train=False), 0, CPU)
            for ham in (True, False, True)]
    assert runs[0].history[0]["l1"] != runs[1].history[0]["l1"]
    assert runs[0].history[0]["l1"] == runs[2].history[0]["l1"]  # deterministic per seed


def test_resume_continues_exactly(digits, tmp_path):
    ckpt = tmp_path / "run0.pt"
    cfg = vision_config(epochs=4, quiet=True, eval_train=False, model="mlp", hidden=32, dropout=0.2)
    full = train_vision_run(digits, cfg, 1, CPU)
    train_vision_run(digits, cfg.replace(epochs=2), 1, CPU, checkpoint=ckpt)  # "interrupted" after 2 epochs
    resumed = train_vision_run(digits, cfg, 1, CPU, checkpoint=ckpt, resume=True)
    keys = ("epoch", "loss", "valid", "test", "l1", "near_zero", "sign_flips")
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in full.history]
    assert resumed.seed == full.seed == 1


class _ListDataset(torch.utils.data.Dataset):
    """A plain map-style dataset (no batch indexing): the standard DataLoader path."""

    def __init__(self, tensor_dataset):
        self.items = [tensor_dataset[i] for i in range(len(tensor_dataset))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.conv(x))).flatten(1))


def test_fit_classifier_any_module_any_dataset(digits):
    train, valid = _ListDataset(digits.train), _ListDataset(digits.valid)
    test = torch.utils.data.TensorDataset(*digits.test[torch.arange(len(digits.test))])
    result = fit_classifier(_TinyNet, train, valid, test, num_classes=10, name="tiny", epochs=3, quiet=True,
                            device="cpu", batch_size=32)
    assert result.test > 0.8 and len(result.history) == 3
    assert result.extra["num_params"] == 4 * 9 + 4 + 8 + 256 * 10 + 10
    # the diagnostics watch exactly the conv and linear weights
    assert result.history[-1]["l1"] > 0


def test_model_factory_reinitialises_each_run(digits):
    cfg = vision_config(epochs=1, quiet=True, eval_train=False)
    made = []

    def factory():
        made.append(_TinyNet())
        return made[-1]

    a = train_vision_run(digits, cfg, 0, CPU, model=factory)
    b = train_vision_run(digits, cfg, 0, CPU, model=factory)
    c = train_vision_run(digits, cfg, 1, CPU, model=factory)
    assert len(made) == 3 and a.history[0]["loss"] == b.history[0]["loss"] != c.history[0]["loss"]
    with pytest.raises(TypeError):
        train_vision_run(digits, cfg, 0, CPU, model=lambda: "not a module")


def test_run_experiment_on_digits(tmp_path):
    from pyg_ham.results import read_json

    out = tmp_path / "digits.json"
    cfg = vision_config(epochs=2, runs=2, quiet=True, model="mlp", out=str(out), eval_train=False)
    doc = run_experiment(cfg, log=lambda msg: None)
    assert (doc["dataset"], doc["task"], doc["metric"], doc["model"]) == ("digits", "vision", "acc", "mlp")
    assert [r["seed"] for r in doc["runs"]] == [0, 1] and doc["summary"]["runs"] == 2
    assert read_json(out)["summary"]["test_mean"] == doc["summary"]["test_mean"]
    again = run_experiment(cfg.replace(resume=True), log=lambda msg: None)  # finished runs are skipped
    assert [(r["seed"], r["valid"], r["test"]) for r in again["runs"]] == \
        [(r["seed"], r["valid"], r["test"]) for r in doc["runs"]]


def test_sparse_training_on_vision(digits):
    cfg = vision_config(epochs=2, quiet=True, eval_train=False, sparsity=0.5, sparsifier="magnitude")
    result = train_vision_run(digits, cfg, 0, CPU)
    assert "sparsity" in result.extra
    assert result.history[-1]["zero"] >= 0.45


def test_torchvision_dataset_and_model_through_the_runner(fake_torchvision, tmp_path):
    """CIFAR-10 (fake files, crop+flip augmentation) with a torchvision-built ResNet, via run_experiment."""
    (tmp_path / "cifar-10-batches-py").mkdir()
    cfg = vision_config(dataset="cifar10", root=str(tmp_path), dataset_options={"valid_size": "50"},
                        model="resnet18", epochs=1, quiet=True, batch_size=128)
    doc = run_experiment(cfg, log=lambda msg: None)
    assert (doc["dataset"], doc["task"], doc["model"]) == ("cifar10", "vision", "resnet18")
    assert fake_torchvision.built == ["resnet18"]
    (run,) = doc["runs"]
    assert run["num_params"] == 8 * 3 * 9 + 16 + 8 * 10 + 10  # 3x3 stem, BN, fc
    assert {"near_zero", "l1", "sign_flips"} <= set(run["history"][0])
