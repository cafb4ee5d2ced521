"""The shared epoch engine: model selection, history, resume, divergence, early stopping."""
from types import SimpleNamespace

import pytest
import torch

from pyg_ham.optim import build_optimizer
from pyg_ham.train import TrainingTask, best_epoch, fit, is_better
from pyg_ham.train.config import ExperimentConfig


def test_best_epoch_on_crafted_histories():
    h = [{"epoch": 1, "valid": 0.5}, {"epoch": 2, "valid": 0.7}, {"epoch": 3, "valid": 0.7},
         {"epoch": 4, "valid": float("nan")}, {"epoch": 5, "valid": 0.6}]
    assert best_epoch(h) == 2  # ties keep the earlier epoch, NaN never wins
    assert best_epoch(h, higher_is_better=False) == 1
    assert best_epoch([{"epoch": 1, "loss": 1.0}]) == 0
    assert is_better(0.1, None) and not is_better(float("nan"), 0.1)


class Regression(TrainingTask):
    """A linear regression problem as a task kind; the validation curve can be scripted."""

    def __init__(self, seed=0, losses=None, scores=None, epochs=30, **cfg):
        self.cfg = ExperimentConfig(epochs=epochs, quiet=True, **cfg)
        super().__init__(SimpleNamespace(name="regression", higher_is_better=True), self.cfg,
                         {"key": "run0", "seed": 0}, torch.device("cpu"))
        gen = torch.Generator().manual_seed(0)  # the same data for every seed
        self.x = torch.randn(64, 8, generator=gen)
        self.y = self.x @ torch.randn(8, 1, generator=gen)
        torch.manual_seed(seed)
        self.model = self.build_model()
        self.opt = build_optimizer(self.model, "adam", lr=0.01, alpha=20.0, beta=1e-3)
        self.losses, self.scripted_losses, self.scores = [], losses, scores

    def build_model(self):
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))

    def train_batches(self):
        return [(self.x[:40], self.y[:40]), (self.x[40:], self.y[40:])]  # two steps, unequal sizes

    def batch_loss(self, model, batch):
        x, y = batch
        loss = (model(x) - y).pow(2).mean()  # dropout: consumes the RNG
        self.losses.append((loss.item(), len(x)))
        if self.scripted_losses is not None:
            loss = loss * 0 + next(self.scripted_losses)
        return loss, len(x)

    def predict(self, model):
        if self.scores is not None:
            return {"valid": (next(self.scores), None), "test": (0.0, None)}
        out = model(self.x)
        return {k: (out, self.y) for k in ("train", "valid", "test")}

    def score(self, pred, target):
        if target is None:
            return pred
        return -float((pred - target).pow(2).mean())

    def fit(self, **kw):
        return fit(self, self.model, self.opt, self.cfg, **kw)


def test_fit_loss_falls_and_reports_test_at_best_valid():
    prob = Regression()
    result = prob.fit()
    assert prob.losses[-1][0] < 0.5 * prob.losses[0][0]
    record = result.history[result.best_epoch - 1]
    assert result.test == record["test"] and result.valid == max(r["valid"] for r in result.history)
    for key in ("loss", "time", "lr", "near_zero", "zero", "l1", "sign_flips"):
        assert key in record
    assert 0 <= record["near_zero"] <= 1 and record["l1"] > 0
    assert result.extra["num_params"] == 8 * 16 + 16 + 16 + 1


def test_epoch_loss_is_the_example_weighted_mean_of_batch_losses():
    prob = Regression(epochs=3)
    result = prob.fit()
    for epoch, record in enumerate(result.history):
        (a, na), (b, nb) = prob.losses[2 * epoch:2 * epoch + 2]
        assert record["loss"] == pytest.approx((a * na + b * nb) / (na + nb), rel=1e-6)


def test_resume_continues_exactly(tmp_path):
    full = Regression(epochs=12)
    expected = full.fit()

    class Interrupt(Exception):
        pass

    part = Regression(epochs=12)
    real, calls = part.batch_loss, {"n": 0}

    def interrupted(model, batch):
        calls["n"] += 1
        if calls["n"] == 11:  # the first step of epoch 6
            raise Interrupt
        return real(model, batch)

    part.batch_loss = interrupted
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        part.fit(checkpoint=ckpt)
    again = Regression(seed=1, epochs=12)  # a fresh process: different init, everything comes from the checkpoint
    resumed = again.fit(checkpoint=ckpt, resume=True)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in expected.history]
    assert resumed.best_epoch == expected.best_epoch and resumed.test == expected.test
    for p, q in zip(full.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


def test_non_finite_loss_ends_the_run_marked_diverged():
    prob = Regression(losses=iter([1.0, 1.0, 0.5, 0.5, float("nan"), 0.1, 0.1, 0.1]), epochs=4)
    result = prob.fit()
    assert result.extra["diverged"] and len(result.history) == 3 and result.best_epoch in (1, 2)


def test_early_stopping_after_patience_evaluations():
    prob = Regression(scores=iter([0.1, 0.3, 0.2, 0.2, 0.25, 0.9, 0.9]), epochs=7, patience=3)
    result = prob.fit()
    assert len(result.history) == 5 and result.best_epoch == 2
