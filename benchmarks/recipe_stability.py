"""Does every shipped recipe train with HAM on? Its HAM arm at the recipe's defaults, per dataset
family with real data in ``../shared/data``, checked by the instability rule
(:mod:`pyg_ham.train.stability`).

Each row trains ``pyg-ham train -d DATASET`` at its recipe (HAM on, as shipped) for the recipe's
first 30 epochs (its full length if shorter) over 3 seeds (3 folds for TU), one representative
dataset per family, one dataset after another, into ``results/recipe-stability/DATASET.json``
(``--resume``: a rerun trains only what is missing); ogbg-molhiv trains its reduced recipe
(``-c configs/ogbg-molhiv-gin-reduced.yaml``, 10 epochs). The table (family, dataset, recipe,
flagged runs, command) goes to ``results/recipe-stability/README.md`` (and ``table.json``).

    python benchmarks/recipe_stability.py --root DATA            # train what is missing, write the table
    python benchmarks/recipe_stability.py --table-only           # the table from the stored results
    python benchmarks/recipe_stability.py --root DATA --only ogbg-molesol ogbg-molesol-alpha200

``DATA`` must be a writable copy of ``shared/data`` (the loaders write ``processed/`` folders).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "recipe-stability"
EPOCHS = 30  # the recipe's first 30 epochs (or all of them)
RUNS = 3  # seeds, or folds for TU

#: (family, dataset, config file or None) per row: one representative dataset of every family with
#: real data in shared/data (the dataset the issue names where it names one: MUTAG, ogbg-molesol);
#: ogbg-molhiv trains its reduced recipe (a ``--config`` file over the family recipe).
ROWS: List[Tuple[str, str, Optional[str]]] = [
    ("Planetoid", "Cora", None),
    ("TU", "MUTAG", None),
    ("ogbg-mol classification", "ogbg-molbace", None),
    ("ogbg-mol regression", "ogbg-molesol", None),
    ("WebKB/Actor", "Cornell", None),
    ("heterophilous", "Minesweeper", None),
    ("LINKX", "reed98", None),
    ("Airports", "USA", None),
    ("ogbg-mol classification (reduced recipe)", "ogbg-molhiv", "configs/ogbg-molhiv-gin-reduced.yaml"),
]


#: The measurements behind a recipe whose HAM setting differs from the default alpha 200:
#: (family, dataset, alpha) trained at the recipe with that alpha instead.
CONTRAST: List[Tuple[str, str, float]] = [("WebKB/Actor", "Cornell", 200.0),
                                         ("ogbg-mol regression", "ogbg-molesol", 200.0)]
CONFIGS = {d: c for _, d, c in ROWS if c is not None}
#: Where a row's own result is not there yet, an earlier result of the same settings stands in:
#: dataset -> (file, the command that made it, what differs).
FALLBACK = {"ogbg-molhiv": ("results/ogbg-molhiv-gin-reduced/adam+ham.json",
                            "pyg-ham compare -c configs/ogbg-molhiv-gin-reduced.yaml -d ogbg-molhiv --root DATA "
                            "--runs 3 --out results/ogbg-molhiv-gin-reduced adam adam+ham",
                            "the stored issue-10 runs of this recipe, written before HAM recorded clamp_fraction "
                            "(clamp saturation unknown; loss spikes and non-finite losses checked)")}


def settings(dataset: str) -> Dict[str, Any]:
    """The settings a row trains with: its family recipe, under its ``--config`` file where it has one."""
    from pyg_ham.datasets import get_info, get_recipe

    values = dict(get_recipe(get_info(dataset).recipe)["settings"])
    config = CONFIGS.get(dataset)
    if config is not None:  # the file's settings win over the family recipe
        import yaml

        values.update(yaml.safe_load((REPO / config).read_text()))
    return values


def command(dataset: str, root: str = "DATA", alpha: Optional[float] = None) -> List[str]:
    """The ``pyg-ham train`` command of a row (HAM at the recipe's settings, or at :obj:`alpha`)."""
    settings_ = settings(dataset)
    config = CONFIGS.get(dataset)
    epochs = min(EPOCHS, int(settings_["epochs"]))
    count = ["--folds", str(RUNS)] if settings_.get("protocol") == "cv" else ["--runs", str(RUNS)]
    name = dataset if alpha is None else f"{dataset}-alpha{alpha:g}"
    return ["pyg-ham", "train", *(["-c", config] if config else []), "-d", dataset, "--root", root,
            "--epochs", str(epochs), *count, *(["--alpha", f"{alpha:g}"] if alpha is not None else []), "--quiet",
            "--out", f"results/recipe-stability/{name}.json", "--resume"]


def train(dataset: str, root: str, alpha: Optional[float] = None) -> None:
    cmd = command(dataset, root, alpha)
    print("$", shlex.join(cmd), flush=True)
    subprocess.run([sys.executable, "-m", "pyg_ham.cli", *cmd[1:]], cwd=REPO, check=True)


def row(family: str, dataset: str, alpha: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """The table row of a dataset from its stored result (``None``: not trained yet)."""
    from pyg_ham.train.stability import document_stability

    cmd_list = command(dataset, alpha=alpha)
    file, cmd = cmd_list[cmd_list.index("--out") + 1], shlex.join(cmd_list)
    note = None
    own = json.loads((REPO / file).read_text()) if (REPO / file).exists() else None
    if alpha is None and dataset in FALLBACK and not (own or {}).get("complete"):
        file, cmd, note = FALLBACK[dataset]
        if own is not None:  # its own run, still training: say how far it got
            note += (f"; its own run (`{shlex.join(cmd_list)}`): {len(own['runs'])} of {RUNS} runs so far, "
                     f"{len(document_stability(own)['details'])} flagged")
    path = REPO / file
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    st = document_stability(doc)
    cfg = doc["config"]
    epochs = max(len(r["history"]) for r in doc["runs"])
    flagged = [f"{k} ({st['details'][k]['status']}: {st['details'][k]['reason']})" for k in st["details"]]
    recipe = " + ".join(str(x) for x in (cfg.get("recipe"), CONFIGS.get(dataset)) if x)
    return {"family": family, "dataset": dataset, "recipe": recipe,
            "ham": f"alpha={cfg['alpha']:g}, beta={cfg['beta']:g}, {cfg['optimizer']} lr={cfg['lr']:g}"
            if cfg["ham"] else "HAM off", "runs": st["runs"], "epochs": epochs,
            "flagged": len(st["details"]), "which": flagged, "complete": bool(doc.get("complete")),
            "test": doc["summary"].get("test_mean"), "metric": doc["metric"], "file": file, "command": cmd,
            "note": note}


HEADER = """# Every shipped recipe trains with HAM on

The HAM arm of each dataset family's recipe at its defaults (HAM on as shipped), the recipe's first
30 epochs (or all of them) over 3 seeds (3 folds for TU), classified by the instability rule of
`pyg_ham/train/stability.py` (unchanged: a loss above 10x its best so far and above its first, a
non-finite loss, or more than 25% of HAM's exponents at the clamp). Written by
`python benchmarks/recipe_stability.py --root DATA` (DATA: a writable copy of `shared/data`) on an Intel
Xeon, 2 cores, 23 GiB, torch 2.13 CPU, shared with other jobs (loaded); each row's JSON is
`results/recipe-stability/DATASET.json`. ogbg-molhiv runs its reduced recipe
(`configs/ogbg-molhiv-gin-reduced.yaml` over the family recipe). "flagged runs" counts diverged and
unstable runs.

"""


def _number(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| family | dataset | recipe (HAM settings) | flagged runs | epochs | test (mean) | command |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        flagged = f"{r['flagged']} of {r['runs']}" + (f": {'; '.join(r['which'])}" if r["which"] else "")
        flagged += "" if r["complete"] else " (still training)"
        flagged += f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {r['family']} | {r['dataset']} | {r['recipe']} ({r['ham']}) | {flagged} | {r['epochs']} | "
                     f"{r['metric']} {_number(r['test'])} | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="a writable copy of shared/data")
    parser.add_argument("--only", nargs="+", help="these datasets only")
    parser.add_argument("--table-only", action="store_true", help="train nothing; the table from stored results")
    args = parser.parse_args()
    wanted = [(f, d) for f, d, _ in ROWS if not args.only or d in args.only]
    if not args.table_only:
        if not args.root:
            parser.error("--root is needed to train (or pass --table-only)")
        for _, dataset in wanted:
            train(dataset, args.root)
        for _, dataset, alpha in CONTRAST:
            if not args.only or f"{dataset}-alpha{alpha:g}" in args.only:
                train(dataset, args.root, alpha)
    rows = [r for f, d, _ in ROWS if (r := row(f, d)) is not None]
    missing = [d for f, d, _ in ROWS if row(f, d) is None]
    contrast = [r for f, d, a in CONTRAST if (r := row(f, d, a)) is not None]
    text = table(rows)
    if contrast:
        text += ("\n## Where a recipe's HAM setting differs: the same recipe at HAM's default alpha 200\n\n"
                 + table(contrast))
    print(text)
    if missing:
        print(f"not trained yet: {', '.join(missing)}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "README.md").write_text(HEADER + text + (f"\nNot trained yet: {', '.join(missing)}.\n" if missing else ""))
    (OUT / "table.json").write_text(json.dumps({"rows": rows, "contrast": contrast}, indent=1) + "\n")


if __name__ == "__main__":
    main()
