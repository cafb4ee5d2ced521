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
