"""Reading and writing the files that stages exchange.

Every write goes to a temporary file in the destination folder and is renamed
into place, so a crash never leaves a partial file at an output path. Arrays
are stored as ``.npy`` (compact, binary, float32 features) and JSON is written
with sorted keys, so DVC sees the same bytes for the same content.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Raises:
        DataError: The folder is not writable or the disk is full; nothing
            is left at ``path`` but what was there before.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataError(
            f"{path}: cannot write ({reason}); free disk space or make the folder "
            "writable, then rerun `dvc repro`"
        ) from None


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON with sorted keys, atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read a JSON file written by an earlier stage."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro` to rebuild it") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(
            f"{path}: not valid JSON (truncated or corrupted); run `dvc repro -f` "
            "to rebuild it"
        ) from None


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write rows under ``header`` as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_bytes(path, buffer.getvalue().encode("utf-8"))


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save each array as ``folder/<name>.npy``, atomically."""
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        write_bytes(folder / f"{name}.npy", buffer.getvalue())


# the alignment TensorFlow requires of a buffer it takes over without copying
ALIGNMENT = 64


def aligned(array: np.ndarray, dtype: np.typing.DTypeLike = None) -> np.ndarray:
    """``array`` as a C-contiguous array of ``dtype`` whose buffer starts on a
    64-byte boundary: ``array`` itself when it already is one, else a copy.

    TensorFlow can then use the buffer in place (through DLPack) instead of
    copying it, which halves the memory a large training split needs.
    """
    dtype = np.dtype(dtype or array.dtype)
    if (
        array.dtype == dtype
        and array.flags.c_contiguous
        and array.ctypes.data % ALIGNMENT == 0
        and not isinstance(array, np.memmap)
    ):
        return array
    size = array.size * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    copy = raw[start : start + size].view(dtype).reshape(array.shape)
    copy[...] = array
    return copy


def load_arrays(folder: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Load ``folder/<name>.npy`` for each name.

    Raises:
        DataError: A file is missing, truncated or not a NumPy array file.
    """
    arrays = {}
    for name in names:
        path = folder / f"{name}.npy"
        try:
            # mapped, then copied once into memory TensorFlow can share
            arrays[name] = aligned(np.load(path, mmap_mode="r", allow_pickle=False))
        except FileNotFoundError:
            raise DataError(
                f"{path}: not found; run `dvc repro` to rebuild the pipeline's data"
            ) from None
        except (ValueError, OSError, EOFError):
            raise DataError(
                f"{path}: not a readable .npy array (truncated or corrupted); "
                "run `dvc repro -f` to rebuild it"
            ) from None
    return arrays
