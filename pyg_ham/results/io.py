"""Result files: atomic writes (JSON results, checkpoints) and the provenance block every result carries."""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Union

import torch

from pyg_ham.errors import DiskFullError

__all__ = ["write_json", "write_text", "read_json", "provenance", "atomic_write"]

#: The errors of a full disk or quota.
_FULL = (errno.ENOSPC, errno.EDQUOT)


class _Recorder:
    """A file whose failed writes are remembered (``torch.save`` reports them as a ``RuntimeError``)."""

    def __init__(self, f: IO) -> None:
        self._f = f
        self.error: Optional[OSError] = None

    def write(self, data: Any) -> Any:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def atomic_write(path: Union[str, Path], write: Callable[[IO], None], *, binary: bool = False,
                 size: Optional[int] = None, then: str = "then rerun the same command") -> Path:
    r"""Write :obj:`path` atomically: :obj:`write` fills a temporary file beside it, which then
    replaces :obj:`path`; on any error the temporary file is removed, so :obj:`path` keeps its
    previous version and no partial file is left.

    A full disk (or quota), also one that ``torch.save`` reports as a ``RuntimeError``, raises
    :class:`~pyg_ham.errors.DiskFullError` with one line: what was not written, how much to free
    where, and :obj:`then` (how to continue). The file gets the permissions :func:`open` would
    give it (``0o666`` less the umask), not the private ``0o600`` of a temporary file.

    Args:
        path (str or Path): the file to write.
        write (callable): writes the content into the open file object it is given.
        binary (bool): open the file in binary mode. (default: :obj:`False`)
        size (int, optional): the content's size in bytes, if known (for the message).
        then (str): how to continue after a full disk, the message's end.
    """
    path = Path(path)
    tmp: Optional[str] = None
    recorder: Optional[_Recorder] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if binary else "w") as f:
            recorder = _Recorder(f)
            write(recorder)
        os.replace(tmp, path)
    except BaseException as exc:
        written = os.path.getsize(tmp) if tmp is not None and os.path.exists(tmp) else 0
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        error = exc if isinstance(exc, OSError) else (recorder.error if recorder is not None else None)
        if isinstance(error, OSError) and error.errno in _FULL:
            raise _disk_full(path, size, written, then) from exc
        raise
    return path


def _disk_full(path: Path, size: Optional[int], written: int, then: str) -> DiskFullError:
    previous = path.stat().st_size if path.exists() else 0
    need = size or previous
    amount = f"at least {_bytes(need)}" if need else f"more than {_bytes(written)}"
    kept = "its previous version is intact" if path.exists() else "nothing partial was left"
    error = DiskFullError(f"no space left on device: {path} was not written ({kept}); free {amount} in "
                          f"{path.parent} (`df -h {path.parent}` shows what is free), {then}")
    error.errno = errno.ENOSPC
    return error


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = float(n), "B"
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def write_text(path: Union[str, Path], text: str, then: str = "then rerun the same command") -> Path:
    """Write :obj:`text` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text), size=len(text.encode()), then=then)


def write_json(path: Union[str, Path], obj: Any, then: str = "then rerun the same command") -> Path:
    """Write :obj:`obj` as JSON atomically (:func:`atomic_write`): a crash or a full disk never
    leaves half a file; :obj:`then` ends the message of a full disk."""
    return write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n", then=then)


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
    from pyg_ham._version import __version__

    def version(module: str) -> Optional[str]:
        try:
            return __import__(module).__version__
        except Exception:
            return None

    device = torch.device(device) if device is not None else torch.device("cpu")
    info: Dict[str, Any] = {
        "pyg_ham": __version__,
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
