"""Every shipped recipe trains with HAM on (issue 29): one fast dataset per family with real data
in ``shared/data`` runs its recipe's HAM arm through ``pyg-ham train`` (the recipe's model and
HAM settings as shipped; only epochs and run count are cut), is not flagged by the instability
rule and learns (its training loss falls and its test score beats a chance level worked out
from the labels). The 30-epoch, 3-seed check of every family is
``benchmarks/recipe_stability.py`` (table: ``results/recipe-stability/README.md``)."""
import json
from pathlib import Path
from typing import Any, Tuple

import pytest

from pyg_ham.datasets import get_info, get_recipe
from pyg_ham.train.stability import document_stability

REPO = Path(__file__).resolve().parents[2]


def case(dataset: str, folder: Tuple[str, ...], flags: str, chance: float, higher: bool = True,
         slow: bool = False) -> Any:
    """One parametrized case (its id: the dataset)."""
    return pytest.param(dataset, folder, flags.split(), chance, higher, id=dataset,
                        marks=[pytest.mark.slow] if slow else [])


#: Per case: dataset, its folder under shared/data, flags cutting only epochs / runs, chance level of its
#: test metric, whether higher is better. Chance: the majority-class share of all labels (counted
#: from the raw files: Cora 818/2708, MUTAG 125/188, Cornell 101/183, Brazil 35/131, reed98
#: 504/865), 0.5 for ROC-AUC, and for RMSE predicting the training targets' mean (ogbg-molfreesolv's
#: scaffold split, from raw/graph-label.csv.gz and split/scaffold/: mean -3.259, test RMSE 4.48).
FAST = [
    case("Cora", ("Planetoid", "Cora"), "--epochs 20 --runs 1", 818 / 2708),
    case("MUTAG", ("TUDataset", "MUTAG"), "--epochs 20 --folds 3", 125 / 188),
    # OGB's 5 x 300 GIN: about 8 s of CPU an epoch even on ogbg-molbace, the smallest classification set
    case("ogbg-molbace", ("ogb", "ogbg_molbace"), "--epochs 2 --runs 1", 0.5, slow=True),
    case("ogbg-molfreesolv", ("ogb", "ogbg_molfreesolv"), "--epochs 10 --runs 1", 4.48, higher=False),
    case("Cornell", ("WebKB", "cornell"), "--epochs 20 --runs 1", 101 / 183),
    case("Minesweeper", ("HeterophilousGraphDataset", "minesweeper"), "--epochs 10 --runs 1", 0.5),
    case("reed98", ("LINKX", "reed98"), "--epochs 20 --runs 1", 504 / 865),
    case("Brazil", ("Airports", "brazil"), "--epochs 20 --runs 1", 35 / 131),
]


@pytest.mark.parametrize("dataset,folder,flags,chance,higher", FAST)
def test_recipe_ham_arm_trains_unflagged(dataset, folder, flags, chance, higher, staged, tmp_path):
    from click.testing import CliRunner

    from pyg_ham.cli import main

    root = staged(*folder)
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["train", "-d", dataset, "--root", str(root), *flags, "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    recipe = get_info(dataset).recipe
    settings = get_recipe(recipe)["settings"]
    cfg = doc["config"]
    assert cfg["recipe"] == recipe and cfg["ham"] is True  # the recipe's HAM arm, as shipped
    assert all(cfg[k] == settings[k] for k in ("alpha", "beta", "lr", "optimizer", "model", "hidden", "layers"))
    st = document_stability(doc)
    assert st["details"] == {}, st["details"]
    for run in doc["runs"]:
        losses = [h["loss"] for h in run["history"]]
        assert losses[-1] < losses[0], losses
    test = doc["summary"]["test_mean"]
    assert (test > chance) if higher else (test < chance), (doc["metric"], test, chance)


def _stability_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("recipe_stability", REPO / "benchmarks" / "recipe_stability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_case_per_family_of_the_stability_check():
    """The cases cover the same recipes as ``benchmarks/recipe_stability.py``'s rows (ogbg-molhiv
    is the classification family's reduced recipe there), one case each."""
    recipes = [get_info(p.values[0]).recipe for p in FAST]
    assert len(set(recipes)) == len(recipes)
    assert set(recipes) == {get_info(d).recipe for _, d, _ in _stability_module().ROWS}


def test_stored_check_flags_no_recipe():
    """Every row of the stored 30-epoch check (``results/recipe-stability``), read again by the
    instability rule as it is now: the recipe's HAM arm, 3 seeds (3 folds for TU), none flagged."""
    module = _stability_module()
    for family, dataset, _ in module.ROWS:
        row = module.row(family, dataset)
        assert row is not None and row["complete"], (family, dataset)
        doc = json.loads((REPO / row["file"]).read_text())
        cfg, expected = doc["config"], module.settings(dataset)
        assert cfg["ham"] is True and cfg.get("recipe", get_info(dataset).recipe) == get_info(dataset).recipe
        keys = ("model", "hidden", "layers", "optimizer", "lr", "alpha", "beta", "batch_size")
        assert {k: cfg[k] for k in keys if k in expected} == {k: expected[k] for k in keys if k in expected}
        epochs = min(30, int(expected["epochs"]))  # the recipe's first 30, or all if fewer
        assert len(doc["runs"]) == 3 and all(len(r["history"]) == epochs for r in doc["runs"]), (family, dataset)
        assert document_stability(doc)["details"] == {}, (family, dataset)
