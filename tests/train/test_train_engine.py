"""The shared epoch engine: model selection, history, resume, divergence, early stopping."""
import math

import pytest
import torch

from pyg_ham.optim import build_optimizer
from pyg_ham.train import best_epoch, fit, is_better


def test_best_epoch_on_crafted_histories():
    h = [{"epoch": 1, "valid": 0.5}, {"epoch": 2, "valid": 0.7}, {"epoch": 3, "valid": 0.7},
         {"epoch": 4, "valid": float("nan")}, {"epoch": 5, "valid": 0.6}]
    assert best_epoch(h) == 2  # ties keep the earlier epoch, NaN never wins
    assert best_epoch(h, higher_is_better=False) == 1
    assert best_epoch([{"epoch": 1, "loss": 1.0}]) == 0
    assert is_better(0.1, None) and not is_better(float("nan"), 0.1)


class Regression:
    """A linear regression problem with a scripted validation curve."""

    def __init__(self, seed=0):
        gen = torch.Generator().manual_seed(0)  # the same data for every seed
        self.x = torch.randn(64, 8, generator=gen)
        self.y = self.x @ torch.randn(8, 1, generator=gen)
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
        self.opt = build_optimizer(self.model, "adam", lr=0.01, alpha=20.0, beta=1e-3)
        self.losses = []

    def train_epoch(self):
        self.opt.zero_grad()
        loss = (self.model(self.x) - self.y).pow(2).mean()  # dropout: consumes the RNG
        loss.backward()
        self.opt.step()
        self.losses.append(loss.item())
        return loss.item()

    def evaluate(self):
        with torch.no_grad():
            mse = float((self.model(self.x) - self.y).pow(2).mean())
        return {"train": -mse, "valid": -mse, "test": -mse}


def test_fit_loss_falls_and_reports_test_at_best_valid():
    prob = Regression()
    result = fit(prob.model, prob.opt, prob.train_epoch, prob.evaluate, 30, progress=False)
    assert prob.losses[-1] < 0.5 * prob.losses[0]
    record = result.history[result.best_epoch - 1]
    assert result.test == record["test"] and result.valid == max(r["valid"] for r in result.history)
    for key in ("loss", "time", "lr", "near_zero", "zero", "l1", "sign_flips"):
        assert key in record
    assert 0 <= record["near_zero"] <= 1 and record["l1"] > 0


def test_resume_continues_exactly(tmp_path):
    full = Regression()
    expected = fit(full.model, full.opt, full.train_epoch, full.evaluate, 12, progress=False)

    class Interrupt(Exception):
        pass

    part = Regression()
    calls = {"n": 0}

    def interrupted_epoch():
        calls["n"] += 1
        if calls["n"] == 6:
            raise Interrupt
        return part.train_epoch()

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        fit(part.model, part.opt, interrupted_epoch, part.evaluate, 12, checkpoint=ckpt, progress=False)
    again = Regression(seed=1)  # a fresh process: different init, everything comes from the checkpoint
    resumed = fit(again.model, again.opt, again.train_epoch, again.evaluate, 12, checkpoint=ckpt, resume=True,
                  progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in expected.history]
    assert resumed.best_epoch == expected.best_epoch and resumed.test == expected.test
    for p, q in zip(full.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


def test_non_finite_loss_ends_the_run_marked_diverged():
    prob = Regression()
    losses = iter([1.0, 0.5, float("nan"), 0.1])
    result = fit(prob.model, prob.opt, lambda: next(losses), prob.evaluate, 4, progress=False)
    assert result.extra["diverged"] and len(result.history) == 3 and result.best_epoch in (1, 2)


def test_early_stopping_after_patience_evaluations():
    prob = Regression()
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.25, 0.9, 0.9])
    result = fit(prob.model, prob.opt, lambda: 1.0, lambda: {"valid": next(scores), "test": 0.0}, 7,
                 patience=3, progress=False)
    assert len(result.history) == 5 and result.best_epoch == 2
