"""Variant strings, their errors, baselines; the bundled reference numbers."""
import pytest

from pyg_ham.compare.leaderboards import load_leaderboards, reference_rows
from pyg_ham.compare.variants import (
    Variant,
    baseline_of,
    default_variants,
    load_variants_file,
    parse_variant,
    parse_variants,
    variant_of_config,
)
from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig


def test_parse_and_apply():
    v = parse_variant("AdamW+HAM:alpha=100,beta=0.01,lr=1e-3,max_exponent=none")
    assert v == Variant("adamw", True, {"alpha": 100.0, "beta": 0.01, "lr": 0.001, "max_exponent": None})
    cfg = v.apply(ExperimentConfig(max_exponent=5.0))
    assert (cfg.optimizer, cfg.ham, cfg.alpha, cfg.beta, cfg.lr, cfg.max_exponent) == ("adamw", True, 100.0, 0.01,
                                                                                      1e-3, None)
    assert isinstance(cfg.alpha, float)
    plain = parse_variant("sgd:lr=0.1,momentum=0.5").apply(ExperimentConfig())
    assert (plain.optimizer, plain.ham, plain.lr, plain.momentum) == ("sgd", False, 0.1, 0.5)
    # the label is canonical and parses back; the slug is a safe file name
    assert parse_variant(v.label) == v
    assert parse_variant("adam:weight_decay=1e-5").overrides == {"weight_decay": 1e-5}
    assert parse_variant("adam+ham:alpha=100,beta=0.01").slug == "adam+ham_alpha=100_beta=0.01"
    assert [x.label for x in default_variants(ExperimentConfig(optimizer="SGD"))] == ["sgd", "sgd+ham"]


def test_inf_and_none_are_one_spelling_of_no_clamp():
    """max_exponent=inf and none both mean the unclamped update: equal configs (so a resumed run
    matches its stored results) and standard JSON (no 'Infinity')."""
    import json
    import math

    assert parse_variant("adam+ham:max_exponent=inf") == parse_variant("adam+ham:max_exponent=none")
    assert ExperimentConfig(max_exponent=math.inf) == ExperimentConfig(max_exponent=None)
    assert "Infinity" not in json.dumps(ExperimentConfig(max_exponent=float("inf")).to_dict())
    assert ExperimentConfig(max_exponent=5).max_exponent == 5


def test_parse_list_spaces_and_duplicates():
    vs = parse_variants(["adamw adamw+ham:alpha=100,beta=0.01", "sgd:lr=0.1", "sgd+ham"])
    assert [v.label for v in vs] == ["adamw", "adamw+ham:alpha=100,beta=0.01", "sgd:lr=0.1", "sgd+ham"]
    with pytest.raises(ConfigError, match="listed twice"):
        parse_variants(["adam", "adam"])


@pytest.mark.parametrize("text, message", [
    ("", "empty variant"),
    ("adamw+foo", "the suffixes are \\+sam and \\+ham"),
    ("nosuchopt", "unknown optimizer 'nosuchopt'; looked in torch.optim"),
    ("adam:lr", "expected key=value"),
    ("adam:zzz=1", "unknown setting 'zzz'; allowed: .*lr"),
    ("adam:seed=3", "seed cannot differ between variants"),
    ("adam:runs=3", "runs cannot differ"),
    ("adam:dataset=Cora", "dataset cannot differ"),
    ("adam:ham=true", "use \\+ham"),
    ("adam:alpha=10", "HAM settings, unused without HAM"),
    ("adam:lr=1,lr=2", "given twice"),
    ("adam:fanout=[1 2]", "single value"),
])
def test_parse_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_variant(text)


def test_invalid_values_named_on_apply():
    with pytest.raises(ConfigError, match="variant 'adam:lr=-1'.*lr must be"):
        parse_variant("adam:lr=-1").apply(ExperimentConfig())
    with pytest.raises(ConfigError, match="scheduler must be one of"):
        parse_variant("adam:scheduler=bogus").apply(ExperimentConfig())


def test_baselines():
    vs = parse_variants(["adamw", "adamw+ham:alpha=100", "sgd:lr=0.1", "sgd", "sgd+ham:lr=0.1", "sgd+ham",
                         "rmsprop+ham"])
    assert baseline_of(vs) == {
        "adamw": None,
        "adamw+ham:alpha=100": "adamw",       # its base optimizer without HAM
        "sgd:lr=0.1": "adamw",                # a non-HAM variant: against the first
        "sgd": "adamw",
        "sgd+ham:lr=0.1": "sgd:lr=0.1",       # same non-HAM settings preferred
        "sgd+ham": "sgd",
        "rmsprop+ham": "adamw",               # no plain rmsprop: against the first
    }


def test_variants_file(tmp_path):
    f = tmp_path / "best.yaml"
    f.write_text("variants:\n- adam:weight_decay=0.001\n- adam+ham:alpha=100,beta=0.001\n")
    assert load_variants_file(f) == ["adam:weight_decay=0.001", "adam+ham:alpha=100,beta=0.001"]
    f.write_text("- adam\n- adam+ham\n")
    assert load_variants_file(f) == ["adam", "adam+ham"]
    f.write_text("variants: 3\n")
    with pytest.raises(ConfigError, match="list of variant strings"):
        load_variants_file(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_variants_file(tmp_path / "missing.yaml")


def test_variant_of_config():
    cfg = ExperimentConfig(optimizer="adamw", ham=True, alpha=100.0, lr=0.001).to_dict()
    assert variant_of_config(cfg) == "adamw+ham:lr=0.001,alpha=100,beta=0.001"
    assert variant_of_config(ExperimentConfig(optimizer="sgd", ham=False).to_dict()) == "sgd"


def test_leaderboards_keep_sources():
    entries = load_leaderboards()
    assert len(entries) > 50
    for e in entries:
        assert e["source"].strip() and ("http" in e["source"]), e["method"]
        assert 0 <= e["test"] <= 1, e
    mutag = reference_rows("MUTAG", "gin")
    assert [(r["method"], r["test"], r["test_std"]) for r in mutag] == [("GIN-0 (Xu et al. 2019)", 0.894, 0.056)]
    assert "1810.00826" in mutag[0]["source"]
    imdb = reference_rows("IMDB-B", "sage")  # paper's short name
    assert [r["test"] for r in imdb] == [0.688]
    arxiv = reference_rows("ogbn-arxiv", "gcn")
    assert {r["test"] for r in arxiv} == {0.7174, 0.736} and all(r["model"] == "gcn" for r in arxiv)
    assert len(reference_rows("ogbn-arxiv", "gcn", all_models=True)) > len(arxiv)
    assert reference_rows("synthetic", "gcn") == []
    # no entry for the model: every entry of the dataset is shown
    assert len(reference_rows("Cora", "sage")) == 2


def test_sam_variants_parse_apply_and_pair():
    from pyg_ham.compare.variants import baseline_of

    v = parse_variant("sgd+sam+ham:rho=0.1")
    assert (v.optimizer, v.sam, v.ham, v.overrides) == ("sgd", True, True, {"rho": 0.1})
    assert parse_variant("sgd+ham+sam:rho=0.1") == v and v.label == "sgd+sam+ham:rho=0.1"
    cfg = v.apply(ExperimentConfig())
    assert cfg.sam and cfg.ham and cfg.rho == 0.1 and cfg.optimizer == "sgd"
    assert not parse_variant("adam").apply(cfg).sam  # a variant's switches replace the config's
    with pytest.raises(ConfigError, match="rho: SAM settings, unused without SAM; write adam\\+sam"):
        parse_variant("adam:rho=0.1")
    with pytest.raises(ConfigError, match="sam cannot differ between variants \\(use \\+sam"):
        parse_variant("adam:sam=true")
    with pytest.raises(ConfigError, match="\\+sam is given twice"):
        parse_variant("adam+sam+sam")
    variants = parse_variants(["adam adam+ham adam+sam adam+sam+ham"])
    assert baseline_of(variants) == {"adam": None, "adam+ham": "adam", "adam+sam": "adam",
                                     "adam+sam+ham": "adam+sam"}
