r"""``pyg-ham llm``: causal-LM fine-tuning on a text file with HAM (LoRA by default)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Tuple

import click

from pyg_ham.llm.finetuning import PRECISIONS, LLMConfig
from pyg_ham.optim.ham import HAM_DEFAULTS

__all__ = ["llm"]


@click.command("llm", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", required=True, help="Local model directory (used offline) or Hugging Face Hub id.")
@click.option("--data", required=True, help="UTF-8 text file; its last --eval-fraction is held out.")
@click.option("--lora-r", default=8, show_default=True, type=int, help="LoRA rank; 0 fine-tunes all weights.")
@click.option("--lora-alpha", default=None, type=float, help="LoRA scaling numerator [default: 2 * rank].")
@click.option("--lora-dropout", default=0.0, show_default=True, type=float)
@click.option("--lora-target", "lora_targets", multiple=True,
              help="Module name for LoRA (repeatable) [default: peft's choice for the architecture].")
@click.option("--epochs", default=1.0, show_default=True, type=float, help="Epochs (unless --max-steps > 0).")
@click.option("--max-steps", default=-1, show_default=True, type=int, help="Optimizer steps; overrides --epochs.")
@click.option("--lr", default=2e-4, show_default=True, type=float, help="Learning rate.")
@click.option("--weight-decay", default=0.0, show_default=True, type=float)
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--grad-accum", default=1, show_default=True, type=int, help="Gradient accumulation steps.")
@click.option("--max-grad-norm", default=1.0, show_default=True, type=float, help="Gradient clipping (0: off).")
@click.option("--lr-scheduler", default="linear", show_default=True, help="TrainingArguments.lr_scheduler_type.")
@click.option("--warmup-steps", default=0, show_default=True, type=int)
@click.option("--optim", default="adamw_torch", show_default=True, help="TrainingArguments.optim (the base optimizer).")
@click.option("--fused/--no-fused", default=None,
              help="adamw_torch as adamw_torch_fused, HAM's step inside its pass [default: on for adamw_torch].")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(PRECISIONS),
              help="Mixed precision (fp16 needs a CUDA GPU).")
@click.option("--block-size", default=None, type=int,
              help="Tokens per example [default: 128, or the model's context if shorter].")
@click.option("--eval-fraction", default=0.1, show_default=True, type=float)
@click.option("--ham/--no-ham", default=True, show_default=True, help="HAM on, or the plain base optimizer.")
@click.option("--alpha", default=HAM_DEFAULTS["ham_alpha"], show_default=True, type=float, help="HAM's alpha.")
@click.option("--beta", default=HAM_DEFAULTS["ham_beta"], show_default=True, type=float, help="HAM's beta.")
@click.option("--max-exponent", default=5.0, show_default=True, type=float, help="Clamp of HAM's exponent (inf: none).")
@click.option("--ham-embeddings/--no-ham-embeddings", default=False, show_default=True,
              help="Also step the embedding matrices (full fine-tuning).")
@click.option("--ham-lm-head/--no-ham-lm-head", default=False, show_default=True,
              help="Also step the LM head (full fine-tuning).")
@click.option("--seed", "seeds", multiple=True, type=int, help="Seed (repeatable: one run each) [default: 0].")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False), help="Write the result JSON here.")
@click.option("--save-dir", default=None, type=click.Path(file_okay=False),
              help="Save the adapter and tokenizer here [default: next to --out as <out>.adapter].")
@click.option("--no-save", is_flag=True, help="Do not save the adapter.")
@click.option("--cpu", is_flag=True, help="Train on the CPU even if a GPU is present.")
@click.option("--log-every", default=10, show_default=True, type=int, help="Logging interval in steps.")
def llm(model: str, data: str, lora_targets: Tuple[str, ...], seeds: Tuple[int, ...], out: Optional[str],
        save_dir: Optional[str], no_save: bool, **options: object) -> None:
    """Fine-tune a causal language model on a text file with HAM (LoRA by default).

    Reports the eval loss and perplexity in pyg-ham's result JSON and saves the adapter.

    \b
    Example:
        pyg-ham llm --model ./tiny-llama --data corpus.txt --lora-r 8 --max-steps 200 --out llm.json
    """
    if Path(model).expanduser().is_dir():
        # a local model: never touch the network (set before transformers is first imported)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if save_dir is None and out is not None:
        save_dir = str(Path(out).with_suffix(".adapter"))
    if no_save:
        save_dir = None
    config = LLMConfig(model=model, data=data, lora_targets=list(lora_targets) or None,
                       seeds=list(seeds) or [0], save_dir=save_dir, **options)  # type: ignore[arg-type]

    from pyg_ham.llm.finetuning import finetune
    from pyg_ham.results import format_mean_std, write_json

    doc = finetune(config)
    from pyg_ham.train.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports and writes
        return
    summary = doc["summary"]
    click.echo(f"{'HAM' if config.ham else 'base'}: eval loss "
               f"{format_mean_std(summary['valid_mean'], summary['valid_std'], len(doc['runs']))}, "
               f"perplexity {summary['perplexity_mean']:.2f}"
               f" ({len(doc['runs'])} run(s), {summary.get('num_params', 0)} trainable parameters)")
    if out is not None:
        write_json(out, doc)
        click.echo(f"wrote {out}")
    else:
        click.echo(json.dumps(summary, indent=1))
    if save_dir is not None:
        click.echo(f"saved the {'adapter' if config.lora_r > 0 else 'model'} to {save_dir}")
