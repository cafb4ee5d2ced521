"""``pyg-ham train`` and ``pyg-ham datasets``: parse flags into an ExperimentConfig, run it."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional, Set

import click

__all__ = ["train", "datasets", "experiment_options", "config_from_cli", "config_file_keys", "run_and_report"]


def comma_separated(cast: Callable[[str], Any], example: str) -> Callable[..., Optional[List[Any]]]:
    """A click callback parsing ``"a,b,c"`` into a list with :obj:`cast` (``None`` stays ``None``)."""
    kind = "integers" if cast is int else "numbers"

    def parse(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[List[Any]]:
        if value is None:
            return None
        try:
            return [cast(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind} such as {example}, got {value!r}") from None

    return parse


def _key_values(ctx: click.Context, param: click.Parameter, values: Any) -> dict:
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def experiment_options(func: Callable) -> Callable:
    """The flags shared by ``train``, ``compare`` and ``sweep`` (each overrides the config)."""
    options = [
        click.option("--dataset", "-d", help="Dataset name (see `pyg-ham datasets`); default: synthetic."),
        click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
                     help="YAML experiment config (flags override it)."),
        click.option("--root", help="Data root laid out like shared/data "
                                    "(default: $PYG_HAM_DATA or ~/.cache/pyg_ham/data)."),
        click.option("--option", "-o", "dataset_options", multiple=True, callback=_key_values,
                     help="Dataset option KEY=VALUE (e.g. -o num_nodes=5000); repeatable."),
        click.option("--model", "-m", help="gcn, sage, gat, gin, mlp (node) / gin, gcn, sage, gat (graph) / "
                                           "cnn, mlp, resnet18, ... (vision)."),
        click.option("--hidden", type=int, help="Hidden channels."),
        click.option("--layers", type=int, help="Number of GNN layers."),
        click.option("--dropout", type=float, help="Dropout probability."),
        click.option("--norm", help="batch_norm, layer_norm or none."),
        click.option("--jk", help="Jumping knowledge: last, cat, max, lstm."),
        click.option("--heads", type=int, help="Attention heads (gat)."),
        click.option("--pool", help="Graph pooling: sum, mean, max."),
        click.option("--virtual-node/--no-virtual-node", default=None, help="Virtual node (graph models)."),
        click.option("--optimizer", help="sgd, adam, adamw, any torch.optim name, or a pytorch-optimizer name "
                                         "(lion, prodigy, schedulefree_adamw; pytorch_optimizer:NAME where torch "
                                         "has the name too)."),
        click.option("--lr", type=float, help="Learning rate."),
        click.option("--weight-decay", type=float, help="Weight decay (weight matrices only)."),
        click.option("--momentum", type=float, help="SGD momentum."),
        click.option("--ham/--no-ham", default=None, help="Wrap the optimizer in HAM (default: on)."),
        click.option("--alpha", type=float, help="HAM alpha (default 200)."),
        click.option("--beta", type=float, help="HAM beta (default 1e-3)."),
        click.option("--max-exponent", type=float, help="Clamp HAM's exponent to ±this (default 5; inf: no clamp)."),
        click.option("--ham-embeddings/--no-ham-embeddings", default=None,
                     help="HAM on the embedding tables of featureless node types (heterogeneous graphs; default: on)."),
        click.option("--sam/--no-sam", default=None, help="Sharpness-aware minimization around the optimizer "
                                                          "(two forward/backward passes per step; default: off)."),
        click.option("--rho", type=float, help="SAM's radius (default 0.05)."),
        click.option("--adaptive/--no-adaptive", default=None, help="ASAM: SAM's scale-invariant perturbation."),
        click.option("--fused/--no-fused", default=None,
                     help="The base optimizer with fused=True and HAM's step inside its pass (default: where the "
                          "base, AdamW/Adam/SGD, and the device, CPU/CUDA, allow)."),
        click.option("--scheduler", help="none, cosine, step, plateau."),
        click.option("--epochs", type=int, help="Training epochs."),
        click.option("--runs", type=int, help="Seeds 0..R-1 (node tasks and OGB graph tasks)."),
        click.option("--seed", type=int, help="First seed."),
        click.option("--batch-size", type=int, help="Mini-batch size (node: seed nodes, enables sampling)."),
        click.option("--fanout", callback=comma_separated(int, "15,10,5"),
                     help="Neighbours per layer, e.g. 15,10,5 (-1 = all); needs --batch-size."),
        click.option("--eval-mode", help="full or layerwise evaluation (node tasks); sampled (mini-batch: the "
                                         "scored nodes only, with the training fanout or --eval-fanout)."),
        click.option("--eval-fanout", callback=comma_separated(int, "-1,-1"),
                     help="Neighbours per layer in sampled evaluation (default: --fanout; -1 = all)."),
        click.option("--prefetch/--no-prefetch", default=None,
                     help="Mini-batch training: gather the next batch and start its copy to the device while the "
                          "current step runs (default: on; the same batches and results either way)."),
        click.option("--on-disk/--in-memory", default=None,
                     help="Node datasets: train from the on-disk layout (memory-mapped CSC and features, built "
                          "once under the dataset root); ogbn-papers100M always does."),
        click.option("--graph-placement", help="Node datasets: the graph on the device, the host (pinned on CUDA) or "
                                               "disk (the on-disk layout); default auto: by size against the "
                                               "device's free memory."),
        click.option("--feature-placement", help="Node datasets: the features (and labels) on the device, the host "
                                                 "or disk; default auto (as --graph-placement)."),
        click.option("--eval-every", type=int, help="Evaluate every N epochs."),
        click.option("--patience", type=int, help="Early stopping after N evaluations without gain."),
        click.option("--device", help="auto, cpu, cuda, cuda:N."),
        click.option("--jobs", "-j", type=int, help="Train independent runs (seeds, folds, variants) in N worker "
                                                    "processes, each with cores/N threads (default 1)."),
        click.option("--devices", callback=comma_separated(int, "0,1"),
                     help="CUDA devices of the --jobs workers, e.g. 0,1 (one each; default --jobs: one per device); "
                          "with --nproc, of the processes (one each)."),
        click.option("--protocol", help="Graph tasks: cv (Errica et al.), official (OGB) or gin (optimistic)."),
        click.option("--folds", type=int, help="Cross-validation folds (default 10)."),
        click.option("--repeats", type=int, help="Cross-validation repeats (default 1)."),
        click.option("--sparsity", type=float, help="Target sparsity of the weight matrices, e.g. 0.9."),
        click.option("--sparsifier", help="random, erk, magnitude, gmp, acdc, rigl."),
        click.option("--sync-bn/--no-sync-bn", default=None,
                     help="Under torchrun: BatchNorm statistics over all ranks (default) or per rank."),
        click.option("--quiet", "-q", is_flag=True, default=None, help="No progress bars."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_file_keys(config_path: Optional[str]) -> Set[str]:
    """The keys a YAML config sets (errors are left to ``load_config``, which reports them)."""
    if not config_path:
        return set()
    try:
        import yaml

        values = yaml.safe_load(Path(config_path).read_text())
    except Exception:  # noqa: BLE001 - load_config raises the one-line error
        return set()
    return set(values) if isinstance(values, dict) else set()


def config_from_cli(config_path: Optional[str], nproc: Optional[int] = None, **flags: Any
                    ) -> "ExperimentConfig":  # noqa: F821
    """The settings of a command, from lowest to highest priority: the defaults, the dataset's
    recipe (its family's, see :mod:`pyg_ham.datasets.recipes`), the ``--config`` file, the flags
    that were given. Says on stderr which recipe was used. ``--devices`` sets ``--jobs`` (one
    worker per device) in one process; in several (:obj:`nproc`, or under ``torchrun``) it gives
    each process of this machine its device instead."""
    from pyg_ham.train.config import ExperimentConfig, load_config

    cfg = load_config(config_path) if config_path else ExperimentConfig()
    options = flags.pop("dataset_options", None) or {}
    norm = flags.pop("norm", None)
    dataset = flags.pop("dataset", None) or cfg.dataset
    one_process = (nproc or 1) == 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1
    if flags.get("devices") and flags.get("jobs") is None and one_process:
        flags["jobs"] = len(flags["devices"])  # one worker per device
    cfg = ExperimentConfig.from_recipe(dataset, base=cfg, keep=config_file_keys(config_path), **flags)
    if cfg.recipe is not None and os.environ.get("RANK", "0") == "0":  # once under torchrun
        from pyg_ham.datasets import get_recipe

        click.echo(f"recipe: {cfg.recipe} for {cfg.dataset} ({get_recipe(cfg.recipe)['description']}); "
                   f"--config and flags override it", err=True)
    if norm is not None:
        cfg.norm = None if norm.lower() == "none" else norm
    if options:
        cfg.dataset_options = {**cfg.dataset_options, **options}
    return cfg


@click.command()
@experiment_options
@click.option("--out", type=click.Path(dir_okay=False), help="Write the result JSON here (after every run).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False),
              help="Per-epoch checkpoints (default: the --out path with .ckpt for .json, e.g. r.ckpt/).")
@click.option("--resume", is_flag=True, default=None, help="Skip finished runs and continue an interrupted one.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the finished runs already in --out.")
@click.option("--nproc", type=int, help="Train in N processes on this machine (torchrun; DDP, gloo on CPU).")
def train(config_path: Optional[str], nproc: Optional[int] = None, **flags: Any) -> None:
    """Train a GNN with (or without) HAM and report test at best validation, mean ± std over runs.

    \b
    Examples:
      pyg-ham train                                   # synthetic graph, offline
      pyg-ham train --dataset Cora --root ../shared/data --runs 10
      pyg-ham train --config configs/ogbn-arxiv-sage.yaml --no-ham
      pyg-ham train --dataset MUTAG --root ../shared/data   # 10-fold CV
      pyg-ham train --batch-size 512 --nproc 2        # 2 processes (DDP), as torchrun -m pyg_ham
    """
    cfg = config_from_cli(config_path, nproc=nproc, **flags)
    if nproc is not None and nproc != 1:
        from pyg_ham.train import distributed, kinds  # noqa: F401 - kinds: check_config asks their rules

        if distributed.launched():
            raise click.UsageError("--nproc starts torchrun itself; under torchrun leave it out")
        cfg.validate()  # bad input is refused once, before any process starts
        distributed.check_config(cfg, nproc)
        sys.exit(distributed.launch(nproc, _without_nproc(sys.argv[1:]), kept=lambda: interrupted_note(cfg)))
    run_and_report(cfg)


def _without_nproc(argv: List[str]) -> List[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def interrupted_note(cfg: "ExperimentConfig") -> str:  # noqa: F821
    """What an interrupted run kept, naming only files that exist."""
    from pyg_ham.train.runner import checkpoint_dir

    kept = []
    if cfg.out and Path(cfg.out).exists():
        kept.append(f"finished runs are in {cfg.out}")
    ckpt = checkpoint_dir(cfg)
    if ckpt is not None and ckpt.is_dir() and any(ckpt.iterdir()):
        kept.append(f"the interrupted run's last epoch is in {ckpt}/")
    if not kept:
        return "nothing was saved" + ("" if cfg.out else " (no --out)")
    return "; ".join(kept) + "; rerun with --resume to continue"


def run_and_report(cfg: "ExperimentConfig") -> None:  # noqa: F821
    """Run the experiment, print its summary line; on Ctrl-C say what was kept (exit 130)."""
    from pyg_ham.train.runner import run_experiment, summary_line

    try:
        doc = run_experiment(cfg, log=lambda msg: click.echo(msg, err=True))
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {interrupted_note(cfg)}", err=True)
        sys.exit(130)
    from pyg_ham.train.distributed import is_main

    if not is_main():  # under torchrun rank 0 reports
        return
    if cfg.out:
        click.echo(f"wrote {cfg.out}", err=True)
    click.echo(summary_line(doc))


@click.command()
@click.option("--root", help="Data root to check (default: $PYG_HAM_DATA or ~/.cache/pyg_ham/data).")
def datasets(root: Optional[str]) -> None:
    """List the known datasets: task, metric, whether each is present under ROOT, default recipe."""
    from pyg_ham.datasets import data_root, list_datasets

    rows = list_datasets(root)
    click.echo(f"data root: {data_root(root)}")
    width = max(len(r["name"]) for r in rows)
    kind = max(len(r["task"]) for r in rows)
    for r in rows:
        mark = "present" if r["present"] else "-"
        click.echo(f"{r['name']:<{width}}  {r['task']:<{kind}}  {r['metric']:<6}  {mark:<7}  {r['recipe'] or ''}")
