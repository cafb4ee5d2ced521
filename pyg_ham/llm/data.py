r"""Causal-LM data from a plain text file: tokenise, cut into blocks, split train/eval."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch
from torch import Tensor

from pyg_ham.errors import DatasetError

__all__ = ["read_text", "tokenize_blocks", "split_blocks", "BlockDataset"]


def read_text(path: Union[str, Path]) -> str:
    """The UTF-8 text of :obj:`path`, or a one-line :class:`~pyg_ham.errors.DatasetError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"data file {str(path)!r} does not exist")
    if not path.is_file():
        raise DatasetError(f"data file {str(path)!r} is not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise DatasetError(f"cannot read data file {str(path)!r} as UTF-8 text ({reason})") from None
    if not text.strip():
        raise DatasetError(f"data file {str(path)!r} is empty")
    return text


def tokenize_blocks(tokenizer: Any, text: str, block_size: int) -> Tensor:
    r"""Tokenise :obj:`text` line by line (newlines kept, no special tokens), concatenate and
    cut into non-overlapping blocks of :obj:`block_size` tokens; the remainder is dropped.

    Returns:
        LongTensor of shape ``[num_blocks, block_size]``.
    """
    if block_size < 2:
        raise DatasetError(f"block size must be >= 2, got {block_size}")
    lines = text.splitlines(keepends=True)
    ids = []
    for start in range(0, len(lines), 1024):
        for row in tokenizer(lines[start:start + 1024], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
    num_blocks = len(ids) // block_size
    return torch.tensor(ids[:num_blocks * block_size], dtype=torch.long).view(num_blocks, block_size)


def split_blocks(blocks: Tensor, eval_fraction: float) -> Tuple[Tensor, Tensor]:
    r"""Hold out the *last* ``round(eval_fraction * n)`` blocks (at least one) for evaluation.

    A contiguous tail is used rather than random blocks: neighbouring blocks of running text
    are correlated, so a random split would leak.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise DatasetError(f"eval fraction must be in (0, 1), got {eval_fraction}")
    n = blocks.size(0)
    if n < 2:
        raise DatasetError(f"the data yields {n} block(s) of {blocks.size(1)} tokens; at least 2 are needed "
                           f"(one to train, one to evaluate): add text or lower --block-size")
    n_eval = min(n - 1, max(1, round(eval_fraction * n)))
    return blocks[:n - n_eval], blocks[n - n_eval:]


class BlockDataset(torch.utils.data.Dataset):
    r"""Fixed-size token blocks as causal-LM examples (``labels = input_ids``; the model shifts)."""

    def __init__(self, blocks: Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.size(0)

    def __getitem__(self, index: int) -> Dict[str, Tensor]:
        ids = self.blocks[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
