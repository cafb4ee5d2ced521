"""Result files: atomic JSON writes and the provenance block every result carries."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

__all__ = ["write_json", "read_json", "provenance"]


def write_json(path: Union[str, Path], obj: Any) -> Path:
    """Write :obj:`obj` as JSON atomically (temp file + rename): a crash never leaves half a file.

    The file gets the permissions :func:`open` would give it (``0o666`` less the umask), not
    the private ``0o600`` of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def read_json(path: Union[str, Path]) -> Any:
    with open(path) as f:
        return json.load(f)


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: Union[str, torch.device, None] = None) -> Dict[str, Any]:
    """Versions, git commit, device and machine, date: what a result needs to be rerun."""
    import pyg_ham

    def version(module: str) -> Optional[str]:
        try:
            return __import__(module).__version__
        except Exception:
            return None

    device = torch.device(device) if device is not None else torch.device("cpu")
    info: Dict[str, Any] = {
        "pyg_ham": pyg_ham.__version__,
        "torch": torch.__version__,
        "torch_geometric": version("torch_geometric"),
        "ogb": version("ogb"),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return info
