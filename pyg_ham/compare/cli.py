"""``pyg-ham compare``, ``pyg-ham report`` and ``pyg-ham sweep``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple

import click

from pyg_ham.train.cli import comma_separated, config_from_cli, experiment_options

__all__ = ["compare", "report", "sweep"]


_floats = comma_separated(float, "10,100,1000")


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _interrupted(out: Path) -> None:
    click.echo(f"\ninterrupted: finished runs are in {out}/; rerun the same command to continue", err=True)
    sys.exit(130)


def _default_out(prefix: str, cfg: Any) -> Path:
    return Path(f"{prefix}-{cfg.dataset}")


@click.command()
@click.argument("variant_args", nargs=-1, metavar="[VARIANTS]...")
@experiment_options
@click.option("--variants", "-V", "variant_opts", multiple=True,
              help="Variant(s) OPTIMIZER[+sam][+ham][:key=value,...]; repeatable, or several separated by spaces.")
@click.option("--variants-file", type=click.Path(dir_okay=False),
              help="YAML list of variants (e.g. the best.yaml written by `pyg-ham sweep`).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: compare-DATASET).")
@click.option("--plot", is_flag=True, help="Also write PNG figures (needs matplotlib).")
@click.option("--fresh", is_flag=True, help="Delete this comparison's earlier results and start over.")
@click.option("--all-references", is_flag=True, help="Show every published number of the dataset, any model.")
@click.option("--confidence", type=float, default=0.95, show_default=True, help="Confidence level of the CI.")
def compare(variant_args: Tuple[str, ...], config_path: Optional[str], variant_opts: Tuple[str, ...],
            variants_file: Optional[str], out: Optional[str], plot: bool, fresh: bool, all_references: bool,
            confidence: float, **flags: Any) -> None:
    """Train variants of one config on identical seeds and splits and compare them paired.

    A variant is OPTIMIZER[+sam][+ham][:key=value,...]: `adamw`, `adamw+ham:alpha=100,beta=0.01`,
    `adam+sam+ham:rho=0.1`,
    `sgd:lr=0.1`. The first is the baseline; a HAM variant is compared against the same
    optimizer without HAM when that is listed. Default: the config's optimizer without and
    with HAM. Rerunning the same command resumes (finished runs are skipped).

    \b
    Examples:
      pyg-ham compare -d Cora --root data --runs 10 adam adam+ham
      pyg-ham compare -d MUTAG --root data --variants adamw "adamw+ham:alpha=100" --plot
      pyg-ham compare -c configs/ogbn-arxiv-gcn.yaml --variants-file sweep-ogbn-arxiv/best.yaml
    """
    from pyg_ham.compare.compare import compare as run_compare
    from pyg_ham.compare.table import comparison_markdown
    from pyg_ham.compare.variants import load_variants_file
    from pyg_ham.errors import ConfigError

    cfg = config_from_cli(config_path, **flags)
    texts = list(variant_opts) + list(variant_args)
    if variants_file:
        if texts:
            raise ConfigError("give variants either on the command line or with --variants-file, not both")
        texts = load_variants_file(variants_file)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    out_dir = Path(out) if out else _default_out("compare", cfg)
    try:
        doc = run_compare(cfg, texts or None, out_dir, plot=plot, log=_log, fresh=fresh,
                          all_references=all_references, confidence=confidence)
    except KeyboardInterrupt:
        _interrupted(out_dir)
    from pyg_ham.train.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports
        return
    click.echo(comparison_markdown(doc))
    _log(f"wrote {out_dir}/comparison.json, .csv, .md" + (" and figures" if plot else ""))
    failed = [v["label"] for v in doc["variants"] if v["status"] == "failed"]
    if failed:
        _log(f"failed variant(s): {', '.join(failed)} (see {out_dir}/*.error.txt); rerun to retry them")
        sys.exit(1)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True,
              help="Markdown table or CSV.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the table to this file (default: stdout).")
@click.option("--merge-seeds", is_flag=True, help="Pool files of one configuration that differ only in seeds.")
@click.option("--sort", type=click.Choice(["test", "valid", "file"]), default="test", show_default=True,
              help="Order within each dataset (best first).")
def report(paths: Tuple[str, ...], fmt: str, out: Optional[str], merge_seeds: bool, sort: str) -> None:
    """Aggregate result JSON files (or folders of them) into one table.

    \b
    Examples:
      pyg-ham report results/                       # every result under results/
      pyg-ham report compare-Cora/ a.json --format csv --out all.csv
    """
    from pyg_ham.compare.report import format_report, report_entries
    from pyg_ham.errors import ConfigError

    entries = report_entries(paths, merge_seeds=merge_seeds, sort=sort)
    if not entries:
        raise ConfigError(f"no result files found in {', '.join(paths)}")
    text = format_report(entries, fmt)
    if out:
        from pyg_ham.results.io import write_text

        write_text(out, text)
        _log(f"wrote {out} ({len(entries)} results)")
    else:
        click.echo(text, nl=False)


@click.command()
@experiment_options
@click.option("--alphas", callback=_floats, default="20,200,2000", show_default=True, help="HAM alpha grid.")
@click.option("--betas", callback=_floats, default="0.0001,0.001,0.01", show_default=True, help="HAM beta grid.")
@click.option("--weight-decays", callback=_floats,
              help="Baseline weight-decay grid, as many values as alphas × betas "
                   "(default: 0 and log-spaced values from 1e-5 to 0.1).")
@click.option("--lrs", callback=_floats, help="Learning rates searched by both arms (default: the config's lr).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: sweep-DATASET).")
@click.option("--fresh", is_flag=True, help="Delete this sweep's earlier results and start over.")
def sweep(config_path: Optional[str], alphas: List[float], betas: List[float], weight_decays: Optional[List[float]],
          lrs: Optional[List[float]], out: Optional[str], fresh: bool, **flags: Any) -> None:
    """Equal-budget grid search, selecting on validation only.

    HAM's alpha × beta grid against the baseline's weight-decay grid, the same number of
    configurations each (and the same --lrs for both); each arm keeps its best mean
    validation setting and reports test there only. Writes OUT/best.yaml for
    `pyg-ham compare --variants-file`. Rerunning resumes.

    \b
    Examples:
      pyg-ham sweep -d Cora --root data --runs 3 --epochs 200
      pyg-ham sweep -d MUTAG --root data --alphas 100,1000 --betas 0.001,0.01 --weight-decays 0,1e-4,1e-3,1e-2
    """
    from pyg_ham.compare.sweep import run_sweep

    cfg = config_from_cli(config_path, **flags)
    out_dir = Path(out) if out else _default_out("sweep", cfg)
    try:
        doc = run_sweep(cfg, out_dir, alphas=alphas, betas=betas, weight_decays=weight_decays, lrs=lrs, log=_log,
                        fresh=fresh)
    except KeyboardInterrupt:
        _interrupted(out_dir)
    from pyg_ham.train.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports
        return
    click.echo((out_dir / "sweep.md").read_text())
    _log(f"wrote {out_dir}/sweep.json, .csv, .md" + (f", {doc['best_file']}" if len(doc["variants"]) == 2 else ""))
