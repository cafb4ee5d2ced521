"""Heterogeneous models: to_hetero GraphSAGE and R-GCN with learnable embeddings for
featureless node types, full-batch and mini-batch, HAM's parameter selection."""
import pytest
import torch

from pyg_ham.datasets.hetero import synthetic_mag
from pyg_ham.errors import ConfigError
from pyg_ham.models.hetero import HETERO_MODELS, HeteroNodeModel, build_hetero_model
from pyg_ham.optim import build_optimizer, ham_param_groups
from pyg_ham.sampling import neighbor_loader

FEATURELESS = ("author", "institution", "field_of_study")


@pytest.fixture(scope="module")
def task():
    return synthetic_mag(scale=0.0004, num_features=12, num_classes=4, feature_signal=3.0, seed=0)


@pytest.mark.parametrize("name", HETERO_MODELS)
def test_mini_batch_with_all_neighbours_matches_full_batch(task, name):
    data = task.data
    model = build_hetero_model(name, data, task.num_classes, hidden_channels=8, num_layers=2, seed=0).eval()
    assert isinstance(model, HeteroNodeModel)
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict)
    assert full.shape == (data["paper"].num_nodes, task.num_classes)
    seeds = task.split()["test"][:20]
    batch = next(iter(neighbor_loader(data, [-1, -1], batch_size=20, input_nodes=("paper", seeds),
                                      force="pyg_ham")))
    assert all("x" not in batch[t] and "n_id" in batch[t] for t in FEATURELESS)
    with torch.no_grad():
        out = model.forward_batch(batch)[:batch["paper"].batch_size]
    # A 2-layer GNN on the complete 2-hop in-neighbourhood computes the seeds exactly.
    assert torch.allclose(out, full[seeds], atol=1e-5), (out - full[seeds]).abs().max()
    sampled = next(iter(neighbor_loader(data, [3, 2], batch_size=20, input_nodes=("paper", seeds),
                                        force="pyg_ham", seed=0)))
    assert model.forward_batch(sampled)[:20].shape == (20, task.num_classes)


def test_embeddings_get_ham_by_default_and_can_be_excluded(task):
    model = build_hetero_model("sage", task.data, task.num_classes, hidden_channels=8, seed=0)
    names = {f"embeddings.{t}.weight" for t in FEATURELESS}
    assert model.ham_exclude == [] and model.num_embedded_nodes == sum(task.data[t].num_nodes for t in FEATURELESS)
    ham = {n for g in ham_param_groups(model) if g["ham"] for n in g["param_names"]}
    assert names <= ham and any(".lin_l.weight" in n for n in ham)
    assert not any(n.endswith(".bias") for n in ham)
    off = build_hetero_model("sage", task.data, task.num_classes, hidden_channels=8, ham_embeddings=False, seed=0)
    groups = ham_param_groups(off, exclude=off.ham_exclude)
    ham_off = {n for g in groups if g["ham"] for n in g["param_names"]}
    plain = {n for g in groups if not g["ham"] for n in g["param_names"]}
    assert names <= plain and not names & ham_off and ham_off == ham - names
    assert off.embedding_bytes() == 4 * 8 * off.num_embedded_nodes


@pytest.mark.parametrize("name", HETERO_MODELS)
def test_lazy_parameters_exist_before_the_optimizer_and_training_learns(task, name):
    data = task.data
    model = build_hetero_model(name, data, task.num_classes, hidden_channels=16, dropout=0.0, seed=0)
    assert not any(isinstance(p, torch.nn.UninitializedParameter) for p in model.parameters())
    opt = build_optimizer(model, "adamw", lr=0.005, exclude=model.ham_exclude)
    train = task.split()["train"]
    loader = neighbor_loader(data, [4, 3], batch_size=64, input_nodes=("paper", train), shuffle=True,
                             seed=0, force="pyg_ham")
    before = model.embeddings["author"].weight.detach().clone()
    with torch.no_grad():
        loss0 = task.loss(model(data.x_dict, data.edge_index_dict), train).item()
    for _ in range(6):
        for batch in loader:
            bs = batch["paper"].batch_size
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model.forward_batch(batch)[:bs], batch["paper"].y[:bs])
            loss.backward()
            opt.step()
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict)
    assert task.loss(full, train).item() < 0.7 * loss0
    assert not torch.equal(model.embeddings["author"].weight, before)
    # Checkpoints: a fresh model loads the state dict and computes the same outputs.
    twin = build_hetero_model(name, data, task.num_classes, hidden_channels=16, dropout=0.0, seed=1)
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(twin.eval()(data.x_dict, data.edge_index_dict),
                              model.eval()(data.x_dict, data.edge_index_dict))


def test_bad_arguments_raise_config_error(task):
    from torch_geometric.data import Data
    cases = [
        (dict(name="gat"), "model"),
        (dict(data=Data(x=torch.zeros(2, 2))), "HeteroData"),
        (dict(target_type="venue"), "target_type"),
        (dict(target_type="author"), "no features"),
        (dict(hidden_channels=0), "hidden_channels"),
        (dict(name="rgcn", embedding_dim=4), "embedding_dim"),
    ]
    for kwargs, match in cases:
        args = dict(name="sage", data=task.data, out_channels=task.num_classes, hidden_channels=8)
        args.update(kwargs)
        with pytest.raises(ConfigError, match=match) as info:
            build_hetero_model(**args)
        assert "\n" not in str(info.value)


def test_sparsifier_masks_stay_zero_on_the_hetero_model(task):
    from pyg_ham.sparse import build_sparsifier, select_parameters
    data = task.data
    model = build_hetero_model("sage", data, task.num_classes, hidden_channels=8, dropout=0.0, seed=0)
    opt = build_optimizer(model, "adamw", lr=0.005)
    sp = build_sparsifier("magnitude", model, opt, sparsity=0.5, total_steps=4)
    masked = dict(select_parameters(model))
    assert "embeddings.author.weight" in masked  # the tables are masked like any matrix
    zeros = {n: p.detach() == 0 for n, p in masked.items()}
    assert sum(int(z.sum()) for z in zeros.values()) >= 0.49 * sum(p.numel() for p in masked.values())
    loader = neighbor_loader(data, [3, 2], batch_size=64, input_nodes=("paper", task.split()["train"]),
                             seed=0, force="pyg_ham")
    for batch in loader:
        bs = batch["paper"].batch_size
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model.forward_batch(batch)[:bs], batch["paper"].y[:bs]).backward()
        sp.before_step()
        opt.step()
        sp.after_step()
    for n, p in masked.items():
        assert bool((p.detach()[zeros[n]] == 0).all()), n
