"""Making PyG / OGB loaders safe to call from a library.

* :func:`import_ogb` imports ``ogb`` without its PyPI version-check thread
  (``ogb/version.py`` starts one whenever the ``outdated`` package is importable) and
  allow-lists PyG's classes for ``torch.load`` (ogb 1.3.6 calls ``torch.load`` without
  ``weights_only=False``, which torch >= 2.6 refuses for PyG objects).
* :func:`guarded_load` turns everything that can go wrong while a loader runs -
  interactive ``input()`` prompts, ``exit()``, failed downloads, broken files - into
  one-line :class:`~pyg_ham.errors.DatasetError` messages.
"""
from __future__ import annotations

import builtins
import importlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pyg_ham.errors import DatasetError

_ALLOW_LISTED = False


def allow_list_pyg() -> None:
    r"""Allow-lists PyG's data classes for ``torch.load(weights_only=True)``."""
    global _ALLOW_LISTED
    if _ALLOW_LISTED:
        return
    import torch
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no allow-list (and loads freely)
        add([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage])
    _ALLOW_LISTED = True


def import_ogb(module: str = "ogb") -> Any:
    r"""Imports an ``ogb`` (sub)module without network access and returns it.

    The first import of ``ogb`` runs with ``outdated`` hidden, so ``ogb.version``
    starts no version-check thread.  Importing ``ogb`` anywhere through this function
    (e.g. ``import_ogb("ogb.graphproppred.mol_encoder")``) is therefore offline-safe.

    Args:
        module (str, optional): The module to import. (default: :obj:`"ogb"`)
    """
    if "ogb" not in sys.modules:
        saved = sys.modules.get("outdated", _MISSING)
        sys.modules["outdated"] = None  # type: ignore[assignment]  # -> ImportError
        try:
            importlib.import_module("ogb")
        finally:
            if saved is _MISSING:
                sys.modules.pop("outdated", None)
            else:
                sys.modules["outdated"] = saved
    allow_list_pyg()
    return importlib.import_module(module)


_MISSING = object()


class _PromptBlocked(RuntimeError):
    def __init__(self, prompt: str) -> None:
        super().__init__(prompt)
        self.prompt = " ".join(str(prompt).split())


def _no_input(prompt: Any = "") -> str:
    raise _PromptBlocked(str(prompt))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


@contextmanager
def guarded_load(name: str, where: Path, present: bool, download_note: str = "") -> Iterator[None]:
    r"""Runs a loader with ``input()`` disabled and converts its failures into
    one-line :class:`DatasetError` messages.

    Args:
        name (str): The dataset name (for messages).
        where (Path): The folder the data was looked for in (for messages).
        present (bool): Whether the raw files were found before loading; if not, a
            failure is reported as "no data and download failed".
        download_note (str, optional): Extra advice appended to the message.
            (default: :obj:`""`)
    """
    saved_input = builtins.input
    builtins.input = _no_input
    try:
        yield
    except DatasetError:
        raise
    except _PromptBlocked as exc:
        raise DatasetError(
            f"{name}: the loader asked interactively ({exc.prompt!r}) for the data under "
            f"{where}; make sure the folder holds the complete release (for OGB: "
            f"RELEASE_v1.txt next to raw/) or delete it so it is downloaded again"
        ) from None
    except (Exception, SystemExit) as exc:  # loader failures of every kind
        if not present:
            raise DatasetError(
                f"{name}: no data under {where} and download failed ({_first_line(exc)}); "
                f"download it on a connected machine into that folder or pass --root "
                f"pointing to a data root that has it{download_note}"
            ) from exc
        raise DatasetError(
            f"{name}: could not load the data under {where} ({_first_line(exc)}); "
            f"check the raw files and delete any stale processed/ folder"
        ) from exc
    finally:
        builtins.input = saved_input
