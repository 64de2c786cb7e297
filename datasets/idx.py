"""The idx format of MNIST and Fashion-MNIST: read and write (optionally gzip'd) files.

An idx file is a big-endian header (two zero bytes, a type code, the number of
dimensions, then one 4-byte size per dimension) followed by the values in C
order. MNIST and Fashion-MNIST ship ``*-images-idx3-ubyte.gz`` (N, 28, 28)
and ``*-labels-idx1-ubyte.gz`` (N,), type 0x08 (unsigned byte).
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["MalformedIdxError", "read_idx", "write_idx"]

_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip
_CODES = {v.newbyteorder("="): k for k, v in _TYPES.items()}


class MalformedIdxError(ValueError):
    """A file is not a well-formed idx file (bad magic, truncated data)."""


def _open(path: Path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path: Path | str) -> np.ndarray:
    """The array stored in an idx file (gzip'd or not), in native byte order.

    Raises:
        MalformedIdxError: bad magic number, unknown type code, or fewer values
            than the header announces.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or head[2] not in _TYPES:
                raise MalformedIdxError(f"{path}: not an idx file (magic {head.hex() or 'empty'})")
            ndim = head[3]
            dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            dtype = _TYPES[head[2]]
            count = int(np.prod(dims, dtype=np.int64))
            raw = f.read(count * dtype.itemsize)
    except (OSError, EOFError, struct.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise MalformedIdxError(f"{path}: unreadable idx file: {exc}") from exc
    if len(raw) != count * dtype.itemsize:
        raise MalformedIdxError(
            f"{path}: header says {dims} ({count} values), the file holds "
            f"{len(raw) // dtype.itemsize}")
    return np.frombuffer(raw, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: Path | str, array: np.ndarray) -> Path:
    """Write ``array`` as an idx file, gzip'd when ``path`` ends in ``.gz`` (atomically)."""
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"idx cannot store dtype {arr.dtype}")
    payload = (bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
               + arr.astype(_TYPES[code]).tobytes())  # fmt: skip
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
