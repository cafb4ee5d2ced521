r"""Causal-LM fine-tuning on a text file with HAM: model loading, LoRA, ``Trainer``, results.

The run writes the JSON document every pyg-ham task writes (task ``"llm"``, metric
``"eval_loss"``, lower is better): per seed ``train`` is the final model's loss on (at most as
many as the eval) training blocks, ``valid`` and ``test`` are both the loss on the held-out
tail of the file (there is no separate test split), ``perplexity = exp(eval_loss)``. The
reported model is the one after the last step (no checkpoint selection), so ``best_epoch`` is
the last epoch.
"""
from __future__ import annotations

import math
import os
import socket
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import torch

from pyg_ham.errors import ConfigError
from pyg_ham.llm._deps import require
from pyg_ham.llm.data import BlockDataset, read_text, split_blocks, tokenize_blocks
from pyg_ham.llm.trainer import HAMArguments, get_ham_trainer_class, unwrap_optimizer
from pyg_ham.optim.ham import HAM_DEFAULTS
from pyg_ham.results import RunResult, mean_std, result_document
from pyg_ham.train import distributed
from pyg_ham.train.common import describe_step

__all__ = ["LLMConfig", "load_model_and_tokenizer", "apply_lora", "finetune", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "fp16")


#: ``TrainingArguments.optim`` names with a fused variant (``fused`` chooses it).
FUSED_OPTIM: Dict[str, str] = {"adamw_torch": "adamw_torch_fused"}

@dataclass
class LLMConfig:
    r"""Settings of :func:`finetune` (the ``pyg-ham llm`` flags).

    Args:
        model (str): a local model directory or a Hugging Face Hub id.
        data (str): a UTF-8 text file.
        lora_r (int): LoRA rank; ``0`` fine-tunes all weights. (default: :obj:`8`)
        lora_alpha (float, optional): LoRA scaling numerator (default: ``2 * lora_r``).
        lora_dropout (float): (default: :obj:`0.0`)
        lora_targets (list of str, optional): module names for LoRA (default: ``peft``'s
            choice for the architecture).
        epochs (float): training epochs (ignored when :obj:`max_steps` > 0). (default: :obj:`1.0`)
        max_steps (int): optimizer steps; ``-1`` for :obj:`epochs`. (default: :obj:`-1`)
        lr, weight_decay, batch_size, grad_accum, max_grad_norm, lr_scheduler, warmup_steps,
        optim: as in ``TrainingArguments`` (``optim`` is its optimizer name, e.g.
            ``"adamw_torch"``, ``"adamw_torch_fused"``, ``"sgd"``).
        fused (bool, optional): ``"adamw_torch"`` as ``"adamw_torch_fused"`` (torch's fused
            AdamW, and HAM's step inside its pass: :mod:`pyg_ham.optim.fused_base`); :obj:`None`
            does so for ``"adamw_torch"``, :obj:`False` never. (default: :obj:`None`)
        precision (str): ``"fp32"``, ``"bf16"`` or ``"fp16"`` (``fp16`` needs a CUDA GPU).
        block_size (int, optional): tokens per example (default: 128, or the model's context
            if shorter).
        eval_fraction (float): share of blocks held out (the file's tail). (default: :obj:`0.1`)
        ham (bool): HAM on or off (the baseline). (default: :obj:`True`)
        alpha, beta, max_exponent: HAM's knobs.
        ham_embeddings, ham_lm_head (bool): also step embeddings / LM head (full fine-tuning).
        seeds (list of int): one run per seed. (default: :obj:`[0]`)
        save_dir (str, optional): where the adapter (or model) and tokenizer are saved.
        cpu (bool): train on the CPU even if a GPU is present.
        log_every (int): logging interval in steps (the run's ``history``).
    """

    model: str
    data: str
    lora_r: int = 8
    lora_alpha: Optional[float] = None
    lora_dropout: float = 0.0
    lora_targets: Optional[List[str]] = None
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    optim: str = "adamw_torch"
    fused: Optional[bool] = None
    precision: str = "fp32"
    block_size: Optional[int] = None
    eval_fraction: float = 0.1
    ham: bool = True
    alpha: float = HAM_DEFAULTS["ham_alpha"]
    beta: float = HAM_DEFAULTS["ham_beta"]
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"]
    ham_embeddings: bool = False
    ham_lm_head: bool = False
    seeds: List[int] = field(default_factory=lambda: [0])
    save_dir: Optional[str] = None
    cpu: bool = False
    log_every: int = 10

    def validate(self) -> None:
        """Raise :class:`~pyg_ham.errors.ConfigError` for values that cannot work."""
        checks = [
            (self.lora_r >= 0, f"--lora-r must be >= 0 (0 = full fine-tuning), got {self.lora_r}"),
            (self.max_steps > 0 or self.epochs > 0, "give --epochs > 0 or --max-steps > 0"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size and --grad-accum must be >= 1"),
            (self.alpha >= 0 and self.beta >= 0, f"--alpha and --beta must be >= 0, got {self.alpha}, {self.beta}"),
            (self.max_exponent is None or self.max_exponent > 0,
             f"--max-exponent must be > 0, got {self.max_exponent}"),
            (self.precision in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.block_size is None or self.block_size >= 2, f"--block-size must be >= 2, got {self.block_size}"),
            (not (self.precision == "fp16" and self.use_cpu()),
             "--precision fp16 needs a CUDA GPU (the Trainer's fp16 path uses a gradient scaler); use bf16 or "
             "fp32 on the CPU"),
            (0.0 < self.eval_fraction < 1.0, f"--eval-fraction must be in (0, 1), got {self.eval_fraction}"),
            (len(self.seeds) > 0, "give at least one seed"),
            (self.fused is not True or self.optim in FUSED_OPTIM.values() or self.optim in FUSED_OPTIM,
             f"--fused needs --optim {' or '.join(FUSED_OPTIM)} (torch's fused AdamW), got {self.optim!r}"),
            (self.log_every >= 1, f"--log-every must be >= 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def trainer_optim(self) -> str:
        """``TrainingArguments.optim``: :obj:`optim`, its fused variant unless :obj:`fused` is false."""
        if self.fused is False:
            return {fused: plain for plain, fused in FUSED_OPTIM.items()}.get(self.optim, self.optim)
        return FUSED_OPTIM.get(self.optim, self.optim)

    def use_cpu(self) -> bool:
        """Whether training runs on the CPU (:obj:`cpu` set, or no CUDA GPU)."""
        return self.cpu or not torch.cuda.is_available()

    def ham_arguments(self) -> HAMArguments:
        return HAMArguments(enabled=self.ham, alpha=self.alpha, beta=self.beta, max_exponent=self.max_exponent,
                            include_embeddings=self.ham_embeddings, include_lm_head=self.ham_lm_head)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


def _hub_unreachable(timeout: float = 3.0) -> Optional[str]:
    """Why the Hub endpoint cannot be reached (``None`` if it can, or if a proxy is configured).

    One quick TCP connect instead of ``huggingface_hub``'s retries with back-off (about a
    minute per file when there is no network).
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot reach {constants.ENDPOINT} ({exc.strerror or exc})"
    return None


def _from_pretrained(transformers: Any, source: str, dtype: Optional[torch.dtype], **kwargs: Any) -> Tuple[Any, Any]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
    if dtype is not None:
        kwargs["dtype"] = dtype
    return transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs), tokenizer


def load_model_and_tokenizer(model: str, dtype: Optional[torch.dtype] = None) -> Tuple[Any, Any]:
    r"""Load a causal LM and its tokenizer from a local directory (offline) or a Hub id.

    A Hub id is first looked up in the local cache, then downloaded. A path that does not
    exist, a directory that holds no model, and a Hub id that cannot be downloaded (no
    network, offline mode, unknown id) each raise a one-line
    :class:`~pyg_ham.errors.ConfigError`.
    """
    transformers = require("transformers")
    path = Path(model).expanduser()
    if path.is_dir():
        try:
            return _from_pretrained(transformers, str(path), dtype, local_files_only=True)
        except Exception as exc:  # OSError, ValueError, KeyError... from a directory without a model
            raise ConfigError(f"cannot load a causal LM from local directory {str(path)!r}: "
                              f"{_first_line(exc)}") from None
    # Hub ids are "name" or "org/name"; anything else that is not a directory is a bad path.
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        raise ConfigError(f"model directory {model!r} does not exist (or is not a directory)")
    try:
        return _from_pretrained(transformers, model, dtype, local_files_only=True)  # the local cache
    except Exception:
        pass
    from huggingface_hub import constants

    where = f"Hugging Face Hub id {model!r}"
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(f"{where} is not in the local cache and offline mode is on (HF_HUB_OFFLINE); "
                          f"use a local model directory")
    reason = _hub_unreachable()
    if reason is not None:
        raise ConfigError(f"cannot download {where}: {reason}; use a local model directory")
    try:
        return _from_pretrained(transformers, model, dtype)
    except Exception as exc:  # unknown id, gated repo, HTTP errors, not a causal LM
        raise ConfigError(f"cannot load a causal LM from {where}: {_first_line(exc)}") from None


def apply_lora(model: Any, r: int, lora_alpha: Optional[float] = None, dropout: float = 0.0,
               targets: Optional[Sequence[str]] = None) -> Any:
    r"""Wrap :obj:`model` in a ``peft`` LoRA model (rank :obj:`r`); the base weights are frozen."""
    peft = require("peft")
    config = peft.LoraConfig(r=r, lora_alpha=lora_alpha if lora_alpha is not None else 2 * r,
                             lora_dropout=dropout, target_modules=list(targets) if targets else None,
                             task_type="CAUSAL_LM")
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"cannot apply LoRA: {_first_line(exc)} (name the modules with --lora-target)") from None


def _training_arguments(config: LLMConfig, output_dir: str, seed: int) -> Any:
    transformers = require("transformers")
    try:
        return transformers.TrainingArguments(
            output_dir=output_dir, seed=seed, use_cpu=config.use_cpu(),
            num_train_epochs=config.epochs, max_steps=config.max_steps,
            learning_rate=config.lr, weight_decay=config.weight_decay,
            per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum, max_grad_norm=config.max_grad_norm,
            lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_steps, optim=config.trainer_optim(),
            fp16=config.precision == "fp16", bf16=config.precision == "bf16",
            eval_strategy="no", save_strategy="no", logging_steps=config.log_every, report_to="none",
            disable_tqdm=True, dataloader_num_workers=0,
            # under torchrun: DDP over the ranks (gloo on the CPU, where NCCL does not run)
            ddp_backend="gloo" if config.use_cpu() and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid training settings: {_first_line(exc)}") from None


def _block_size(requested: Optional[int], model: Any) -> int:
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if requested is None:
        return min(128, limit) if limit else 128
    if limit is not None and requested > limit:
        raise ConfigError(f"--block-size {requested} exceeds the model's context of {limit} tokens")
    return requested


def _perplexity(loss: float) -> float:
    """``exp(loss)``, ``inf`` where that overflows."""
    return math.exp(loss) if loss < 700 else math.inf


def _jsonable(record: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float, str, bool)) or v is None}


def finetune(config: LLMConfig) -> Dict[str, Any]:
    r"""Fine-tune a causal LM on a text file with HAM (LoRA by default) and return the result
    document (see the module docstring); saves the adapter to ``config.save_dir`` if set
    (``<save_dir>/seed<k>`` for several seeds).

    Example:
        >>> doc = finetune(LLMConfig(model="path/to/llama", data="train.txt", lora_r=8, max_steps=200))
        >>> doc["summary"]["valid_mean"], doc["summary"]["perplexity_mean"]
    """
    config.validate()
    transformers = require("transformers")
    text = read_text(config.data)
    trainer_cls = get_ham_trainer_class()
    runs: List[RunResult] = []
    num_params = total_params = 0
    device = None
    for seed in config.seeds:
        transformers.set_seed(seed)
        # weights stay in float32; --precision bf16/fp16 is autocast mixed precision
        model, tokenizer = load_model_and_tokenizer(config.model)
        block_size = _block_size(config.block_size, model)
        train_blocks, eval_blocks = split_blocks(tokenize_blocks(tokenizer, text, block_size), config.eval_fraction)
        if config.lora_r > 0:
            model = apply_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
        num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total_params = sum(p.numel() for p in model.parameters())
        with tempfile.TemporaryDirectory(prefix="pyg_ham_llm_") as tmp:
            trainer = trainer_cls(model=model, args=_training_arguments(config, tmp, seed),
                                  train_dataset=BlockDataset(train_blocks), eval_dataset=BlockDataset(eval_blocks),
                                  data_collator=transformers.default_data_collator, ham_args=config.ham_arguments())
            device = trainer.args.device
            initial = trainer.evaluate()["eval_loss"]
            output = trainer.train()
            final = trainer.evaluate()["eval_loss"]
            train_loss = trainer.evaluate(BlockDataset(train_blocks[:len(eval_blocks)]),
                                          metric_key_prefix="train")["train_loss"]
            history = [_jsonable(r) for r in trainer.state.log_history]
            selected = list(trainer.ham_selected)
            steps = trainer.state.global_step
            step_record = describe_step(unwrap_optimizer(trainer.optimizer))
            epoch = float(trainer.state.epoch or 0.0)
        if config.save_dir is not None and distributed.is_main():
            target = Path(config.save_dir) if len(config.seeds) == 1 else Path(config.save_dir) / f"seed{seed}"
            model.save_pretrained(str(target))
            tokenizer.save_pretrained(str(target))
        runs.append(RunResult(
            seed=seed, best_epoch=max(1, math.ceil(epoch - 1e-9)) if steps else 0,
            train=float(train_loss), valid=float(final), test=float(final), history=history,
            extra={"perplexity": _perplexity(final), "eval_loss_initial": float(initial),
                   "perplexity_initial": _perplexity(initial), "train_loss_running": float(output.training_loss),
                   "steps": steps, "epochs": epoch, "train_blocks": len(train_blocks),
                   "eval_blocks": len(eval_blocks), "block_size": block_size, "ham_tensors": len(selected),
                   "optimizer_step": step_record},
        ))
    doc = result_document(Path(config.data).name, "llm", "eval_loss", _config_dict(config), runs,
                          num_params=num_params, device=device, model=config.model,
                          lower_is_better=True, total_params=total_params)
    doc["provenance"].update(distributed.describe(device))  # world_size, backend, every rank's device
    perplexities = [r.extra["perplexity"] for r in runs]
    doc["summary"]["perplexity_mean"], doc["summary"]["perplexity_std"] = mean_std(perplexities)
    return doc


def _config_dict(config: LLMConfig) -> Dict[str, Any]:
    out = asdict(config)
    out["ham_args"] = config.ham_arguments().to_dict()
    return out
