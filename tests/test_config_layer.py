"""The configuration's layer: ``pyg_ham.config`` imports no dataset code, the old import paths
re-export the moved names, and each default is read from its one place."""
import subprocess
import sys

import pytest

import pyg_ham.config as config
from pyg_ham.errors import ConfigError
from pyg_ham.optim import HAM_DEFAULTS


def test_config_imports_no_dataset_and_from_recipe_needs_the_registry():
    code = ("import sys, pyg_ham.config as c\n"
            "above = [m for m in sys.modules if m.startswith(('pyg_ham.datasets', 'pyg_ham.train'))]\n"
            "assert not above, above\n"
            "try:\n    c.ExperimentConfig.from_recipe('Cora')\nexcept c.ConfigError as e:\n    print('refused:', e)\n"
            "import pyg_ham.datasets\n"
            "cfg = c.ExperimentConfig.from_recipe('Cora', lr=0.02)\n"
            "print(cfg.recipe, cfg.hidden, cfg.lr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("refused: ExperimentConfig.from_recipe needs the dataset registry")
    assert lines[1] == "planetoid-gcn 16 0.02"  # configs/planetoid-gcn.yaml: hidden 16


def test_old_paths_re_export_the_moved_names():
    from pyg_ham.train import config as old
    from pyg_ham.train import distributed, engine, jobs, runner, single

    for name in ("ExperimentConfig", "SECTIONS", "SCHEDULERS", "load_config", "resolve_device", "no_clamp_as_none",
                 "check_cuda_devices", "PROTOCOLS", "EVAL_MODES"):
        assert getattr(old, name) is getattr(config, name)
    assert engine.SCHEDULERS is config.SCHEDULERS
    assert runner.train_run is single.train_run and runner.load_task is single.load_task
    assert jobs.death_reason is distributed.death_reason
    assert jobs.death_reason(-9) == "killed by SIGKILL (out of memory, or killed)"


def test_ham_defaults_come_from_optim():
    from pyg_ham.datasets.recipes import RECIPES

    cfg = config.ExperimentConfig()
    assert (cfg.alpha, cfg.beta, cfg.max_exponent) == (200.0, 1e-3, 5.0)  # the authors' defaults
    assert (cfg.alpha, cfg.beta, cfg.max_exponent) == (
        HAM_DEFAULTS["ham_alpha"], HAM_DEFAULTS["ham_beta"], HAM_DEFAULTS["ham_max_exponent"])
    assert RECIPES["planetoid-gcn"]["settings"]["alpha"] == HAM_DEFAULTS["ham_alpha"]
    assert RECIPES["webkb-sage"]["settings"]["alpha"] == 20.0  # a recipe's own choice stays


def test_default_fanout_in_the_message():
    assert config.DEFAULT_FANOUT == 10
    with pytest.raises(ConfigError, match="e.g. --fanout 10,10,10"):
        config.ExperimentConfig(layers=3, batch_size=8, fanout=[5])
