#!/usr/bin/env python3
"""Print the README results table from every results/*/comparison.json.

Usage:  python results/make_table.py [results_dir]   (default: the folder of this script)

One row per paired comparison (HAM variant vs the same optimizer without HAM) written by
`pyg-ham compare`. Published reference numbers are the ones compare bundled in the same
comparison.json ("references"); they were not rerun here.
"""
import json
import sys
from pathlib import Path

here = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent


def fmt(m, s, pct):
    if m is None or m != m:  # None or NaN (every run diverged)
        return "all diverged"
    k = 100.0 if pct else 1.0
    return f"{m * k:.2f} ± {s * k:.2f}" if s is not None else f"{m * k:.2f}"


def pval(p):
    if p is None:
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.3g}"


def main():
    rows = []
    for f in sorted(here.glob("*/comparison.json")):
        d = json.loads(f.read_text())
        cfg = d.get("config", {})
        pct = d.get("metric") in ("acc", "rocauc", "ap", "f1")
        var = {v["label"]: v for v in d.get("variants", [])}
        tag = f.parent.name
        tuning = "sweep (equal budget, valid only)" if "tuned" in tag else "defaults (α=200, β=1e-3 vs recipe wd)"
        refs = d.get("references") or []
        ref = "; ".join(
            f"{r['method']}: {fmt(r.get('test'), r.get('test_std'), pct)}" for r in refs
        ) or "-"
        if d.get("cv"):
            n_desc = f"{cfg.get('folds')} folds" + (f" × {cfg.get('repeats')}" if (cfg.get('repeats') or 1) > 1 else "")
        else:
            n_desc = f"{d.get('num_runs')} seeds"
        extra = []
        if cfg.get("sparsity"):
            extra.append(f"sparsity {cfg['sparsity']} {cfg.get('sparsifier')}")
        if cfg.get("batch_size") and d.get("task") == "node":
            extra.append(f"mini-batch {cfg['batch_size']}, fanout {cfg.get('fanout')}")
        for c in d.get("comparisons", []):
            b, v = var.get(c["baseline"]), var.get(c["variant"])
            if b is None or v is None or not v.get("ham"):
                continue  # only HAM-vs-its-base rows
            bs, vs = b["summary"], v["summary"]
            div = []
            if b.get("diverged"):
                div.append(f"base {b['diverged']} diverged")
            if v.get("diverged"):
                div.append(f"HAM {v['diverged']} diverged")
            k = 100.0 if pct else 1.0
            rows.append([
                d["dataset"], d.get("model") or "-", d.get("metric") + (" (%)" if pct else ""),
                c["baseline"], fmt(bs["test_mean"], bs["test_std"], pct),
                c["variant"], fmt(vs["test_mean"], vs["test_std"], pct),
                (f"{c['mean'] * k:+.2f} [{c['ci_low'] * k:+.2f}, {c['ci_high'] * k:+.2f}]"
                 if c.get("n") and c["mean"] == c["mean"] else "-"),
                pval(c.get("p")) if c.get("p") == c.get("p") else "-", (c.get("verdict", "-") if c.get("n") else "no finite pairs (HAM diverged)"), f"{c.get('n')} ({n_desc})",
                str(cfg.get("epochs")), tuning,
                ", ".join(extra + div) or "-", ref, f"{tag}/",
            ])
    head = ["dataset", "model", "metric", "baseline", "baseline test", "HAM variant", "HAM test",
            "Δ (HAM − base) [95% CI]", "p (paired t)", "verdict", "n paired", "epochs", "tuning",
            "notes", "published (reference, not rerun)", "folder"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
