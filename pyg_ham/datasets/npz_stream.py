r"""Reading the arrays of an ``.npz`` archive in chunks, never whole.

:func:`numpy.load` cannot memory-map an ``.npz`` member (the archive is a zip
file, its members possibly deflate-compressed), and loading OGB's
ogbn-papers100M ``raw/data.npz`` whole needs 25.6 GB for its :obj:`edge_index`
alone. :class:`NpyMember` reads a member's ``.npy`` header through
:mod:`zipfile` and then streams its data, stored or compressed alike, a few
rows at a time.

.. code-block:: python

    with NpzReader("raw/data.npz") as npz:
        feat = npz.member("node_feat")          # shape, dtype, no data read yet
        for rows in feat.iter_rows(65536):      # [<=65536, F] arrays, in order
            ...
        for src, dst in npz.member("edge_index").iter_columns(1 << 22):
            ...
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Iterator, List, Tuple, Union

import numpy as np

from pyg_ham.errors import DatasetError

__all__ = ["NpzReader", "NpyMember"]


def _read_header(fp: IO[bytes], where: str) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as exc:
        raise DatasetError(f"{where} is not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise DatasetError(f"{where} holds Python objects; only plain numeric arrays can be streamed")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _read_exact(fp: IO[bytes], size: int, where: str) -> bytes:
    data = fp.read(size)
    if len(data) != size:
        raise DatasetError(f"{where} ends early: expected {size} more bytes, got {len(data)} (truncated file?)")
    return data


class NpyMember:
    r"""One array of an ``.npz`` archive: its :obj:`shape` and :obj:`dtype`
    from the ``.npy`` header, and its data streamed in chunks.

    Args:
        archive (zipfile.ZipFile): The open archive.
        key (str): The array's name (the member ``key + ".npy"``).
        where (str): The archive's path (for messages).
    """

    def __init__(self, archive: zipfile.ZipFile, key: str, where: str):
        self.archive, self.key, self.where = archive, key, f"{where}[{key}]"
        names = archive.namelist()
        self.name = key + ".npy" if key + ".npy" in names else key
        if self.name not in names:
            keys = ", ".join(n[:-4] if n.endswith(".npy") else n for n in names)
            raise DatasetError(f"{where} has no array {key!r} (it holds {keys or 'nothing'})")
        with self._open() as fp:
            self.shape, self.fortran_order, self.dtype = _read_header(fp, self.where)
            self._offset = fp.tell()

    def _open(self) -> IO[bytes]:
        return self.archive.open(self.name)

    @property
    def num_rows(self) -> int:
        return self.shape[0] if self.shape else 1

    def _stream(self, skip_bytes: int = 0) -> IO[bytes]:
        fp = self._open()
        fp.seek(self._offset + skip_bytes)  # a compressed member decompresses what it skips
        return fp

    def _chunks(self, fp: IO[bytes], rows: int, row_shape: Tuple[int, ...], chunk_rows: int) -> Iterator[np.ndarray]:
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * self.dtype.itemsize
        done = 0
        while done < rows:
            n = min(chunk_rows, rows - done)
            buf = _read_exact(fp, n * row_bytes, self.where)
            yield np.frombuffer(buf, dtype=self.dtype).reshape((n, *row_shape))
            done += n

    def iter_rows(self, chunk_rows: int) -> Iterator[np.ndarray]:
        r"""The array's rows in order, :obj:`chunk_rows` at a time (arrays of
        shape :obj:`[<= chunk_rows, *shape[1:]]`; C-ordered members only: a
        Fortran-ordered matrix cannot be read row by row without holding it)."""
        if self.fortran_order and len(self.shape) > 1:
            raise DatasetError(f"{self.where} is stored in Fortran order; rewrite it in C order "
                               f"(np.ascontiguousarray) to stream it row by row")
        with self._stream() as fp:
            yield from self._chunks(fp, self.num_rows, self.shape[1:], max(1, int(chunk_rows)))

    def iter_columns(self, chunk: int) -> Iterator[List[np.ndarray]]:
        r"""The columns of a :obj:`[k, n]` array (*e.g.* :obj:`edge_index`,
        :obj:`k = 2`), :obj:`chunk` columns at a time: lists of :obj:`k` arrays
        of shape :obj:`[<= chunk]`. A C-ordered member is read through
        :obj:`k` streams at once (one per row), a Fortran-ordered one through
        one."""
        if len(self.shape) != 2:
            raise DatasetError(f"{self.where} has shape {self.shape}; expected a [k, n] matrix")
        k, n = self.shape
        chunk = max(1, int(chunk))
        if self.fortran_order:  # stored as the C-ordered [n, k] transpose
            with self._stream() as fp:
                for block in self._chunks(fp, n, (k,), chunk):
                    yield [block[:, i] for i in range(k)]
            return
        streams = [self._stream(i * n * self.dtype.itemsize) for i in range(k)]
        try:
            gens = [self._chunks(fp, n, (), chunk) for fp in streams]
            for parts in zip(*gens):
                yield [p.reshape(-1) for p in parts]
        finally:
            for fp in streams:
                fp.close()

    def read(self) -> np.ndarray:
        r"""The whole array (for the small members: node counts, labels)."""
        with self._stream() as fp:
            size = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
            flat = np.frombuffer(_read_exact(fp, size, self.where), dtype=self.dtype)
        order = "F" if self.fortran_order else "C"
        return flat.reshape(self.shape, order=order)  # type: ignore[call-overload]


class NpzReader:
    r"""An ``.npz`` archive opened for streaming (a context manager).

    Args:
        path (str or Path): The archive.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        try:
            self.archive = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"cannot open {self.path} as an .npz archive ({exc})") from None

    def keys(self) -> List[str]:
        return [n[:-4] if n.endswith(".npy") else n for n in self.archive.namelist()]

    def member(self, key: str) -> NpyMember:
        r"""The array :obj:`key` (header read, data not)."""
        return NpyMember(self.archive, key, str(self.path))

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> "NpzReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
