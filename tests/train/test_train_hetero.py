"""Heterogeneous node training end to end: the fake ogbn-mag from the CLI, synthetic-mag through the
one engine (HAM's selection of the embedding tables, diagnostics, sparsifiers, exact resume)."""
import copy
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import pyg_ham.train.single as single
from pyg_ham.cli import main
from pyg_ham.datasets import load_dataset
from pyg_ham.errors import ConfigError
from pyg_ham.results import read_json
from pyg_ham.train.common import make_optimizer
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.diagnostics import selected_weights
from pyg_ham.train.engine import seed_everything
from pyg_ham.train.hetero import FullBatchHeteroNodeTask, MiniBatchHeteroNodeTask, build_hetero_model_for
from pyg_ham.train.runner import run_experiment, train_run
from pyg_ham.train.task import task_kind

sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))
from fake_ogbn_mag import SIZES, write_fake_mag  # noqa: E402

CPU = torch.device("cpu")
SPEC = {"key": "run0", "seed": 0, "fields": {"run": 0}}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYG_HAM_OFFLINE", raising=False)


@pytest.fixture(scope="module")
def mag_task():
    return load_dataset("synthetic-mag", scale=0.001)


def small(**kw):
    base = dict(dataset="synthetic-mag", dataset_options={"scale": 0.001}, epochs=3, hidden=16, norm=None,
                quiet=True, device="cpu")
    return ExperimentConfig(**{**base, **kw})


def test_fake_ogbn_mag_trains_from_the_cli_mini_batch_and_full_batch(tmp_path):
    root = tmp_path / "data"
    info = write_fake_mag(root / "ogb" / "ogbn_mag")
    out = tmp_path / "mag.json"
    result = CliRunner().invoke(main, ["train", "--dataset", "ogbn-mag", "--root", str(root), "--batch-size", "1024",
                                       "--fanout", "25,20", "--epochs", "2", "-q", "--device", "cpu",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recipe: ogbn-mag-sage for ogbn-mag" in result.output
    doc = read_json(out)
    assert doc["dataset"] == "ogbn-mag" and doc["task"] == "hetero-node" and doc["metric"] == "acc"
    assert doc["model"] == "sage" and doc["config"]["fanout"] == [25, 20] and doc["config"]["ham_embeddings"] is True
    run = doc["runs"][0]
    embedded = SIZES["author"] + SIZES["field_of_study"] + SIZES["institution"]  # papers have features
    assert run["embedded_nodes"] == embedded and run["embedding_bytes"] == embedded * 64 * 4
    assert run["ham_embeddings"] is True and run["evaluation"].startswith("full neighbourhood")
    assert len(run["history"]) == 2
    n_test = len(info["split"]["test"])  # OGB's evaluator: a fraction of the test papers
    assert run["test"] * n_test == pytest.approx(round(run["test"] * n_test), abs=1e-4)

    full = tmp_path / "full.json"
    result = CliRunner().invoke(main, ["train", "-d", "ogbn-mag", "--root", str(root), "-c",
                                       str(Path(__file__).parents[2] / "configs" / "ogbn-mag-sage.yaml"),
                                       "--batch-size", "0", "-q"])
    assert result.exit_code != 0 and "batch_size must be" in result.output  # one line, nothing trained
    result = CliRunner().invoke(main, ["train", "-d", "ogbn-mag", "--root", str(root), "--epochs", "8",
                                       "--no-ham-embeddings", "--hidden", "16", "-q", "--device", "cpu",
                                       "--out", str(full), "--eval-mode", "full"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = read_json(full)
    assert doc["config"]["ham_embeddings"] is False and doc["runs"][0]["ham_embeddings"] is False
    losses = [h["loss"] for h in doc["runs"][0]["history"]]
    assert len(losses) == 8 and losses[-1] < losses[0]  # the full-batch model fits its training papers


def test_sampled_evaluation_with_all_neighbours_equals_full_and_is_stated(mag_task):
    """Two hops of every in-neighbour give the seeds their exact receptive field: the sampled
    evaluation must reproduce the whole-graph forward; a finite fanout is re-seeded per evaluation."""
    cfg = small(batch_size=64, fanout=[-1, -1], eval_mode="sampled")
    sampled = task_kind(mag_task).create(mag_task, cfg, SPEC, CPU)
    full = task_kind(mag_task).create(mag_task, cfg.replace(eval_mode="full"), SPEC, CPU)
    assert isinstance(sampled, MiniBatchHeteroNodeTask)
    seed_everything(0)
    model = sampled.build_model().eval()
    with torch.no_grad():
        a, b = sampled.predict(model), full.predict(model)
    for split in ("train", "valid", "test"):
        idx = a[split][1]
        torch.testing.assert_close(a[split][0], b[split][0][idx], rtol=1e-4, atol=1e-5)
    assert sampled.record()["evaluation"] == "sampled: fanout -1,-1 on every edge type, 64 paper nodes per batch"
    assert full.record()["evaluation"].startswith("full neighbourhood")

    few = task_kind(mag_task).create(mag_task, small(batch_size=64, fanout=[2, 2], eval_mode="sampled"), SPEC, CPU)
    with torch.no_grad():
        first, second = few.predict(model), few.predict(model)
    assert torch.equal(first["test"][0], second["test"][0])
    assert not torch.allclose(first["test"][0], b["test"][0][first["test"][1]])  # two neighbours are not all


def test_first_epoch_loss_is_the_cross_entropy_of_the_fresh_model(mag_task):
    cfg = small(epochs=1, eval_train=False)
    result = train_run(mag_task, cfg, SPEC, CPU)
    seed_everything(0)
    model = FullBatchHeteroNodeTask(mag_task, cfg, SPEC, CPU).build_model()
    seed_everything(0)  # fit re-seeds before the first epoch (dropout draws)
    model.train()
    idx = mag_task.split()["train"]
    out = model(mag_task.data.x_dict, mag_task.data.edge_index_dict)[idx]
    expected = torch.nn.functional.cross_entropy(out, mag_task.data["paper"].y[idx])
    assert result.history[0]["loss"] == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("ham_embeddings", [True, False])
def test_no_ham_embeddings_leaves_the_tables_to_the_base_optimizer(mag_task, ham_embeddings):
    """One step of make_optimizer's HAM(Adam): the embedding tables get Adam's step followed by
    w * exp(-lr (alpha sign(w) g + beta)) with HAM on them, Adam's step alone without; the GNN's
    weight matrices get the hyperbolic step either way."""
    cfg = small(ham_embeddings=ham_embeddings, alpha=50.0, lr=0.01, max_exponent=None)
    seed_everything(0)
    model = build_hetero_model_for(mag_task, cfg)
    assert model.ham_exclude == ([] if ham_embeddings else ["embeddings.*"])
    reference = copy.deepcopy(model)
    optimizer = make_optimizer(model, cfg)
    base = torch.optim.Adam(reference.parameters(), lr=cfg.lr)
    idx = mag_task.split()["train"]
    for m in (model, reference):
        m.eval()  # no dropout: the same gradients
        mag_task.loss(m(mag_task.data.x_dict, mag_task.data.edge_index_dict), idx).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}  # last-layer convs
    # into other node types than papers get none
    optimizer.step()
    base.step()
    params, adam_only = dict(model.named_parameters()), dict(reference.named_parameters())

    def hyperbolic(name):
        w = adam_only[name].detach()
        return w * torch.exp(-cfg.lr * (cfg.alpha * torch.sign(w) * grads[name] + cfg.beta))

    tables = [n for n in params if n.startswith("embeddings.")]
    matrices = [n for n, p in params.items() if p.ndim >= 2 and n not in tables and n in grads]
    assert len(tables) == 3 and matrices
    for name in tables:
        assert grads[name].abs().sum() > 0
        expected = hyperbolic(name) if ham_embeddings else adam_only[name].detach()
        torch.testing.assert_close(params[name].detach(), expected, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(hyperbolic(name), adam_only[name].detach(), rtol=1e-5, atol=1e-7)
    for name in matrices:
        torch.testing.assert_close(params[name].detach(), hyperbolic(name), rtol=1e-5, atol=1e-7)
    watched = {id(w) for w in selected_weights(model, optimizer)}
    assert all((id(params[n]) in watched) == ham_embeddings for n in tables)
    assert all(id(params[n]) in watched for n in matrices)


def test_sparsifier_and_diagnostics_on_the_heterogeneous_model(monkeypatch):
    """Random pruning at 50 % through the trainer: every weight matrix, the embedding tables
    included, keeps exactly its pruned entries at zero; diagnostics are recorded each epoch."""
    built = []
    real = single.make_optimizer

    def capture(model, cfg):
        built.append(model)
        return real(model, cfg)

    monkeypatch.setattr(single, "make_optimizer", capture)
    doc = run_experiment(small(batch_size=128, fanout=[5, 5], sparsity=0.5, sparsifier="random"))
    run, model = doc["runs"][0], built[0]
    layers = run["sparsity"]["layers"]
    params = dict(model.named_parameters())
    assert {n for n in params if n.startswith("embeddings.")} <= set(layers)
    assert set(layers) == {n for n, p in params.items() if p.ndim >= 2}
    for name, fraction in layers.items():
        p = params[name]
        assert fraction == pytest.approx(float((p == 0).float().mean()))
        assert abs(fraction * p.numel() - 0.5 * p.numel()) <= 1  # uniform: within one weight of 50 %
    for record in run["history"]:
        assert record["zero"] >= 0.499 and 0 <= record["near_zero"] <= 1 and record["l1"] > 0
        assert 0 <= record["sign_flips"] <= 1


def test_mini_batch_resume_continues_exactly(mag_task, tmp_path, monkeypatch):
    """Interrupted mid-epoch and resumed, a heterogeneous mini-batch run (HAM on the embedding
    tables, RNG of shuffle and per-edge-type sampling checkpointed) replays the uninterrupted one."""
    import pyg_ham.train.common as common

    cfg = small(batch_size=128, fanout=[5, 3], epochs=4)
    expected = train_run(mag_task, cfg, SPEC, CPU)
    per_epoch = -(-mag_task.split()["train"].numel() // cfg.batch_size)
    assert per_epoch >= 3
    real_update, steps = common.training_step, {"n": 0}

    def interrupting(*args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 2 * per_epoch + 2:  # in the middle of epoch 3
            raise KeyboardInterrupt
        return real_update(*args, **kwargs)

    ckpt = tmp_path / "run.ckpt"
    monkeypatch.setattr(common, "training_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train_run(mag_task, cfg, SPEC, CPU, checkpoint=ckpt)
    monkeypatch.setattr(common, "training_step", real_update)
    torch.manual_seed(123)  # nothing may come from the global RNG left behind
    resumed = train_run(mag_task, cfg, SPEC, CPU, checkpoint=ckpt, resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in expected.history]
    assert [h["l1"] for h in resumed.history] == [h["l1"] for h in expected.history]
    assert resumed.test == expected.test


def test_rgcn_trains_full_batch(mag_task):
    doc = run_experiment(small(model="rgcn", epochs=10, hidden=16), task=mag_task)
    losses = [h["loss"] for h in doc["runs"][0]["history"]]
    assert doc["model"] == "rgcn" and losses[-1] < losses[0]


def test_heterogeneous_settings_are_checked_before_training(mag_task):
    with pytest.raises(ConfigError, match="eval_mode 'layerwise' is for homogeneous"):
        run_experiment(small(eval_mode="layerwise"), task=mag_task)
    with pytest.raises(ConfigError, match="eval_mode 'sampled' evaluates mini-batches"):
        small(eval_mode="sampled")
    with pytest.raises(ConfigError, match="eval_fanout is the fanout of sampled evaluation"):
        small(batch_size=32, eval_fanout=[-1, -1])
    with pytest.raises(ConfigError, match="ham_embeddings must be true or false"):
        small(ham_embeddings="no")
    with pytest.raises(ConfigError, match="model must be one of"):
        run_experiment(small(model="gat"), task=mag_task)


def test_datasets_lists_the_heterogeneous_ones_in_aligned_columns(tmp_path):
    root = tmp_path / "data"
    write_fake_mag(root / "ogb" / "ogbn_mag")
    result = CliRunner().invoke(main, ["datasets", "--root", str(root)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert rows["ogbn-mag"].split()[1:] == ["hetero-node", "acc", "present", "ogbn-mag-sage"]
    assert rows["synthetic-mag"].split()[1:4] == ["hetero-node", "acc", "present"]
    assert len({line.index(" acc ") for name, line in rows.items() if " acc " in line}) == 1
