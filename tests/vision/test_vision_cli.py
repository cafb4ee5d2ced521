"""``pyg-ham vision`` end to end (and ``pyg-ham train`` on an image dataset)."""
import json

from click.testing import CliRunner

from pyg_ham.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_vision_command_end_to_end(tmp_path):
    out = tmp_path / "digits.json"
    result = invoke("vision", "--epochs", "2", "--quiet", "--out", out)
    assert result.exit_code == 0, result.output
    assert "digits cnn adam+HAM(alpha=200, beta=0.001): test acc" in result.output
    doc = json.loads(out.read_text())
    assert (doc["dataset"], doc["task"], doc["metric"], doc["model"], doc["complete"]) == \
        ("digits", "vision", "acc", "cnn", True)
    cfg = doc["config"]
    assert (cfg["dataset"], cfg["model"], cfg["optimizer"], cfg["lr"], cfg["batch_size"], cfg["hidden"],
            cfg["epochs"], cfg["ham"]) == ("digits", "cnn", "adam", 1e-3, 64, 32, 2, True)
    (run,) = doc["runs"]
    assert run["seed"] == 0 and run["num_params"] == 19562 and len(run["history"]) == 2
    assert {"near_zero", "l1", "sign_flips", "valid", "test"} <= set(run["history"][-1])
    assert 0 <= doc["summary"]["test_mean"] <= 1 and doc["summary"]["runs"] == 1
    assert "provenance" in doc
    assert not (tmp_path / "digits.ckpt").exists()  # checkpoints of finished runs are cleaned up


def test_vision_flags_and_config_file_override_defaults(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text("lr: 0.005\nhidden: 16\nepochs: 1\n")
    out = tmp_path / "mlp.json"
    result = invoke("vision", "-c", config, "--model", "mlp", "--no-ham", "--runs", "2", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    assert "digits mlp adam: test acc" in result.output and "over 2 runs" in result.output
    doc = json.loads(out.read_text())
    cfg = doc["config"]
    assert (cfg["lr"], cfg["hidden"], cfg["epochs"], cfg["model"], cfg["ham"], cfg["batch_size"]) == \
        (0.005, 16, 1, "mlp", False, 64)
    assert [r["seed"] for r in doc["runs"]] == [0, 1]


def test_train_command_on_digits(tmp_path):
    result = invoke("train", "--dataset", "digits", "--model", "mlp", "--epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    assert "digits mlp adam+HAM" in result.output


def test_vision_cli_errors(no_torchvision):
    assert "graph datasets" in one_line_error(invoke("vision", "--dataset", "Cora"))
    assert "choose one of: cnn, mlp" in one_line_error(invoke("vision", "--model", "nope", "--epochs", "1", "-q"))
    assert "valid options" in one_line_error(invoke("vision", "-o", "foo=1"))
    for args in (("--dataset", "cifar10"), ("--model", "resnet18", "--epochs", "1", "-q")):
        line = one_line_error(invoke("vision", *args))
        assert "needs torchvision" in line and "pip install" in line


def test_vision_help():
    result = invoke("vision", "--help")
    assert result.exit_code == 0 and "--dataset digits --model cnn" in result.output.replace("\n", " ")


def test_compare_on_digits_uses_the_vision_defaults(tmp_path):
    """compare/train/sweep on an image dataset fill the settings nobody set with VISION_DEFAULTS."""
    from pyg_ham.train.cli import config_from_cli
    from pyg_ham.vision.trainer import VISION_DEFAULTS

    cfg = config_from_cli(None, dataset="digits", epochs=3)
    assert cfg.epochs == 3  # a flag wins
    assert (cfg.lr, cfg.batch_size, cfg.hidden, cfg.model) == (VISION_DEFAULTS["lr"], VISION_DEFAULTS["batch_size"],
                                                                VISION_DEFAULTS["hidden"], VISION_DEFAULTS["model"])
    graph = config_from_cli(None, dataset="Cora")
    assert (graph.model, graph.hidden, graph.weight_decay, graph.recipe) == ("gcn", 16, 5e-4, "planetoid-gcn")
