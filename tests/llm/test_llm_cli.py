"""``pyg-ham llm`` and ``finetune``: end to end on a tiny offline model, and the errors."""
import math

import pytest
import torch
from click.testing import CliRunner

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from pyg_ham.cli import main  # noqa: E402
from pyg_ham.llm import LLMConfig, finetune, split_blocks, tokenize_blocks  # noqa: E402
from pyg_ham.results import read_json  # noqa: E402

FAST = ["--block-size", "32", "--batch-size", "8", "--lr", "1e-2", "--log-every", "5", "--cpu"]


def invoke(*args):
    return CliRunner().invoke(main, ["llm", *map(str, args)])


def error_line(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_cli_lora_finetuning_writes_results_and_adapter(tiny_llama, text_file, tmp_path, monkeypatch):
    from pyg_ham.optim import fused_base

    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 0)  # the one pass on this tiny model too
    out = tmp_path / "llm.json"
    result = invoke("--model", tiny_llama, "--data", text_file, "--lora-r", 4, "--max-steps", 20, "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    doc = read_json(out)
    assert (doc["task"], doc["metric"], doc["dataset"]) == ("llm", "eval_loss", "corpus.txt")
    assert doc["lower_is_better"] is True
    assert {"config", "runs", "summary", "provenance"} <= set(doc)
    run = doc["runs"][0]
    assert {"seed", "best_epoch", "train", "valid", "test", "history", "perplexity"} <= set(run)
    assert run["steps"] == 20 and run["valid"] == run["test"]
    assert run["valid"] < run["eval_loss_initial"] - 0.05  # the eval loss falls
    assert run["perplexity"] == pytest.approx(math.exp(run["valid"]))
    assert doc["summary"]["valid_mean"] == run["valid"]
    assert doc["summary"]["perplexity_mean"] == pytest.approx(run["perplexity"])
    # LoRA rank 4 on q_proj (32 -> 32) and v_proj (32 -> 16) in 2 layers: r * (in + out) each
    assert doc["summary"]["num_params"] == 2 * 4 * ((32 + 32) + (32 + 16))
    assert run["ham_tensors"] == 8 and doc["config"]["ham"] is True
    # adamw_torch ran as torch's fused AdamW, HAM's step inside its pass (pyg_ham.optim.fused_base)
    assert run["optimizer_step"] == {"fused": True, "ham_pass": "one"}
    assert any("loss" in h for h in run["history"])

    # the saved adapter reproduces the eval loss on the held-out tail
    adapter = tmp_path / "llm.adapter"
    assert (adapter / "adapter_config.json").exists()
    base = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama), local_files_only=True)
    model = peft.PeftModel.from_pretrained(base, str(adapter)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(adapter))
    _, eval_blocks = split_blocks(tokenize_blocks(tok, text_file.read_text(), 32), 0.1)
    with torch.no_grad():
        loss = model(input_ids=eval_blocks, labels=eval_blocks).loss
    assert float(loss) == pytest.approx(run["valid"], abs=1e-4)


def test_python_api_gpt2_loss_falls_with_and_without_ham(tiny_gpt2, text_file):
    docs = {}
    for ham in (True, False):
        config = LLMConfig(model=str(tiny_gpt2), data=str(text_file), lora_r=4, max_steps=8, lr=1e-2,
                           block_size=32, ham=ham, alpha=50.0, cpu=True, seeds=[0])
        docs[ham] = finetune(config)
        run = docs[ham]["runs"][0]
        assert run["valid"] < run["eval_loss_initial"]
    assert docs[True]["runs"][0]["valid"] != docs[False]["runs"][0]["valid"]
    assert docs[True]["runs"][0]["ham_tensors"] == 2 * 2  # c_attn lora_A/B in 2 layers
    assert docs[False]["runs"][0]["ham_tensors"] == 0


def test_cli_errors_are_one_line(tiny_llama, text_file, tmp_path):
    assert "does not exist" in error_line(invoke("--model", tmp_path / "nope", "--data", text_file))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert "cannot load a causal LM from local directory" in error_line(invoke("--model", empty_dir,
                                                                               "--data", text_file))
    line = error_line(invoke("--model", "someone/tiny-model", "--data", text_file))  # the network is blocked
    assert "someone/tiny-model" in line and "local model directory" in line

    assert "does not exist" in error_line(invoke("--model", tiny_llama, "--data", tmp_path / "missing.txt"))
    assert "not a regular file" in error_line(invoke("--model", tiny_llama, "--data", tmp_path))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 50)
    assert "UTF-8" in error_line(invoke("--model", tiny_llama, "--data", binary))
    short = tmp_path / "short.txt"
    short.write_text("the cat sees the ball .\n")
    assert "--block-size" in error_line(invoke("--model", tiny_llama, "--data", short, "--block-size", 32))
    assert "context" in error_line(invoke("--model", tiny_llama, "--data", text_file, "--block-size", 4096))
    if not torch.cuda.is_available():
        assert "fp16 needs a CUDA GPU" in error_line(invoke("--model", tiny_llama, "--data", text_file,
                                                            "--precision", "fp16", "--max-steps", 1))
