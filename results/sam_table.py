#!/usr/bin/env python3
"""Print the SAM × HAM table (issue 33) from results/*-sam/comparison.json.

Usage:  python results/sam_table.py

One row per dataset: the test score of base, base+HAM, base+SAM and base+SAM+HAM (mean ± std over
the paired seeds or folds), then the paired differences that `pyg-ham compare` computed (HAM vs
base, SAM vs base, SAM+HAM vs SAM) with their 95% CI, p-value and verdict.
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDERS = ("Cora-gcn-sam", "CiteSeer-gcn-sam", "MUTAG-gin-sam")


def main() -> None:
    head = ["dataset", "model", "runs", "epochs", "base", "+HAM", "+SAM", "+SAM+HAM", "HAM − base", "SAM − base",
            "SAM+HAM − SAM", "folder"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in FOLDERS:
        path = HERE / name / "comparison.json"
        if not path.exists():
            print(f"| {name}: not run |" + " |" * (len(head) - 1))
            continue
        d = json.loads(path.read_text())
        cfg = d["config"]
        variants = {v["label"]: v for v in d["variants"]}
        base = next(v for v in d["variants"] if not v["ham"] and not v.get("sam", "+sam" in v["label"]))

        def score(v):
            s = v.get("summary") or {}
            if s.get("test_mean") is None:
                return "-"
            flags = [f"{v[k]} {k}" for k in ("diverged", "unstable") if v.get(k)]
            return f"{100 * s['test_mean']:.2f} ± {100 * s['test_std']:.2f}" + (f" ({', '.join(flags)})" if flags
                                                                                else "")

        def diff(label):
            c = next((c for c in d["comparisons"] if c["variant"] == label), None)
            if c is None or c.get("mean") is None:
                return "-"
            return (f"{100 * c['mean']:+.2f} [{100 * c['ci_low']:+.2f}, {100 * c['ci_high']:+.2f}], "
                    f"p = {c['p']:.2g} ({c['verdict']})")

        o = base["optimizer"]
        runs = f"{cfg['folds']} folds" if d.get("cv") else f"{d.get('num_runs')} seeds"
        print("| " + " | ".join([d["dataset"], d.get("model") or "-", runs, str(cfg["epochs"]), score(base),
                                 score(variants[f"{o}+ham"]), score(variants[f"{o}+sam"]),
                                 score(variants[f"{o}+sam+ham"]), diff(f"{o}+ham"), diff(f"{o}+sam"),
                                 diff(f"{o}+sam+ham"), f"{name}/"]) + " |")


if __name__ == "__main__":
    main()
