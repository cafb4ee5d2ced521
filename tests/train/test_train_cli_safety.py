"""Nothing lost, nothing silently ignored: `train --out` refuses to replace finished runs, Ctrl-C names
only what exists, flags without effect are refused."""
import json
import os

import pytest
from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.train.cli import interrupted_note
from pyg_ham.train.config import ExperimentConfig

TINY = ["-o", "num_nodes=200", "--hidden", "8", "--epochs", "2", "-q", "--device", "cpu"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_finished_runs_are_never_replaced_without_overwrite(tmp_path):
    out = tmp_path / "r.json"
    assert invoke("train", *TINY, "--runs", "3", "--out", out).exit_code == 0
    before = out.read_text()
    result = invoke("train", *TINY, "--runs", "2", "--out", out)
    assert result.exit_code == 2
    assert "already holds 3 finished run(s); continue them with --resume, or pass --overwrite" in result.output
    assert out.read_text() == before  # refused before anything was written
    assert invoke("train", *TINY, "--runs", "2", "--out", out, "--overwrite").exit_code == 0
    assert len(json.loads(out.read_text())["runs"]) == 2


def test_interrupt_message_names_only_what_exists(tmp_path):
    cfg = ExperimentConfig(out=str(tmp_path / "r.json"))
    assert interrupted_note(cfg) == "nothing was saved"
    assert interrupted_note(ExperimentConfig()) == "nothing was saved (no --out)"
    (tmp_path / "r.ckpt").mkdir()
    (tmp_path / "r.ckpt" / "run0.pt").write_bytes(b"x")
    note = interrupted_note(cfg)
    assert "r.json" not in note and f"{tmp_path / 'r.ckpt'}/" in note and "--resume" in note
    (tmp_path / "r.json").write_text("{}")
    assert interrupted_note(cfg).startswith(f"finished runs are in {tmp_path / 'r.json'}")


@pytest.mark.parametrize("args, message", [
    (["train", "--fanout", "5,5"], "fanout has no effect in full-batch training"),
    (["vision", "--heads", "2", "--pool", "sum"], "--heads, --pool only apply to graph models"),
    (["vision", "--fanout", "5"], "--fanout only apply to graph models"),
])
def test_flags_without_effect_are_refused(args, message):
    result = invoke(*args, "--epochs", "1", "-q")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_result_json_permissions_follow_the_umask(tmp_path):
    out = tmp_path / "r.json"
    assert invoke("train", *TINY, "--out", out).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_results_written_before_a_setting_existed_still_resume(tmp_path):
    out = tmp_path / "r.json"
    assert invoke("train", *TINY, "--runs", "2", "--out", out).exit_code == 0
    doc = json.loads(out.read_text())
    del doc["config"]["ham_embeddings"], doc["config"]["overwrite"]  # as written by an older version
    doc["runs"] = doc["runs"][:1]
    out.write_text(json.dumps(doc))
    result = invoke("train", *TINY, "--runs", "2", "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert [r["key"] for r in json.loads(out.read_text())["runs"]] == ["run0", "run1"]
