#!/usr/bin/env python3
"""Print the README results tables from every results/*/comparison.json.

Usage:  python results/make_table.py [results_dir]        print the tables
        python results/make_table.py --update README.md results/README.md
            rewrite the text between the <!-- make_table:start/end --> markers (both tables,
            every column) and the <!-- make_table:compact:start/end --> markers (the
            current-default table, fewer columns) of each file

One row per paired comparison (a HAM variant against the same optimizer without HAM) written by
`pyg-ham compare`. Rows are split by HAM's update: the current default clamps the exponent to ±5
(the authors' wrapper); the earliest runs used the paper's unclamped equation (``max_exponent``
null in their configs). Published reference numbers are the ones compare bundled in the same
comparison.json ("references"); they were not rerun here.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEAD = ["dataset", "model", "metric", "baseline", "baseline test", "HAM variant", "HAM test",
        "Δ (HAM − base) [95% CI]", "p", "verdict", "n paired", "epochs", "tuning",
        "|w| < 1e-3 at the end (base → HAM)", "notes",
        "published (reference, not rerun)", "folder"]
FULL_HEAD = HEAD[:9] + ["p (Holm)"] + HEAD[9:]
COMPACT = ["dataset", "model", "metric", "baseline", "baseline test", "HAM variant", "HAM test",
           "Δ (HAM − base) [95% CI]", "p", "p (Holm)", "n paired", "epochs", "tuning", "notes",
           "published (reference, not rerun)"]

# Short first runs kept for their unclamped rows; the compact table shows the full runs instead.
SUPERSEDED = {
    "PROTEINS-gin-30ep": "PROTEINS-gin (100 epochs)",
    "ENZYMES-gin-30ep": "ENZYMES-gin (100 epochs)",
    "IMDB-BINARY-gin-30ep": "IMDB-BINARY-gin (100 epochs)",
}


def fmt(m, s, scale):
    if m is None or m != m:  # None or NaN (every run diverged)
        return "all diverged"
    return f"{m * scale:.2f} ± {s * scale:.2f}" if s is not None else f"{m * scale:.2f}"


def pval(p):
    if p is None or p != p:
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.3g}"


def effective(cfg, variant, key):
    """A variant's setting: its own override, else the comparison's config."""
    return variant.get("overrides", {}).get(key, cfg.get(key))


def near_zero(folder, variant):
    """Mean over runs of the fraction of weights with |w| < 1e-3 after the last finite epoch
    (the engine's per-epoch diagnostic), in percent; "-" when not recorded."""
    runs = json.loads((folder / variant["file"]).read_text()).get("runs", [])
    last = [next((h["near_zero"] for h in reversed(r.get("history", [])) if h.get("near_zero") is not None), None)
            for r in runs]
    last = [v for v in last if v is not None]
    return f"{100 * sum(last) / len(last):.1f}" if last else "-"


def is_clamped(value):
    return value is not None and str(value).lower() not in ("none", "inf", "nan")


def optimizer_label(cfg, variant):
    """The variant's label, plus the shared momentum where SGD uses one (set for the whole run)."""
    label = variant["label"]
    momentum = effective(cfg, variant, "momentum")
    if variant["optimizer"] == "sgd" and momentum and "momentum" not in variant.get("overrides", {}):
        label += f" (momentum {momentum})"
    return label


def rows_of(path):
    """(clamped, row) for each HAM-vs-base comparison in one comparison.json."""
    d = json.loads(path.read_text())
    cfg = d.get("config", {})
    scale = 100.0 if d.get("metric") in ("acc", "rocauc", "ap", "f1") else 1.0
    variants = {v["label"]: v for v in d.get("variants", [])}
    tag = path.parent.name
    refs = "; ".join(f"{r['method']}: {fmt(r.get('test'), r.get('test_std'), scale)}"
                     for r in d.get("references") or []) or "-"
    if d.get("cv"):
        repeats = cfg.get("repeats") or 1
        runs = f"{cfg.get('folds')} folds" + (f" × {repeats}" if repeats > 1 else "")
    else:
        runs = f"{d.get('num_runs')} seeds"
    for c in d.get("comparisons", []):
        base, ham = variants.get(c["baseline"]), variants.get(c["variant"])
        if base is None or ham is None or not ham.get("ham") or base.get("ham"):
            continue  # only HAM-vs-its-base rows
        alpha, beta = effective(cfg, ham, "alpha"), effective(cfg, ham, "beta")
        tuning = ("sweep (equal budget, valid only)" if "tuned" in tag
                  else f"none (α={alpha:g}, β={beta:g}; base: recipe wd)")
        notes = []
        if cfg.get("sparsity"):
            notes.append(f"sparsity {cfg['sparsity']} {cfg.get('sparsifier')}")
        if cfg.get("batch_size") and d.get("task") == "node":
            notes.append(f"mini-batch {cfg['batch_size']}, fanout {cfg.get('fanout')}")
        if tag in SUPERSEDED:
            notes.append(f"superseded by {SUPERSEDED[tag]}")
        for who, v in (("base", base), ("HAM", ham)):
            for status in ("diverged", "unstable"):  # counted by pyg_ham.train.stability
                if v.get(status):
                    notes.append(f"{who} {v[status]} {status}")
        paired = bool(c.get("n")) and c["mean"] == c["mean"]
        row = [
            d["dataset"], d.get("model") or "-", d["metric"] + (" (%)" if scale == 100.0 else ""),
            optimizer_label(cfg, base), fmt(base["summary"]["test_mean"], base["summary"]["test_std"], scale),
            ham["label"], fmt(ham["summary"]["test_mean"], ham["summary"]["test_std"], scale),
            (f"{c['mean'] * scale:+.2f} [{c['ci_low'] * scale:+.2f}, {c['ci_high'] * scale:+.2f}]"
             if paired else "-"),
            c.get("p"), c.get("verdict", "-") if paired else "no finite pairs (HAM diverged)",
            f"{c.get('n')} ({runs})", str(cfg.get("epochs")), tuning,
            f"{near_zero(path.parent, base)} → {near_zero(path.parent, ham)}", ", ".join(notes) or "-", refs, f"{tag}/",
        ]
        yield is_clamped(effective(cfg, ham, "max_exponent")), row


def holm(pvalues):
    """Holm–Bonferroni adjusted p-values (family: the rows of one table); None stays None."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and p == p)
    adjusted, running = [None] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def table(rows, columns=HEAD):
    """Markdown table of the given columns; a row's "p" cell holds the raw p-value, from which the
    Holm-adjusted one is computed over the rows of this table."""
    raw = [r[HEAD.index("p")] for r in rows]
    full = [r[:8] + [pval(p), pval(q)] + r[9:] for r, p, q in zip(rows, raw, holm(raw))]
    keep = [FULL_HEAD.index(c) for c in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(r[i] for i in keep) + " |" for r in full])


def tables(folder: Path, compact: bool = False) -> str:
    """Both tables with every column, or (compact) the current-default table with the columns a
    reader needs first."""
    found = [x for f in sorted(folder.glob("*/comparison.json")) for x in rows_of(f)]
    found.sort(key=lambda x: (x[1][0].lower(), x[1][-1]))  # by dataset, then folder
    clamped = [r for c, r in found if c]
    if compact:
        return table([r for r in clamped if r[-1].rstrip("/") not in SUPERSEDED], COMPACT)
    return "\n".join([
        "### HAM with its exponent clamped to ±5 (the current default)\n", table(clamped, FULL_HEAD),
        "\n### HAM unclamped (the paper's equation; the default before the clamp)\n",
        table([r for c, r in found if not c], FULL_HEAD),
    ])


def update(target: Path) -> None:
    """Rewrite the text between each pair of make_table markers in ``target``."""
    text = target.read_text()
    for name, compact in (("make_table", False), ("make_table:compact", True)):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{tables(HERE, compact)}\n{end}{tail}"
    target.write_text(text)


def main(argv):
    if argv[:1] == ["--update"]:
        for name in argv[1:]:
            update(Path(name))
    else:
        print(tables(Path(argv[0]) if argv else HERE))


if __name__ == "__main__":
    main(sys.argv[1:])
