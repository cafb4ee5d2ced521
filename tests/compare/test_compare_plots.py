"""The validation-curve figure says when its mean stops covering every run (diverged runs)."""
import pytest

import pyg_ham.compare.plots as plots

pytest.importorskip("matplotlib")


def run(values):
    return {"history": [{"epoch": e + 1, "valid": v} for e, v in enumerate(values)]}


def test_per_epoch_counts_only_finite_values():
    doc = {"runs": [run([0.1, 0.2, 0.3]), run([0.3, float("nan")]), run([0.5, 0.6, 0.9])]}
    epochs, means, stds, counts = plots._per_epoch(doc, "valid")
    assert epochs == [1, 2, 3] and counts == [3, 2, 2]
    assert means == pytest.approx([0.3, 0.4, 0.6])
    assert stds[0] == pytest.approx(0.2)  # sample std of 0.1, 0.3, 0.5


@pytest.mark.parametrize("runs, expected", [
    ([run([0.1, 0.2, 0.3]), run([0.3, 0.4]), run([0.5, 0.6, 0.9])], "adam (dotted: 2/3 runs left after epoch 2)"),
    ([run([0.1, 0.2]), run([])], "adam (dotted: 1/2 runs left from the start)"),
    ([run([0.1, 0.2]), run([0.3, 0.4])], "adam"),
])
def test_validation_curve_legend_names_the_survivors(tmp_path, monkeypatch, runs, expected):
    saved = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.setdefault("fig", fig) and path)
    comparison = {"variants": [{"label": "adam"}], "dataset": "Cora", "metric": "acc", "num_runs": len(runs)}
    plots.plot_validation_curves(comparison, {"adam": {"runs": runs}}, tmp_path / "v.png")
    (ax,) = saved["fig"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [expected]
