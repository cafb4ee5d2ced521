"""Without the ``pyg-ham[llm]`` extra: importing works, using the adapter says what to install.

These tests run whether or not ``transformers``/``peft`` are installed.
"""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.errors import MissingDependencyError


def test_missing_extra_gives_one_line(monkeypatch, tmp_path):
    from pyg_ham.llm import trainer as trainer_module

    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setattr(trainer_module, "_TRAINER_CLASS", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'pyg-ham\[llm\]'"):
        trainer_module.get_ham_trainer_class()
    data = tmp_path / "corpus.txt"
    data.write_text("some text\n")
    result = CliRunner().invoke(main, ["llm", "--model", str(tmp_path), "--data", str(data)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    line, = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert "pip install 'pyg-ham[llm]'" in line


def test_import_without_the_extra():
    code = ("import sys; sys.modules['transformers'] = None; sys.modules['peft'] = None\n"
            "import pyg_ham.llm, pyg_ham.llm.cli\n"
            "from pyg_ham.llm import HAMArguments, llm_ham_selector, build_llm_optimizer\n"
            "try:\n    pyg_ham.llm.HAMTrainer\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MissingDependencyError") and "pyg-ham[llm]" in out.stdout
