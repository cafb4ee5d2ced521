r"""Published reference numbers (``pyg_ham/data/leaderboards.yaml``), each with its source."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from pyg_ham.errors import ConfigError

__all__ = ["load_leaderboards", "reference_rows", "LEADERBOARDS_FILE"]

LEADERBOARDS_FILE = Path(__file__).resolve().parents[1] / "data" / "leaderboards.yaml"

#: Short names used in papers -> pyg-ham's dataset names.
_ALIASES = {"imdb-b": "imdb-binary", "imdb-m": "imdb-multi", "rdt-b": "reddit-binary", "rdt-m5k": "reddit-multi-5k",
            "reddit-5k": "reddit-multi-5k", "d&d": "dd", "ptc": "ptc_mr", "arxiv": "ogbn-arxiv",
            "products": "ogbn-products", "molhiv": "ogbg-molhiv", "molpcba": "ogbg-molpcba"}
_REQUIRED = ("dataset", "method", "test", "source")


def _norm(name: str) -> str:
    name = str(name).strip().lower()
    return _ALIASES.get(name, name)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ConfigError(f"{path}: expected a mapping with 'sources' and an 'entries' list")
    sources = data.get("sources") or {}
    entries = []
    for i, entry in enumerate(data["entries"]):
        missing = [k for k in _REQUIRED if entry.get(k) is None]
        if missing:
            raise ConfigError(f"{path}: entry {i} ({entry.get('method', '?')}) lacks {', '.join(missing)}")
        if entry["source"] not in sources:
            raise ConfigError(f"{path}: entry {i} ({entry['method']}) names unknown source {entry['source']!r}; "
                              f"known: {', '.join(sources)}")
        entries.append({**entry, "source_key": entry["source"], "source": sources[entry["source"]]})
    return tuple(entries)


def load_leaderboards(path: Optional[Path] = None) -> List[Dict[str, Any]]:
    r"""All reference entries: ``dataset``, ``model``, ``method``, ``test``, ``test_std``,
    ``valid``, ``valid_std``, ``params``, ``metric``, ``protocol``, ``source`` (the full
    citation), ``source_key`` and ``note`` (where present). Scores are fractions."""
    return [dict(e) for e in _load(str(path or LEADERBOARDS_FILE))]


def reference_rows(dataset: str, model: Optional[str] = None, *, all_models: bool = False,
                   path: Optional[Path] = None) -> List[Dict[str, Any]]:
    r"""The published numbers for :obj:`dataset` (and :obj:`model`).

    Args:
        dataset (str): a dataset name (pyg-ham's, case-insensitive; ``IMDB-B``-style short
            names work too).
        model (str, optional): pyg-ham's model name (``gcn``, ``sage``, ``gin``...); when no
            entry of the dataset has it, every entry of the dataset is returned.
        all_models (bool): return every entry of the dataset. (default: :obj:`False`)
    """
    rows = [e for e in load_leaderboards(path) if _norm(e["dataset"]) == _norm(dataset)]
    if model and not all_models:
        same = [e for e in rows if str(e.get("model", "")).lower() == str(model).lower()]
        rows = same or rows
    return rows
