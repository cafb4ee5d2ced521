"""``pyg-ham llm`` under ``torchrun``: HF Trainer's DDP (gloo on the CPU) with HAM, 2 processes."""
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_llm_lora_ham_under_torchrun_writes_one_json(tiny_llama, text_file, tmp_path):
    out = tmp_path / "llm.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "pyg_ham", "llm", "--model", str(tiny_llama), "--data",
           str(text_file), "--lora-r", "4", "--max-steps", "6", "--block-size", "32", "--batch-size", "4",
           "--lr", "1e-2", "--log-every", "2", "--cpu", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone reports and writes
    doc = json.loads(out.read_text())
    assert doc["provenance"]["world_size"] == 2 and doc["provenance"]["backend"] == "gloo"
    run = doc["runs"][0]
    assert run["steps"] == 6 and run["ham_tensors"] > 0
    assert math.isfinite(run["valid"]) and run["valid"] < run["eval_loss_initial"]  # it trained
    assert (tmp_path / "llm.adapter").is_dir()
