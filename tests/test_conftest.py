"""The test suite's data root: ``PYG_HAM_TEST_DATA``, and one line counting the tests skipped without it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

SAMPLE = '''
def test_needs_data(shared_data):
    assert (shared_data / "marker.txt").read_text() == "here"

def test_needs_data_too(staged):
    assert (staged("sub") / "sub" / "marker.txt").exists()

def test_plain():
    pass
'''


def _run(tmp_path, data):
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    shutil.copyfile(CONFTEST, suite / "conftest.py")
    (suite / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "PYG_HAM_TEST_DATA": str(data)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(suite)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout + out.stderr


def test_data_root_from_env_and_skip_count(tmp_path):
    missing = tmp_path / "nowhere"
    code, text = _run(tmp_path, missing)
    assert code == 0, text
    lines = [l for l in text.splitlines() if "test(s) skipped: offline data not found" in l]
    assert lines == [f"2 test(s) skipped: offline data not found at {missing} "
                     f"(set PYG_HAM_TEST_DATA to the folder that holds it)"], text
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "marker.txt").write_text("here")
    (data / "sub" / "marker.txt").write_text("here")
    code, text = _run(tmp_path, data)
    assert code == 0 and "3 passed" in text and "skipped" not in text, text
