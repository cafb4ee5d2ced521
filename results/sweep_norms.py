#!/usr/bin/env python3
"""Print, per variant of one results folder, the weights' L1 norm and near-zero fraction at the
end of training (mean over runs), next to the mean validation and test score.

Usage:  python results/sweep_norms.py results/sweep-Cora-gcn-wide

Both norms are the engine's per-epoch diagnostics (``l1``: sum of |w| over the HAM-eligible weight
matrices; ``near_zero``: the fraction with |w| < 1e-3), read from the last epoch of each run.
"""
import json
import sys
from pathlib import Path


def mean(values):
    values = [v for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else float("nan")


def main(folder: Path) -> None:
    print("| variant | valid | test | L1 at the end | near-zero at the end (%) |")
    print("|---|---|---|---|---|")
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        if "runs" not in doc:
            continue  # sweep.json / comparison.json
        runs = doc["runs"]
        last = [r["history"][-1] for r in runs if r.get("history")]
        print(f"| {doc.get('label') or path.stem} | {mean(r.get('valid') for r in runs):.4f} "
              f"| {mean(r.get('test') for r in runs):.4f} | {mean(h.get('l1') for h in last):.1f} "
              f"| {100 * mean(h.get('near_zero') for h in last):.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
