#!/usr/bin/env python3
"""Rebuild every results/*/comparison.{json,csv,md} from its finished variant JSONs, with the
current comparison code (verdicts, instability flags), without training or loading any data.

The run JSONs (the finished results) are read, never written. Use it after a change to how a
comparison is judged (e.g. the instability rule of pyg_ham.train.stability), then
``python results/make_table.py --update README.md results/README.md``.

Usage:  python results/refresh_comparisons.py [results_dir]
"""
import json
import sys
from pathlib import Path

from pyg_ham.compare.compare import VariantOutcome, build_comparison, write_comparison
from pyg_ham.compare.variants import Variant

HERE = Path(__file__).resolve().parent


def rebuild(path: Path) -> dict:
    """The comparison in :obj:`path`'s folder as the current code builds it from the variant JSONs."""
    old = json.loads(path.read_text())
    outcomes = []
    for v in old["variants"]:
        file = path.parent / v["file"]
        doc = json.loads(file.read_text()) if file.exists() else None
        variant = Variant(v["optimizer"], v["ham"], dict(v["overrides"]), sam=v.get("sam", False))
        outcomes.append(VariantOutcome(variant, file, doc=doc,
                                       error=v.get("error"), skipped=True))
    new = build_comparison(outcomes, references=bool(old.get("references")))
    new["config"], new["references"] = old["config"], old.get("references", [])
    return new


def refresh(path: Path) -> dict:
    """Rewrite the comparison in :obj:`path`'s folder; return the changed verdicts (variant -> (was, now))."""
    before = {c["variant"]: c["verdict"] for c in json.loads(path.read_text()).get("comparisons", [])}
    new = rebuild(path)
    write_comparison(new, path.parent, name=path.stem)
    return {c["variant"]: (before.get(c["variant"]), c["verdict"]) for c in new["comparisons"]
            if before.get(c["variant"]) != c["verdict"]}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for path in sorted(root.glob("*/comparison.json")):
        for variant, (was, now) in refresh(path).items():
            print(f"{path.parent.name}: {variant}: {was!r} -> {now!r}")


if __name__ == "__main__":
    main()
