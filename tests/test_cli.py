"""The ``pyg-ham`` command line, end to end with click's CliRunner."""
import json

import pytest
from click.testing import CliRunner

import pyg_ham
from pyg_ham.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_and_version():
    assert "train" in invoke("--help").output
    assert pyg_ham.__version__ in invoke("--version").output


def test_train_writes_the_result_json(tmp_path):
    out = tmp_path / "r.json"
    result = invoke("train", "-o", "num_nodes=300", "--epochs", "3", "--runs", "2", "--hidden", "8", "-q",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert {"dataset", "task", "metric", "config", "runs", "summary", "provenance"} <= set(doc)
    assert {"seed", "best_epoch", "train", "valid", "test", "history"} <= set(doc["runs"][0])
    assert {"test_mean", "test_std", "valid_mean", "valid_std", "num_params"} <= set(doc["summary"])
    assert {"torch", "torch_geometric", "ogb", "pyg_ham", "git_commit", "device", "date"} <= set(doc["provenance"])
    assert doc["config"]["dataset_options"] == {"num_nodes": "300"}
    assert "test acc" in result.output.splitlines()[-1]


def test_config_file_with_flag_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: synthetic\ndataset_options: {num_nodes: 200}\nhidden: 8\nepochs: 4\nalpha: 50.0\n")
    out = tmp_path / "r.json"
    assert invoke("train", "-c", str(cfg), "--epochs", "2", "-q", "--out", str(out)).exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["epochs"] == 2 and doc["config"]["alpha"] == 50.0 and len(doc["runs"][0]["history"]) == 2


def test_datasets_lists_presence(shared_data):
    result = invoke("datasets", "--root", str(shared_data))
    line = next(l for l in result.output.splitlines() if l.startswith("Cora "))
    assert "present" in line


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "NoSuchGraph"], "NoSuchGraph"),
    (["--model", "transformer"], "model"),
    (["--layers", "2", "--batch-size", "32", "--fanout", "10,5,5"], "fanout"),
    (["--device", "cuda"], "cuda"),
    (["--lr", "-1"], "lr"),
    (["--alpha", "nan"], "alpha"),
    (["--optimizer", "adamm"], "adamm"),
    (["--config", "missing.yaml"], "missing.yaml"),
])
def test_bad_input_is_one_line_with_exit_code_2(args, needle):
    result = CliRunner().invoke(main, ["train", "-q", "-o", "num_nodes=100", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.output


def test_unknown_yaml_key_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochz: 3\n")
    result = CliRunner().invoke(main, ["train", "-c", str(cfg)])
    assert result.exit_code == 2 and "epochz" in result.output


def test_vision_help_states_its_real_defaults():
    from pyg_ham.vision.trainer import VISION_DEFAULTS

    text = " ".join(invoke("vision", "--help").output.split())
    assert VISION_DEFAULTS["dataset"] == "digits"
    assert "synthetic" not in text and "default: digits." in text and "default: cnn." in text
    assert "Learning rate (default 0.001)." in text
    assert "default: synthetic." in " ".join(invoke("train", "--help").output.split())  # train keeps its own


def _demo_l1(output):
    lines = {l.split()[0]: l for l in output.splitlines() if l.startswith(("GD ", "HAM-GD "))}
    return {k: float(v.split("||x||_1")[1].split()[0]) for k, v in lines.items()}


def test_demo_same_start_and_ham_is_sparser():
    # alpha = 0 (and beta = 0) makes HAM-GD plain GD: from the same start both must end identical
    same = invoke("demo", "--steps", "300", "--lr", "0.05", "--alpha", "0")
    assert same.exit_code == 0 and _demo_l1(same.output)["GD"] == _demo_l1(same.output)["HAM-GD"], same.output
    result = invoke("demo", "--steps", "300", "--lr", "0.05")
    l1 = _demo_l1(result.output)
    assert l1["HAM-GD"] < l1["GD"] - 0.05, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("HAM-GD's solution is sparser than GD's from the same start") and "300 steps" in last
    for line in result.output.splitlines()[:2]:
        assert float(line.split("loss")[1].split()[0]) < 1e-8  # both fit the equations
    assert "sparser" in invoke("demo", "--help").output


def _make_run_args():
    """The arguments `make run` passes to `pyg-ham` (read from the Makefile's run recipe)."""
    import shlex
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[1] / "Makefile").read_text().splitlines()
    recipe = lines[lines.index("run: install") + 1]
    return shlex.split(recipe.split("pyg-ham", 1)[1])


def test_make_run_can_be_rerun_and_says_what_it_did(tmp_path, monkeypatch):
    """A second `make run` exited 2 ('runs/main.json already holds 1 finished run(s)')."""
    monkeypatch.chdir(tmp_path)
    args = _make_run_args() + ["-o", "num_nodes=200", "--epochs", "2", "--runs", "2", "--hidden", "8", "-q"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    stored = (tmp_path / "runs" / "main.json").read_bytes()
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "already holds this experiment's 2 finished runs: nothing trained" in again.output
    assert again.output.splitlines()[-1] == first.output.splitlines()[-1]  # the same summary line
    assert (tmp_path / "runs" / "main.json").read_bytes() == stored  # not rewritten
    # interrupted after one run: the rerun says so and trains the other one
    doc = json.loads(stored)
    doc["runs"], doc["complete"] = doc["runs"][:1], False
    (tmp_path / "runs" / "main.json").write_text(json.dumps(doc))
    third = invoke(*args)
    assert third.exit_code == 0 and "1 of 2 runs finished earlier, training the other 1" in third.output
    assert third.output.splitlines()[-1] == first.output.splitlines()[-1]
