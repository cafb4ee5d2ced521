"""Finding a dataset folder under a data root and running its loader safely."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from pyg_ham.datasets._compat import guarded_load
from pyg_ham.datasets.paths import has_files, is_writable, mirror, offline, remove_empty_dirs, staging_dir
from pyg_ham.errors import DatasetError

T = TypeVar("T")


def dataset_dir(root: Path, group: str, folder: str) -> Path:
    r"""The folder of a dataset under a data root (``<root>/<group>/<folder>``)."""
    return root / group / folder if folder else root / group


def _writable_tree(where: Path, write_sub: str) -> bool:
    target = where / write_sub if write_sub else where
    if not is_writable(target):
        return False
    if target.is_dir():
        for child in target.iterdir():
            if child.is_dir() and child.name.startswith("processed") and not is_writable(child):
                return False
    return True


def load_folder(
    name: str,
    root: Path,
    group: str,
    folder: str,
    make: Callable[[str], T],
    raw_sub: str = "raw",
    write_sub: str = "",
    download: bool = True,
) -> T:
    r"""Loads a dataset stored as ``<root>/<group>/<folder>`` with a PyG / OGB
    loader.

    If that folder (or the folder the loader writes ``processed/`` into) is
    read-only, it is mirrored into the staging cache and loaded from there.  When
    the raw files are missing and downloading is disabled (:obj:`download=False` or
    ``$PYG_HAM_OFFLINE``) a :class:`DatasetError` is raised right away; otherwise
    the loader tries to download, and a failure becomes a :class:`DatasetError`.

    Args:
        name (str): Dataset name for messages.
        root (Path): The data root.
        group (str): Loader family folder (``"Planetoid"``, ``"ogb"``, ...).
        folder (str): The dataset folder inside :obj:`group` (may be empty).
        make (callable): Builds the loader from the root folder to pass to it
            (``<root or cache>/<group>``).
        raw_sub (str, optional): The raw folder inside the dataset folder.
            (default: :obj:`"raw"`)
        write_sub (str, optional): The folder that receives ``processed/``.
            (default: :obj:`""`)
        download (bool, optional): Whether a download may be attempted.
            (default: :obj:`True`)
    """
    where = dataset_dir(root, group, folder)
    present = has_files(where / raw_sub)
    if _writable_tree(where, write_sub):
        loader_root = root / group
    else:
        loader_root = staging_dir(root) / group
        staged = dataset_dir(staging_dir(root), group, folder)
        if where.is_dir():
            try:
                mirror(where, staged)
            except OSError as exc:
                raise DatasetError(
                    f"{name}: cannot stage the read-only data under {where} into {staged} "
                    f"({exc}); set PYG_HAM_CACHE to a writable folder") from None
        present = present or has_files(staged / raw_sub)
    if not present and (not download or offline()):
        raise DatasetError(
            f"{name}: no data under {where} (expected raw files in {where / raw_sub}) and "
            f"downloading is disabled; download it on a connected machine into that folder "
            f"or pass --root pointing to a data root that has it")
    # the highest folder the loader may create; removed again if a failed load leaves it empty
    created = dataset_dir(loader_root.parent, group, folder)
    while not created.parent.exists() and created.parent != created.parent.parent:
        created = created.parent
    existed = created.exists()
    try:
        with guarded_load(name, where, present):
            return make(str(loader_root))
    except DatasetError:
        if not existed:
            remove_empty_dirs(created)
        raise
