"""HAM on sharded parameters: FSDP2 (2 CPU processes, gloo) equals one process; FSDP1 is refused
(its FlatParameter, and its use_orig_params=True views)."""
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.optim import HAM, attach_ham

WORKER = Path(__file__).with_name("fsdp_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _worker_module():
    spec = importlib.util.spec_from_file_location("fsdp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_fsdp2_ham_equals_one_process_and_fsdp1_orig_params_is_refused(tmp_path):
    out = tmp_path / "fsdp.pt"
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(rank), "2", str(port), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    try:
        worker = _worker_module()  # the one-process reference, computed while the workers run
        expected = {}
        for kind, base in worker.CASES:
            model = worker.build(kind)
            worker.train(model, worker.optimizer(kind, base, model.parameters()), kind, slice(None))
            expected[f"{kind}-{base}"] = [p.detach() for p in model.parameters()]
        logs = [proc.communicate(timeout=240)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(proc.returncode == 0 for proc in procs), "\n".join(log[-3000:] for log in logs)
    sharded = torch.load(out)
    # FSDP1 with use_orig_params=True: 1-D views of each rank's shard (what HAM would select nothing
    # of), refused by name on every rank
    for said, shapes in sharded.pop("fsdp1"):
        assert all(len(shape) == 1 for shape in shapes), shapes
        assert said.startswith("HAM: param group 0 holds FSDP1 (FullyShardedDataParallel) parameters with "
                               "use_orig_params=True"), said
    # the two processes sum the batch's gradient in another order: rounding, amplified by training
    for name, params in expected.items():
        for p, q in zip(params, sharded[name]):
            assert q.shape == p.shape
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
    # the hyperbolic step acted: the small model differs from the base optimizer alone
    plain = worker.build("small")
    opt = worker.optimizer("small", "sgd", plain.parameters())
    for group in opt.param_groups:
        group["ham"] = False
    worker.train(plain, opt, "small", slice(None))
    assert not torch.allclose(next(plain.parameters()), expected["small-sgd"][0], rtol=1e-4, atol=1e-5)

def test_fsdp1_flat_parameters_are_refused():
    flat = torch.nn.Parameter(torch.randn(12))
    flat._is_flat_param = True  # how FSDP1 marks its FlatParameter (isinstance checks this flag)
    with pytest.raises(ConfigError, match="FSDP1.*fully_shard"):
        HAM(torch.optim.SGD([flat], lr=0.1))
    with pytest.raises(ConfigError, match="FSDP1"):
        attach_ham(torch.optim.SGD([flat], lr=0.1))
