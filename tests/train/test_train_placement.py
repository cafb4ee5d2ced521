"""Placement as a decision (pyg_ham.train.placement): the graph and the features each on the device,
the host or disk, by size against the device's free memory or as set; stated once, recorded per run."""
import dataclasses

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.placement import DEVICE_SHARE, decide, tensor_bytes
from pyg_ham.train.runner import run_experiment

GiB = 2**30
CUDA = torch.device("cuda", 0)


def test_auto_puts_the_graph_first_then_the_features_in_the_devices_free_share():
    free = 10 * GiB  # auto's budget: DEVICE_SHARE of it
    budget = int(DEVICE_SHARE * free)
    both = decide(budget // 2, budget // 2, CUDA, free)
    assert (both.graph, both.features, both.device_is_host) == ("device", "device", False)
    graph_only = decide(budget // 2, budget // 2 + 1, CUDA, free)
    assert (graph_only.graph, graph_only.features) == ("device", "host")
    neither = decide(budget + 1, 1, CUDA, free)  # features never on the device without the graph
    assert (neither.graph, neither.features) == ("host", "host")
    assert "50% of the device's 10.0 GiB free" in neither.reason


def test_flags_cpu_disk_and_the_refused_choices():
    assert decide(1, 1, CUDA, 0, graph="device", features="host").record()["graph"] == "device"
    cpu = decide(5 * GiB, 5 * GiB, torch.device("cpu"), None, graph="host")
    assert (cpu.graph, cpu.features, cpu.device_is_host) == ("device", "device", True)
    assert "the device is the host" in cpu.line()
    disk = decide(0, 0, CUDA, GiB, on_disk=True)
    assert (disk.graph, disk.features) == ("disk", "disk")
    with pytest.raises(ConfigError, match="needs the on-disk layout: add --on-disk"):
        decide(1, 1, CUDA, GiB, graph="disk")
    with pytest.raises(ConfigError, match="drop the features placement"):
        decide(0, 0, CUDA, GiB, features="device", on_disk=True)
    with pytest.raises(ConfigError, match="full-batch training uses the whole graph"):
        decide(1, 1, CUDA, GiB, features="host", full_batch=True)
    with pytest.raises(ConfigError, match="put the graph on the device too"):
        decide(1, 1, CUDA, GiB, graph="host", features="device")
    with pytest.raises(ConfigError, match="feature_placement"):
        ExperimentConfig(feature_placement="gpu")
    assert tensor_bytes(torch.zeros(3, 4), None, torch.zeros(2, dtype=torch.int64)) == 3 * 4 * 4 + 16


def test_node_run_states_its_placement_once_and_records_it(capfd):
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 150}, hidden=8, batch_size=50,
                           fanout=[3, 3], epochs=1, runs=2, device="cpu", graph_placement="host")
    doc = run_experiment(cfg, log=lambda msg: None)
    err = capfd.readouterr().err
    assert err.count("placement: graph on device, features on device, device cpu (the device is the host)") == 1
    for run in doc["runs"]:
        placement = run["placement"]
        assert (placement["graph"], placement["features"], placement["device_is_host"]) == ("device", "device", True)
        assert placement["graph_bytes"] > 0 and placement["feature_bytes"] > 0
    run_experiment(dataclasses.replace(cfg, runs=1, quiet=True))
    assert "placement:" not in capfd.readouterr().err  # --quiet: not said


class FakeCudart:
    """``torch.cuda.cudart()`` on a CPU build: records host registrations, as the driver would hold them."""

    def __init__(self, error=0):
        self.error, self.registered = error, {}

    def cudaHostRegister(self, ptr, size, flags):  # noqa: N802 - CUDA's name
        if self.error == 0:
            self.registered[ptr] = (size, flags)
        return self.error

    def cudaHostUnregister(self, ptr):  # noqa: N802
        self.registered.pop(ptr)
        return 0


@pytest.fixture
def fake_cuda(monkeypatch):
    cudart = FakeCudart()
    monkeypatch.setattr(torch.cuda, "cudart", lambda: cudart)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (GiB, 2 * GiB))
    return cudart


def test_pin_in_place_registers_the_storage_itself_and_unregisters_it_when_freed(fake_cuda):
    import gc

    from pyg_ham.train.placement import pin_in_place

    base = torch.arange(1000, dtype=torch.float32)
    view = base[10:20]  # the whole storage is registered, not the view's slice
    ptr, nbytes = base.untyped_storage().data_ptr(), base.untyped_storage().nbytes()
    assert pin_in_place(view) is view and view.data_ptr() == base.data_ptr() + 40  # no copy
    assert fake_cuda.registered == {ptr: (nbytes, 1)}  # cudaHostRegisterPortable
    del base, view
    gc.collect()
    assert fake_cuda.registered == {}  # the storage freed: unregistered, its address reusable


def _hetero_graph():
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["paper"].x, data["paper"].y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    data["author"].x = torch.randn(20, 4)
    data["author", "writes", "paper"].edge_index = torch.stack([torch.randint(0, 20, (50,)),
                                                                torch.randint(0, 30, (50,))])
    data["author", "writes", "paper"].edge_attr = torch.randn(50, 2)
    data["paper", "cites", "paper"].edge_index = torch.randint(0, 30, (2, 40))
    return data


@pytest.mark.parametrize("kind", ["homogeneous", "heterogeneous"])
def test_host_placement_on_cuda_pins_every_tensor_where_it_lies(fake_cuda, kind):
    from types import SimpleNamespace

    from torch_geometric.data import Data

    from pyg_ham.train.placement import graph_and_feature_bytes, place

    data = _hetero_graph() if kind == "heterogeneous" else Data(
        x=torch.randn(30, 4), y=torch.randint(0, 3, (30,)), edge_index=torch.randint(0, 30, (2, 60)),
        edge_attr=torch.randn(60, 2))
    tensors = {(store._key, key): value for store in data.stores for key, value in store.items()}
    edge_side = sum(v.numel() * v.element_size() for (store, key), v in tensors.items()
                    if key in ("edge_index", "edge_attr"))
    node_side = sum(v.numel() * v.element_size() for (store, key), v in tensors.items()
                    if key not in ("edge_index", "edge_attr"))
    assert graph_and_feature_bytes(data) == (edge_side, node_side)
    task = SimpleNamespace(data=data, stores=None)
    cfg = SimpleNamespace(graph_placement="host", feature_placement="host", eval_mode="sampled", quiet=True)
    decision = place(task, cfg, CUDA, full_batch=False)
    assert (decision.graph, decision.features, decision.free_bytes) == ("host", "host", GiB)
    assert (decision.graph_bytes, decision.feature_bytes) == (edge_side, node_side)
    after = {(store._key, key): value for store in data.stores for key, value in store.items()}
    assert after.keys() == tensors.keys()
    for name, value in tensors.items():  # the same memory, registered: no pinned copy
        assert after[name].data_ptr() == value.data_ptr(), name
    assert set(fake_cuda.registered) == {v.untyped_storage().data_ptr() for v in tensors.values()}


def test_full_evaluation_needs_the_whole_graph_on_the_device():
    with pytest.raises(ConfigError, match="--eval-mode full runs the model on the whole graph on the device, "
                                          "but the features is placed on the host"):
        decide(1, 1, CUDA, GiB, graph="device", features="host", whole_graph_eval=True)
    budget = int(DEVICE_SHARE * 10 * GiB)
    with pytest.raises(ConfigError, match=r"graph and the features are placed on the host \(auto: .*layerwise"):
        decide(budget + 1, 1, CUDA, 10 * GiB, whole_graph_eval=True)  # auto found it too large
    assert decide(budget + 1, 1, CUDA, 10 * GiB).graph == "host"  # layerwise / sampled evaluate from the host
    assert decide(GiB, GiB, torch.device("cpu"), None, graph="host", whole_graph_eval=True).device_is_host


def test_a_mini_batch_loss_takes_the_batchs_own_labels():
    """The labels gathered with the batch (on its device) are the loss's target: no lookup in the
    task's labels, which on the host would be indexed by device ids (a device->host wait per batch)."""
    from pyg_ham.datasets import load_dataset

    task = load_dataset("synthetic", num_nodes=60)
    out, idx = torch.randn(5, task.num_classes), torch.arange(5)
    other = (task.data.y[idx] + 1) % task.num_classes
    expected = torch.nn.functional.cross_entropy(out, other)
    torch.testing.assert_close(task.loss(out, idx, target=other), expected)
    torch.testing.assert_close(task.loss(out, idx), torch.nn.functional.cross_entropy(out, task.data.y[idx]))


def test_memory_the_driver_cannot_register_is_pinned_as_a_copy_and_said(monkeypatch, capsys):
    from pyg_ham.train.placement import pin_in_place

    monkeypatch.setattr(torch.cuda, "cudart", lambda: FakeCudart(error=712))  # cudaErrorHostMemoryAlreadyRegistered
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self.clone())  # (a CPU build cannot pin)
    t = torch.ones(2**18)
    out = pin_in_place(t)
    assert out.data_ptr() != t.data_ptr() and torch.equal(out, t)
    assert capsys.readouterr().err == ("placement: cannot pin 1.0 MiB in place (cudaHostRegister error 712); "
                                       "pinning a copy of it\n")
