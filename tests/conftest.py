"""Shared pytest configuration: offline data, the ``--runslow`` flag, no network.

The offline datasets are read from ``$PYG_HAM_TEST_DATA`` (default: ``../shared/data`` beside
the checkout); tests that need them are skipped when the folder is absent, and the run ends
with one line saying how many were.
"""
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(os.environ.get("PYG_HAM_TEST_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data").absolute()
_NO_DATA = "offline data not found at"

# The tests train small models: one intra-op thread is as fast on 2 cores when the machine is
# idle, and 10-100x faster when anything else runs beside them.
torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow end-to-end tests")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slow end-to-end test (run with --runslow)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line: how many tests were skipped because the offline data is missing."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if _NO_DATA in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped: {_NO_DATA} {SHARED_DATA} "
                                    f"(set PYG_HAM_TEST_DATA to the folder that holds it)")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that tries to open a network connection (local Unix sockets, which
    DataLoader workers use, stay allowed)."""
    connect = socket.socket.connect

    def guarded_connect(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError("network access is disabled in tests")
        return connect(self, address, *args, **kwargs)

    def no_connection(*args, **kwargs):
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", no_connection)


@pytest.fixture(autouse=True, scope="module")
def _room_for_compiled_kernels():
    """Each test module starts with room in the compiled-kernel cache of HAM's step.

    A process compiles at most ``FUSED_CACHE_SIZE`` signatures; further tensors take the separate
    foreach step (by design, tested in tests/optim). The suite compiles far more than that across
    its modules, so a module that compares two runs bit for bit (``--jobs 2`` against ``--jobs 1``)
    would otherwise compare a worker's one pass with the in-process fallback."""
    from pyg_ham.optim import functional

    if len(functional._kernels.kernels) >= functional.FUSED_CACHE_SIZE // 2:
        functional._kernels = functional._FusedKernels()
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only offline dataset folder ``../shared/data`` (skips if absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"{_NO_DATA} {SHARED_DATA} (set PYG_HAM_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture
def staged(tmp_path, shared_data):
    """Copy ``shared/data/<rel...>`` to a writable temp dir and return the temp root."""

    def _stage(*rel: str) -> Path:
        dst = tmp_path.joinpath("data", *rel)
        shutil.copytree(shared_data.joinpath(*rel), dst, copy_function=shutil.copyfile)
        for p in [dst, *dst.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        return tmp_path / "data"

    return _stage
