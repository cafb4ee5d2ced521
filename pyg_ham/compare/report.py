r"""``report``: aggregate result JSON files (or folders of them) into one table.

Like GraphGym's aggregation: every result document becomes one row (mean ± std over its
seeds/folds); with ``merge_seeds`` the documents of one configuration that differ only in
their seeds (e.g. one job per seed) are pooled first.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pyg_ham.compare.compare import time_per_epoch
from pyg_ham.compare.stats import higher_is_better
from pyg_ham.compare.table import REPORT_COLUMNS, csv_text, markdown_table, report_rows
from pyg_ham.compare.variants import variant_of_config
from pyg_ham.errors import ConfigError
from pyg_ham.results import read_json, summarize
from pyg_ham.train.stability import document_stability

__all__ = ["collect_results", "report_entries", "format_report", "is_result_document"]

_SEED_KEYS = {"seed", "out", "checkpoint_dir", "resume", "quiet", "device", "root"}


def is_result_document(doc: Any) -> bool:
    """Whether :obj:`doc` looks like a train result (``config``, ``runs`` and ``summary``)."""
    return isinstance(doc, dict) and all(k in doc for k in ("config", "runs", "summary"))


def collect_results(paths: Sequence[Union[str, Path]]) -> List[Tuple[Path, Dict[str, Any]]]:
    r"""Read result documents from files and folders (searched recursively for ``*.json``).

    Files inside folders that are not result documents (``comparison.json``, ``sweep.json``)
    are skipped; a ``comparison.json``/``sweep.json`` named explicitly stands for the result
    files it lists; any other file named explicitly must be a result document.

    Raises:
        ConfigError: a path does not exist, or a named file is not a result document.
    """
    out: List[Tuple[Path, Dict[str, Any]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                try:
                    doc = read_json(file)
                except (OSError, json.JSONDecodeError):
                    continue
                if is_result_document(doc):
                    out.append((file, doc))
        elif path.is_file():
            try:
                doc = read_json(path)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
            listed = _listed_files(path, doc)
            if listed is not None:
                out += listed
                continue
            if not is_result_document(doc):
                raise ConfigError(f"{path} is not a result file (expected the JSON that `pyg-ham train --out` "
                                  f"or `pyg-ham compare` writes, with config, runs and summary)")
            out.append((path, doc))
        else:
            raise ConfigError(f"{path} does not exist")
    return out


def _listed_files(path: Path, doc: Any) -> Optional[List[Tuple[Path, Dict[str, Any]]]]:
    """The result files a ``comparison.json`` or ``sweep.json`` names (``None`` for other files)."""
    if not isinstance(doc, dict) or doc.get("kind") not in ("pyg-ham comparison", "pyg-ham sweep"):
        return None
    if doc["kind"] == "pyg-ham comparison":
        names = [v["file"] for v in doc.get("variants", [])]
    else:
        names = [r["file"] for arm in doc.get("arms", {}).values() for r in arm.get("results", [])]
    out = []
    for name in names:
        file = path.parent / name
        if file.is_file():
            item = read_json(file)
            if is_result_document(item):
                out.append((file, item))
    return out


def _merge(items: List[Tuple[Path, Dict[str, Any]]]) -> List[Tuple[str, Dict[str, Any]]]:
    groups: Dict[str, List[Tuple[Path, Dict[str, Any]]]] = {}
    for path, doc in items:
        config = {k: v for k, v in doc["config"].items() if k not in _SEED_KEYS and k != "runs"}
        groups.setdefault(json.dumps([doc.get("dataset"), config], sort_keys=True, default=str), []).append((path, doc))
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append((str(members[0][0]), members[0][1]))
            continue
        runs, seen = [], set()
        for _, doc in members:
            for r in doc["runs"]:
                ident = (r.get("seed"), r.get("repeat"), r.get("fold"))
                if ident not in seen:
                    seen.add(ident)
                    runs.append(r)
        first = members[0][1]
        doc = {**first, "runs": runs, "complete": all(d.get("complete") for _, d in members),
               "summary": summarize(runs, first["summary"].get("num_params"))}
        merged.append((f"{members[0][0]} (+{len(members) - 1} merged)", doc))
    return merged


def report_entries(paths: Sequence[Union[str, Path]], *, merge_seeds: bool = False,
                   sort: str = "test") -> List[Dict[str, Any]]:
    r"""One entry per result document (or per configuration with :obj:`merge_seeds`), with
    the :data:`~pyg_ham.compare.table.REPORT_COLUMNS` keys, sorted by dataset and then by
    :obj:`sort` (``test``/``valid``: best first, ``file``: by name)."""
    if sort not in ("test", "valid", "file"):
        raise ConfigError(f"sort must be one of test, valid, file, got {sort!r}")
    items = collect_results(paths)
    named = _merge(items) if merge_seeds else [(str(p), d) for p, d in items]
    entries = []
    for name, doc in named:
        s = doc["summary"]
        st = document_stability(doc)
        entries.append({"file": name, "dataset": doc.get("dataset"), "model": doc.get("model"),
                        "variant": variant_of_config(doc["config"]), "protocol": doc.get("protocol"),
                        "metric": doc.get("metric"), "test_mean": s.get("test_mean"), "test_std": s.get("test_std"),
                        "valid_mean": s.get("valid_mean"), "valid_std": s.get("valid_std"),
                        "num_params": s.get("num_params"), "runs": s.get("runs", len(doc["runs"])),
                        "diverged": len(st["diverged"]), "unstable": len(st["unstable"]), "advice": st["advice"],
                        "time_per_epoch": time_per_epoch(doc), "complete": bool(doc.get("complete"))})

    def key(e: Dict[str, Any]) -> Any:
        if sort == "file":
            return (str(e["dataset"]), e["file"])
        v = e[f"{sort}_mean"]
        v = -math.inf if not isinstance(v, (int, float)) or math.isnan(v) else v
        return (str(e["dataset"]), -v if higher_is_better(e["metric"] or "") else v)

    return sorted(entries, key=key)


def format_report(entries: Sequence[Dict[str, Any]], fmt: str = "md") -> str:
    """The entries as a markdown table (``md``, followed by one line per result with diverged
    or unstable runs, saying what to change) or CSV (``csv``, full precision)."""
    if fmt == "csv":
        return csv_text(list(entries), REPORT_COLUMNS)
    if fmt != "md":
        raise ConfigError(f"format must be md or csv, got {fmt!r}")
    headers = ["file", "dataset", "model", "variant", "protocol", "metric", "test", "valid", "#params", "runs",
               "s/epoch", "complete"]
    notes = [f"* {e['file']}: {_flagged(e)} of {e['runs']} runs; {e['advice']}"
             for e in entries if e.get("diverged") or e.get("unstable")]
    return markdown_table(headers, report_rows(entries)) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def _flagged(entry: Dict[str, Any]) -> str:
    parts = [f"{k} in {entry[k]}" for k in ("diverged", "unstable") if entry.get(k)]
    return " and ".join(parts)
