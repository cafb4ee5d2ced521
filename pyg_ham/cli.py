"""The ``pyg-ham`` command line: parse, build the config, call the library.

Sub-commands are imported lazily (``pyg-ham --help`` does not import torch). A user-facing
error (:class:`~pyg_ham.errors.PygHamError`) prints one line and exits with status 2.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Dict, List, Optional

import click

from pyg_ham import __version__

#: command name -> "module:attribute" of its click command
COMMANDS: Dict[str, str] = {
    "train": "pyg_ham.train.cli:train",
    "datasets": "pyg_ham.train.cli:datasets",
    "compare": "pyg_ham.compare.cli:compare",
    "report": "pyg_ham.compare.cli:report",
    "sweep": "pyg_ham.compare.cli:sweep",
    "vision": "pyg_ham.vision.cli:vision",
    "llm": "pyg_ham.llm.cli:llm",
    "demo": "pyg_ham.cli:demo",
}

_HELP = {
    "train": "Train a GNN (node or graph task) with or without HAM.",
    "datasets": "List the known datasets and whether each is present.",
    "compare": "Paired comparison of optimizer variants (HAM vs base).",
    "report": "Aggregate result JSON files into one table.",
    "sweep": "Equal-budget grid search on validation data.",
    "vision": "Train an image classifier with HAM.",
    "llm": "Fine-tune a causal language model with HAM (LoRA).",
    "demo": "A short HAM demo on a synthetic least-squares problem.",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name) and exc.name.startswith("pyg_ham"):
                return _unavailable(name, f"module {exc.name} is missing")  # a part not built yet
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, _HELP.get(name, "")) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        from pyg_ham.errors import PygHamError

        try:
            return super().invoke(ctx)
        except PygHamError as exc:
            import os

            where = f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}: " if "WORLD_SIZE" in os.environ else ""
            click.echo(f"Error: {where}{exc}", err=True)
            ctx.exit(2)


def _unavailable(name: str, reason: str) -> click.Command:
    @click.command(name, help=_HELP.get(name, ""), context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: Any) -> None:
        raise click.UsageError(f"'{name}' is not available in this installation ({reason})")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyg-ham")
def main() -> None:
    """pyg-ham: HAM (Hyperbolic Aware Minimization) for PyTorch Geometric."""


@click.command()
@click.option("--steps", default=20000, show_default=True, help="Gradient steps.")
@click.option("--lr", default=1e-3, show_default=True, help="Step size.")
@click.option("--alpha", default=10.0, show_default=True, help="HAM's alpha.")
def demo(steps: int, lr: float, alpha: float) -> None:
    """Underdetermined least squares: HAM-GD finds a sparser solution than GD.

    5 equations, 20 unknowns, a 3-sparse truth: GD and HAM-GD start from the same point and
    both fit the data (the minimum-L1 solution has at most 5 nonzeros); the last line compares
    the L1 norms of their solutions.
    """
    import torch

    from pyg_ham import HAM
    from pyg_ham.errors import ConfigError

    if steps < 1 or not lr > 0 or not alpha >= 0:
        raise ConfigError(f"demo needs --steps >= 1, --lr > 0 and --alpha >= 0, got {steps}, {lr}, {alpha}")
    gen = torch.Generator().manual_seed(0)
    n, d = 5, 20
    Z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    truth = torch.zeros(d, dtype=torch.float64)
    truth[:3] = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    y = Z @ truth
    start = 0.01 * torch.randn(1, d, generator=gen, dtype=torch.float64)  # one start for both
    l1 = {}
    for label, use_ham in (("GD", False), ("HAM-GD", True)):
        x = torch.nn.Parameter(start.clone())
        opt: torch.optim.Optimizer = torch.optim.SGD([x], lr=lr)
        if use_ham:
            opt = HAM(opt, alpha=alpha, beta=0.0)
        for _ in range(steps):
            r = Z @ x.detach()[0] - y
            x.grad = (Z.T @ r / n).view(1, -1)
            opt.step()
        loss = float((Z @ x.detach()[0] - y).pow(2).mean() / 2)
        l1[label] = float(x.detach().abs().sum())
        small = int((x.detach().abs() < 1e-2).sum())
        click.echo(f"{label:7s} loss {loss:.2e}  ||x||_1 {l1[label]:.3f}  {small}/{d} entries below 0.01")
    verdict = "sparser" if l1["HAM-GD"] < l1["GD"] else "not sparser"
    click.echo(f"HAM-GD's solution is {verdict} than GD's from the same start: ||x||_1 {l1['HAM-GD']:.3f} vs "
               f"{l1['GD']:.3f} after {steps} steps")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
