r"""Leaderboard-style tables of comparisons and result files: markdown, CSV and plain rows."""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Dict, List, Optional, Sequence

from pyg_ham.results.records import format_mean_std

__all__ = ["fmt_pm", "fmt_p", "markdown_table", "csv_text", "comparison_markdown", "comparison_csv_rows",
           "report_rows", "REPORT_COLUMNS"]


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def fmt_pm(mean: Any, std: Any = None, digits: int = 4, runs: Any = None) -> str:
    """``0.7174 ± 0.0029`` (OGB's reporting format), ``0.7174 (1 run)`` for a single run (no
    std), ``-`` when missing; see :func:`~pyg_ham.results.format_mean_std`."""
    return format_mean_std(mean, std, runs if isinstance(runs, int) and not isinstance(runs, bool) else None,
                           digits)


def fmt_p(p: Any) -> str:
    """A p-value: 3 significant digits, ``<1e-4`` below that."""
    p = _num(p)
    if p is None or math.isnan(p):
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.3g}"


def _fmt_signed(x: Any, digits: int = 4) -> str:
    x = _num(x)
    return "-" if x is None or math.isnan(x) else f"{x:+.{digits}f}"


def _fmt_int(x: Any) -> str:
    return f"{int(x):,}" if _num(x) is not None and not math.isnan(float(x)) else "-"


def _flag_counts(entry: Dict[str, Any]) -> str:
    """``"1 diverged, 2 unstable"`` from an entry's ``diverged``/``unstable`` counts ('' if none)."""
    parts = [f"{entry[k]} {k}" for k in ("diverged", "unstable") if entry.get(k)]
    return ", ".join(parts)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (``|`` in cells escaped)."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(rows: Sequence[Dict[str, Any]], columns: Optional[Sequence[str]] = None) -> str:
    """CSV with a header line; missing values are empty, floats at full precision."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _title(comparison: Dict[str, Any]) -> str:
    direction = "higher is better" if comparison.get("higher_is_better", True) else "lower is better"
    unit = "folds" if comparison.get("cv") else "seeds"
    return (f"{comparison.get('dataset')} · {comparison.get('model')} · {comparison.get('metric')} ({direction}) · "
            f"protocol {comparison.get('protocol')} · paired over {comparison.get('num_runs', '?')} {unit}")


def comparison_markdown(comparison: Dict[str, Any]) -> str:
    r"""The comparison as markdown: the leaderboard of variants, the paired differences and the
    published reference rows."""
    out = [f"## {_title(comparison)}", ""]
    rows = []
    for v in comparison["variants"]:
        s = v.get("summary") or {}
        status = v["status"] + (f": {v['error']}" if v.get("error") else "")
        flagged = _flag_counts(v)
        if flagged:
            status += f" ({flagged})"
        rows.append([v["label"], fmt_pm(s.get("test_mean"), s.get("test_std"), runs=s.get("runs")),
                     fmt_pm(s.get("valid_mean"), s.get("valid_std"), runs=s.get("runs")), _fmt_int(s.get("num_params")),
                     s.get("runs", 0), "-" if v.get("time_per_epoch") is None else f"{v['time_per_epoch']:.3g}",
                     status])
    out.append(markdown_table(["variant", "test", "valid", "#params", "runs", "s/epoch", "status"], rows))
    comps = comparison.get("comparisons") or []
    if comps:
        conf = int(round(100 * comps[0].get("confidence", 0.95)))
        out += ["", f"### Paired difference on test (variant − baseline, {conf}% CI)", ""]
        rows = []
        for c in comps:
            if c.get("error"):
                note = c["error"] + (f"; {c['verdict']}" if c.get("verdict") else "")
                rows.append([c["variant"], c["baseline"], "-", "-", "-", "-", "-", 0, note])
                continue
            ci = "-" if c["ci_low"] != c["ci_low"] else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
            notes = [f"**{c['verdict']}**" if c.get("statistical_verdict") else c["verdict"]]
            if c.get("statistical_verdict"):
                notes.append(f"the paired test alone: {c['statistical_verdict']}")
                advice = [a["advice"] for a in (c.get("unstable_runs") or {}).values() if a.get("advice")]
                if advice:
                    notes.append(advice[0])
            if c.get("excluded"):
                notes.append(f"{len(c['excluded'])} non-finite pair(s) left out: {', '.join(c['excluded'])}")
            if c.get("unpaired"):
                notes.append(f"unpaired runs left out: {', '.join(c['unpaired'])}")
            if c.get("note"):
                notes.append(c["note"])
            rows.append([c["variant"], c["baseline"], _fmt_signed(c["mean"]), ci, fmt_p(c["p"]), c["test"],
                         fmt_p(c.get("wilcoxon_p")), c["n"], "; ".join(notes)])
        out.append(markdown_table(["variant", "baseline", "Δ test", "CI", "p", "test", "p (Wilcoxon)", "n", "verdict"],
                                  rows))
        if comparison.get("cv"):
            out += ["", "Folds share training data: the t-test uses the Nadeau & Bengio (2003) corrected variance "
                        "(1/n + n_test/n_train)·s²; no Wilcoxon test for folds."]
    refs = comparison.get("references") or []
    if refs:
        out += ["", "### Published numbers (reference, not rerun here)", ""]
        rows = [[r["method"], fmt_pm(r.get("test"), r.get("test_std")), fmt_pm(r.get("valid"), r.get("valid_std")),
                 _fmt_int(r.get("params")), r.get("protocol", ""),
                 r["source"] + (f" — {r['note']}" if r.get("note") else "")] for r in refs]
        out.append(markdown_table(["method", "test", "valid", "#params", "protocol", "source"], rows))
    return "\n".join(out) + "\n"


CSV_COLUMNS = ["kind", "variant", "baseline", "status", "test_mean", "test_std", "valid_mean", "valid_std",
               "num_params", "runs", "time_per_epoch", "diff_mean", "ci_low", "ci_high", "p", "test",
               "wilcoxon_p", "n_pairs", "verdict", "error", "source", "diverged_runs", "unstable_runs",
               "statistical_verdict"]


def comparison_csv_rows(comparison: Dict[str, Any]) -> List[Dict[str, Any]]:
    r"""One row per variant (with its paired difference against its baseline) and one per
    reference number (``kind`` = ``variant`` or ``reference``)."""
    comps = {c["variant"]: c for c in comparison.get("comparisons") or []}
    rows = []
    for v in comparison["variants"]:
        s = v.get("summary") or {}
        c = comps.get(v["label"], {})
        rows.append({"kind": "variant", "variant": v["label"], "baseline": c.get("baseline"), "status": v["status"],
                     "test_mean": s.get("test_mean"), "test_std": s.get("test_std"), "valid_mean": s.get("valid_mean"),
                     "valid_std": s.get("valid_std"), "num_params": s.get("num_params"), "runs": s.get("runs"),
                     "time_per_epoch": v.get("time_per_epoch"), "diff_mean": c.get("mean"),
                     "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"), "p": c.get("p"), "test": c.get("test"),
                     "wilcoxon_p": c.get("wilcoxon_p"), "n_pairs": c.get("n"), "verdict": c.get("verdict"),
                     "error": v.get("error") or c.get("error"),
                     "diverged_runs": " ".join(v.get("diverged_runs") or []) or None,
                     "unstable_runs": " ".join(v.get("unstable_runs") or []) or None,
                     "statistical_verdict": c.get("statistical_verdict")})
    for r in comparison.get("references") or []:
        rows.append({"kind": "reference", "variant": r["method"], "test_mean": r.get("test"),
                     "test_std": r.get("test_std"), "valid_mean": r.get("valid"), "valid_std": r.get("valid_std"),
                     "num_params": r.get("params"), "source": r["source"]})
    return rows


REPORT_COLUMNS = ["file", "dataset", "model", "variant", "protocol", "metric", "test_mean", "test_std",
                  "valid_mean", "valid_std", "num_params", "runs", "diverged", "unstable", "time_per_epoch",
                  "complete", "advice"]


def report_rows(entries: Sequence[Dict[str, Any]]) -> List[List[str]]:
    """Formatted cells of :data:`REPORT_COLUMNS` rows for markdown (scores as mean ± std)."""
    out = []
    for e in entries:
        out.append([e["file"], e["dataset"], e["model"], e["variant"], e["protocol"], e["metric"],
                    fmt_pm(e["test_mean"], e["test_std"], runs=e["runs"]),
                    fmt_pm(e["valid_mean"], e["valid_std"], runs=e["runs"]),
                    _fmt_int(e.get("num_params")),
                    f"{e['runs']} ({_flag_counts(e)})" if _flag_counts(e) else e["runs"],
                    "-" if e.get("time_per_epoch") is None else f"{e['time_per_epoch']:.3g}",
                    "yes" if e["complete"] else "no"])
    return out
