r"""Figures of a comparison (matplotlib, Agg canvas: no display needed, global backend untouched).

* ``valid_curve.png``: the validation metric vs epoch, mean and ±1 std band per variant.
* ``paired_test.png``: one panel per comparison, each seed/fold a line from its baseline score
  to its variant score (green: better, red: worse); the title holds Δ, its CI and p.
* ``ham_diagnostics.png``: the fraction of near-zero weights and of sign flips per epoch.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pyg_ham.errors import MissingDependencyError
from pyg_ham.results import schema

__all__ = ["write_plots", "plot_validation_curves", "plot_paired_scores", "plot_diagnostics", "require_matplotlib"]


def require_matplotlib() -> None:
    """Raise a one-line error when matplotlib (the ``plots`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib: pip install 'pyg-ham[plots]'") from None


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.0) -> Tuple[Any, List[Any]]:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path


def _per_epoch(doc: Dict[str, Any], key: str) -> Tuple[List[int], List[float], List[float], List[int]]:
    """Epochs, mean, std and number of runs of ``history[key]`` over the runs that have a finite
    value at that epoch (a diverged run stops contributing)."""
    values: Dict[int, List[float]] = {}
    for run in doc.get("runs", []):
        for h in run.get("history", []):
            v = schema.value(h, key)
            if v is not None and math.isfinite(v):
                values.setdefault(int(h["epoch"]), []).append(float(v))
    epochs = sorted(values)
    means, stds, counts = [], [], []
    for e in epochs:
        vs = values[e]
        m = sum(vs) / len(vs)
        means.append(m)
        stds.append(math.sqrt(sum((v - m) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0)
        counts.append(len(vs))
    return epochs, means, stds, counts


def _band(ax: Any, epochs: Sequence[int], means: Sequence[float], stds: Sequence[float], label: str, color: Any,
          floor: Optional[float] = None) -> None:
    from matplotlib.ticker import MaxNLocator

    low = [m - s for m, s in zip(means, stds)]
    if floor is not None:
        low = [max(v, floor) for v in low]
    ax.plot(epochs, means, label=label, color=color, lw=1.6)
    ax.fill_between(epochs, low, [m + s for m, s in zip(means, stds)], color=color, alpha=0.18, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _colors(n: int) -> List[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_validation_curves(comparison: Dict[str, Any], docs: Dict[str, Dict[str, Any]], path: Path) -> Optional[Path]:
    """Validation metric vs epoch: mean and ±1 std band per variant."""
    labels = [v["label"] for v in comparison["variants"] if v["label"] in docs]
    if not labels:
        return None
    fig, (ax,) = _figure()
    for label, color in zip(labels, _colors(len(labels))):
        epochs, means, stds, counts = _per_epoch(docs[label], "valid")
        if not epochs:
            continue
        # While every run trains the curve is the mean over all of them; once some have diverged it
        # is the mean over the survivors only, so that part is dotted and the legend says so.
        total = len(docs[label].get("runs", [])) or counts[0]
        full = next((i for i, c in enumerate(counts) if c < total), len(counts))
        if full < len(counts):
            after = f"after epoch {epochs[full - 1]}" if full else "from the start"
            label = f"{label} (dotted: {min(counts[full:])}/{total} runs left {after})"
            start = max(full - 1, 0)
            ax.plot(epochs[start:], means[start:], color=color, lw=1.2, ls=":", label=None if full else label)
        if full:
            _band(ax, epochs[:full], means[:full], stds[:full], label, color)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {comparison.get('metric', '')}")
    unit = "folds" if comparison.get("cv") else "seeds"
    ax.set_title(f"{comparison.get('dataset')} {comparison.get('model') or ''}: validation "
                 f"(mean ± std over {comparison.get('num_runs')} {unit})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_paired_scores(comparison: Dict[str, Any], path: Path) -> Optional[Path]:
    """One panel per comparison: each seed/fold's test score under the baseline and the variant."""
    comps = [c for c in comparison.get("comparisons", []) if not c.get("error") and c.get("n")]
    if not comps:
        return None
    fig, axes = _figure(len(comps), width=4.2, height=4.4)
    better_up = comparison.get("higher_is_better", True)
    for ax, c in zip(axes, comps):
        for b, v in zip(c["baseline_scores"], c["variant_scores"]):
            good = (v > b) == better_up if v != b else None
            ax.plot([0, 1], [b, v], color="grey" if good is None else ("tab:green" if good else "tab:red"),
                    alpha=0.7, marker="o", ms=3, lw=1)
        mb = sum(c["baseline_scores"]) / len(c["baseline_scores"])
        mv = sum(c["variant_scores"]) / len(c["variant_scores"])
        ax.plot([0, 1], [mb, mv], color="black", lw=2.5, marker="D", label="mean")
        ax.set_xticks([0, 1], [c["baseline"], c["variant"]], fontsize=7)
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel(f"test {comparison.get('metric', '')}")
        ci = "" if c["ci_low"] != c["ci_low"] else f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        p = "" if c["p"] != c["p"] else f", p={c['p']:.3g}"
        ax.set_title(f"Δ={c['mean']:+.4f}{ci}{p}\n{c['verdict']} (n={c['n']})", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_diagnostics(comparison: Dict[str, Any], docs: Dict[str, Dict[str, Any]], path: Path) -> Optional[Path]:
    """Near-zero weight fraction and sign-flip fraction per epoch (mean ± std over runs)."""
    labels = [v["label"] for v in comparison["variants"] if v["label"] in docs]
    if not labels:
        return None
    fig, axes = _figure(2, width=5.0)
    for key, ax, title in (("near_zero", axes[0], "near-zero weights (fraction)"),
                           ("sign_flips", axes[1], "sign flips since the previous epoch (fraction)")):
        for label, color in zip(labels, _colors(len(labels))):
            epochs, means, stds, _ = _per_epoch(docs[label], key)
            if epochs:
                _band(ax, epochs, means, stds, label, color, floor=0.0)
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def write_plots(comparison: Dict[str, Any], docs: Dict[str, Dict[str, Any]], out_dir: Path) -> List[Path]:
    r"""Write the three figures into :obj:`out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    written = [plot_validation_curves(comparison, docs, out_dir / "valid_curve.png"),
               plot_paired_scores(comparison, out_dir / "paired_test.png"),
               plot_diagnostics(comparison, docs, out_dir / "ham_diagnostics.png")]
    return [p for p in written if p is not None]
