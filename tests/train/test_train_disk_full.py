"""A full disk while writing the result JSON or a checkpoint loses nothing that finished, leaves no
partial or temporary file, says what to free and how to continue; continuing gives the result of
the uninterrupted experiment."""
import errno
import json
import os

import pytest
import torch
from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.errors import DiskFullError
from pyg_ham.results.io import atomic_write, write_json
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment

ARGS = ["train", "-d", "synthetic", "-o", "num_nodes=300", "--hidden", "8", "--epochs", "4", "--runs", "3",
        "--device", "cpu", "--quiet"]


def _cfg(**kw):
    return ExperimentConfig(**{"dataset": "synthetic", "dataset_options": {"num_nodes": 300}, "hidden": 8,
                               "epochs": 4, "runs": 3, "device": "cpu", "quiet": True, **kw})


def fingerprint(runs):
    return [(r["key"], r["best_epoch"], r["valid"], r["test"], [h["loss"] for h in r["history"]]) for r in runs]


class Filling:
    """A file on a disk with :obj:`room` bytes left: the write that crosses it is partial, then ENOSPC."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk(monkeypatch, mode, after):
    """The disk fills during the file opened in :obj:`mode` (``"w"``: JSON, ``"wb"``: checkpoints)
    after :obj:`after` such files were written."""
    real, opened = os.fdopen, [0]

    def fdopen(fd, how="r", *args, **kwargs):
        f = real(fd, how, *args, **kwargs)
        if how == mode:
            opened[0] += 1
            if opened[0] > after:
                return Filling(f, 64)
        return f

    monkeypatch.setattr(os, "fdopen", fdopen)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_full_disk_while_writing_the_results_loses_no_finished_run(monkeypatch, tmp_path):
    reference = run_experiment(_cfg(), log=lambda m: None)
    out = tmp_path / "r.json"
    fill_disk(monkeypatch, "w", after=1)  # run0's results are written; the disk fills writing run1's
    result = CliRunner().invoke(main, ARGS + ["--out", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    line = result.output.strip()
    assert line.startswith(f"Error: no space left on device: {out} was not written (its previous version is intact); "
                           f"free at least ")
    assert line.endswith(f" in {tmp_path} (`df -h {tmp_path}` shows what is free), then rerun the same command "
                         f"with --resume: the finished runs are kept and the run in progress continues from its last "
                         f"saved epoch")
    kept = json.loads(out.read_text())  # the previous version: whole, with run0
    assert [r["key"] for r in kept["runs"]] == ["run0"] and not kept["complete"]
    assert leftovers(tmp_path) == []
    assert (tmp_path / "r.ckpt" / "run1.pt").exists()  # run1 finished: its last epoch is kept
    result = CliRunner().invoke(main, ARGS + ["--out", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    done = json.loads(out.read_text())
    assert done["complete"] and fingerprint(done["runs"]) == fingerprint(reference["runs"])


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_epoch(monkeypatch, tmp_path):
    reference = run_experiment(_cfg(), log=lambda m: None)
    out = tmp_path / "r.json"
    fill_disk(monkeypatch, "wb", after=5)  # run0's 4 epochs and run1's first; then the disk is full
    with pytest.raises(DiskFullError) as info:
        run_experiment(_cfg(out=str(out)), log=lambda m: None)
    monkeypatch.undo()
    ckpt = tmp_path / "r.ckpt" / "run1.pt"
    assert str(info.value).startswith(f"no space left on device: {ckpt} was not written (its previous version is "
                                      f"intact); free at least ")
    assert "\n" not in str(info.value) and info.value.errno == errno.ENOSPC
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # whole, loadable
    assert [r["key"] for r in json.loads(out.read_text())["runs"]] == ["run0"]
    assert leftovers(tmp_path) == []
    done = run_experiment(_cfg(out=str(out), resume=True), log=lambda m: None)
    assert fingerprint(done["runs"]) == fingerprint(reference["runs"])


def test_a_run_that_stopped_early_is_not_trained_further_when_its_record_is_written_on_resume(monkeypatch, tmp_path):
    """Its last checkpoint is of the early-stopping epoch; resuming it trains no more epochs."""
    cfg = _cfg(epochs=40, runs=1, patience=1, lr=0.2)
    reference = run_experiment(cfg, log=lambda m: None)
    assert len(reference["runs"][0]["history"]) < 40  # it did stop early
    out = tmp_path / "r.json"
    fill_disk(monkeypatch, "w", after=0)
    with pytest.raises(DiskFullError):
        run_experiment(cfg.replace(out=str(out)), log=lambda m: None)
    monkeypatch.undo()
    assert not out.exists() and leftovers(tmp_path) == []
    done = run_experiment(cfg.replace(out=str(out), resume=True), log=lambda m: None)
    assert fingerprint(done["runs"]) == fingerprint(reference["runs"])


def test_atomic_write_other_errors_pass_through_and_leave_nothing(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": 1})

    def broken(f):
        f.write("{")
        raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="not serialisable"):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"a": 1} and leftovers(tmp_path) == []
