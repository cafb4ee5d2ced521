"""Where datasets live: the data root, the staging cache and read-only roots.

A *data root* is laid out like ``shared/data``: one folder per loader family
(``Planetoid/Cora/raw``, ``TUDataset/MUTAG/raw``, ``ogb/ogbn_arxiv/raw``, ...), so the
PyG / OGB loaders find their raw files and never download them again.

A root that cannot be written to (a read-only mount, or a folder without write bits
- the latter counts as read-only even for ``root``) is only ever *read*: the dataset
folder is mirrored into the staging cache (:func:`cache_root`, same relative layout;
files are symlinked, folders recreated, ``processed*`` folders skipped) and the
loader processes the data there.  The mirror is refreshed and reused on every load,
so processed files stay cached.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

DATA_ENV = "PYG_HAM_DATA"
CACHE_ENV = "PYG_HAM_CACHE"
OFFLINE_ENV = "PYG_HAM_OFFLINE"


def data_root(root: Optional[PathLike] = None) -> Path:
    r"""Returns the data root: :obj:`root` if given, else ``$PYG_HAM_DATA``, else
    ``~/.cache/pyg_ham/data``.

    Args:
        root (str or Path, optional): An explicit data root. (default: :obj:`None`)
    """
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or Path.home() / ".cache" / "pyg_ham" / "data"
    return Path(root).expanduser().resolve()


def cache_root() -> Path:
    r"""Returns the staging cache used for read-only data roots: ``$PYG_HAM_CACHE``,
    else ``~/.cache/pyg_ham/staged``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pyg_ham" / "staged"
    return Path(root).expanduser().resolve()


def offline() -> bool:
    r"""Whether ``$PYG_HAM_OFFLINE`` asks never to attempt a download."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def is_writable(path: Path) -> bool:
    r"""Whether the loader may write into :obj:`path` (or, if it does not exist yet,
    create it).  A folder without any write bit counts as read-only even for the
    super-user, so that a ``chmod -w`` data root is respected in containers."""
    path = _nearest_existing(Path(path))
    if not os.access(path, os.W_OK):
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(stat.S_IMODE(mode) & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def has_files(path: Path) -> bool:
    r"""Whether :obj:`path` is a folder holding at least one (non-empty-named) file."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(p.is_file() for p in path.rglob("*"))


def staging_dir(source_root: Path) -> Path:
    r"""The cache folder mirroring the read-only data root :obj:`source_root`
    (``<cache_root>/<8 hex digits of the root's path>``)."""
    digest = hashlib.sha1(str(Path(source_root).resolve()).encode()).hexdigest()[:8]
    return cache_root() / digest


def mirror(src: Path, dst: Path) -> None:
    r"""Mirrors the folder :obj:`src` into :obj:`dst`: folders are created, files
    symlinked (copied where symlinks are unsupported), ``processed*`` folders of
    :obj:`src` are skipped.  Existing entries of :obj:`dst` are kept."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir():
            if entry.name.startswith("processed"):
                continue
            mirror(entry, target)
        elif not target.exists() and not target.is_symlink():
            try:
                target.symlink_to(entry.resolve())
            except FileExistsError:  # created concurrently by another process
                pass
            except OSError:
                shutil.copyfile(entry, target)


def remove_empty_dirs(path: Path) -> None:
    r"""Removes :obj:`path` if it holds no file (only empty folders), e.g. the
    folders a failed download left behind."""
    path = Path(path)
    if path.is_dir() and not has_files(path):
        shutil.rmtree(path, ignore_errors=True)
