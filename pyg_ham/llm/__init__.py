r"""HAM for fine-tuning causal language models (Hugging Face ``transformers`` + ``peft``).

Everything calls the one optimizer core, :mod:`pyg_ham.optim`:

* :class:`HAMTrainer` / :class:`HAMTrainerMixin`: a ``Trainer`` whose optimizer (built from
  ``TrainingArguments``) gets HAM attached with :func:`~pyg_ham.optim.attach_ham`;
* :func:`build_llm_optimizer`: the plain-PyTorch path;
* :func:`llm_ham_selector`: which tensors get the hyperbolic step (weight matrices, not
  embeddings/LM head by default; under LoRA the LoRA matrices);
* :func:`finetune` / ``pyg-ham llm``: fine-tuning on a text file with result JSON.

``transformers`` and ``peft`` (the ``pyg-ham[llm]`` extra) are imported only when needed.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "HAMArguments", "HAMTrainer", "HAMTrainerMixin", "get_ham_trainer_class", "unwrap_optimizer",
    "llm_ham_selector", "embedding_tensors", "split_param_groups", "build_llm_optimizer",
    "LLMConfig", "finetune", "load_model_and_tokenizer", "apply_lora",
    "read_text", "tokenize_blocks", "split_blocks", "BlockDataset",
]

_WHERE = {
    "HAMArguments": "trainer", "HAMTrainer": "trainer", "HAMTrainerMixin": "trainer",
    "get_ham_trainer_class": "trainer", "unwrap_optimizer": "trainer",
    "llm_ham_selector": "selection", "embedding_tensors": "selection", "split_param_groups": "selection",
    "build_llm_optimizer": "optim",
    "LLMConfig": "finetuning", "finetune": "finetuning", "load_model_and_tokenizer": "finetuning",
    "apply_lora": "finetuning",
    "read_text": "data", "tokenize_blocks": "data", "split_blocks": "data", "BlockDataset": "data",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"pyg_ham.llm.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'pyg_ham.llm' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + __all__)
