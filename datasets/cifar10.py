"""CIFAR-10 in the official Python layout: find, download, load, prepare, fixtures.

The official archive (``cifar-10-python.tar.gz``) unpacks to a folder
``cifar-10-batches-py`` holding ``data_batch_1`` .. ``data_batch_5``,
``test_batch`` and ``batches.meta``. Each batch is a Python 2 pickle of a dict
with ``batch_label`` (str), ``labels`` (list of int), ``data`` ((N, 3072) uint8,
each row one image as 1024 red, 1024 green, 1024 blue values in row-major
order) and ``filenames`` (list of str).

Batches are read with a restricted unpickler that can only rebuild numpy
arrays and dtypes; any other global in the file is refused before it runs.

Please cite Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
Images", when you use the data.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import re
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import DataNotFound
from . import data_dir as _default_data_dir
from .download import extract_tar, fetch

__all__ = [
    "ARCHIVE_MD5",
    "ARCHIVE_NAME",
    "ARCHIVE_SHA256",
    "ARCHIVE_SIZE",
    "CLASSES",
    "FOLDER",
    "URL",
    "MalformedBatchError",
    "UnsafePickleError",
    "download",
    "find",
    "load",
    "load_batch",
    "load_meta",
    "prepare",
    "write_fixture",
]

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_SIZE = 170_498_071
# sha256 of the official archive as pinned by Keras' ``cifar10.load_data``
# (``file_hash``) and recorded by several independent projects next to the md5
# published on the CIFAR page; the md5 is kept for reference.
ARCHIVE_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
IMAGE_SHAPE = (32, 32, 3)
ROW_SIZE = 3072

_BATCH_RE = re.compile(r"^data_batch_(\d+)$")


class UnsafePickleError(pickle.UnpicklingError):
    """A batch file asked to load a global that a CIFAR batch never needs."""


class MalformedBatchError(ValueError):
    """A batch file is not a valid CIFAR-10 batch (bad pickle, keys, shapes or dtypes)."""


# ----------------------------------------------------------------------------- locate


def _resolve_dir(data_dir: Path | str | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else _default_data_dir()


def _looks_like_batches(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / TEST_BATCH).is_file()
        and any(_BATCH_RE.match(p.name) and p.is_file() for p in path.iterdir())
    )


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH, META))


def find(data_dir: Path | None = None) -> Path:
    """Return the ``cifar-10-batches-py`` directory.

    Looks in ``data_dir`` (default: :func:`coursedata.data_dir`) for a folder
    ``cifar-10-batches-py``; ``data_dir`` may also be that folder itself. A
    folder counts when it holds ``test_batch`` and at least one ``data_batch_*``.

    Raises:
        DataNotFound: nothing usable was found (the message says where it looked,
            which variable to set and how to download).
    """
    root = _resolve_dir(data_dir)
    for candidate in (root / FOLDER, root):
        if _looks_like_batches(candidate):
            return candidate
    return _raise_not_found(root)


def _raise_not_found(root: Path) -> Path:
    detail = "" if root.is_dir() else "the directory does not exist"
    raise DataNotFound("cifar10", [root / FOLDER, root], f"{FOLDER}/", detail)


def download(data_dir: Path | None = None, progress: bool = True) -> Path:
    """Download and extract the official CIFAR-10 archive; return the batches dir.

    A complete ``cifar-10-batches-py`` already in the data directory is returned
    at once. Otherwise the archive is fetched (sha256- and size-verified, cached
    as ``<data_dir>/cifar-10-python.tar.gz``) and extracted safely and atomically.
    """
    root = _resolve_dir(data_dir)
    if root.name == FOLDER and _is_complete(root):
        return root
    if _is_complete(root / FOLDER):
        return root / FOLDER
    archive = fetch(URL, root / ARCHIVE_NAME, ARCHIVE_SHA256, size=ARCHIVE_SIZE, progress=progress)
    extract_tar(archive, root)
    folder = root / FOLDER
    if not _is_complete(folder):
        raise MalformedBatchError(
            f"{archive} did not contain a complete {FOLDER}/ (expected "
            f"{', '.join((*TRAIN_BATCHES, TEST_BATCH, META))})"
        )
    return folder


# ----------------------------------------------------------------------------- unpickle


def _numpy_reconstruct() -> Any:
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy's multiarray._reconstruct is not available")  # pragma: no cover


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {}


def _allowed_globals() -> dict[tuple[str, str], Any]:
    if not _ALLOWED_GLOBALS:
        reconstruct = _numpy_reconstruct()
        _ALLOWED_GLOBALS.update({
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        })  # fmt: skip
    return _ALLOWED_GLOBALS


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals needed to rebuild an ndarray."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch only contains "
                "numpy arrays, lists, ints and strings (allowed globals: "
                + ", ".join(sorted(f"{m}.{n}" for m, n in _allowed_globals()))
                + ")"
            ) from None


def _unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error, MemoryError) as exc:  # fmt: skip
        raise MalformedBatchError(f"{path}: not a valid CIFAR-10 pickle: {exc!r}") from exc


def _text_keys(obj: dict) -> dict:
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def load_batch(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file.

    Returns:
        ``(X, y)``: ``X`` uint8 of shape (N, 32, 32, 3) (height, width, RGB),
        ``y`` int64 of shape (N,) with values in 0..9.

    Raises:
        UnsafePickleError: the file asks for a global other than numpy's array
            reconstruction helpers (nothing from the file is executed).
        MalformedBatchError: the file is not a well-formed batch.
    """
    path = Path(path)
    obj = _unpickle(path)
    if not isinstance(obj, dict):
        raise MalformedBatchError(f"{path}: expected a dict, found {type(obj).__name__}")
    batch = _text_keys(obj)
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise MalformedBatchError(
            f"{path}: missing key(s) {missing}; found {sorted(map(str, batch))}"
        )
    data = batch["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != ROW_SIZE)
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise MalformedBatchError(f"{path}: 'data' must be a uint8 array (N, 3072), found {desc}")
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError) as exc:  # pragma: no cover - ragged input
        raise MalformedBatchError(f"{path}: 'labels' is not a list of ints: {exc}") from exc
    if (
        labels.ndim != 1
        or labels.shape[0] != data.shape[0]
        or (labels.size and labels.dtype.kind not in "iu")
    ):
        raise MalformedBatchError(
            f"{path}: 'labels' must be {data.shape[0]} ints, found {labels.dtype} of shape "
            f"{labels.shape}"
        )
    y = labels.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= len(CLASSES)):
        raise MalformedBatchError(
            f"{path}: labels must be in 0..{len(CLASSES) - 1}, found {y.min()}..{y.max()}"
        )
    X = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return X, y


def _train_batches(root: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _BATCH_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def load(root: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load every training batch present (``data_batch_1`` .. in order) and the test batch.

    Args:
        root: the ``cifar-10-batches-py`` directory (see :func:`find`).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: images float64 (N, 32, 32, 3) with
        values 0..255, labels int64 (N,).
    """
    root = Path(root)
    batches = _train_batches(root) if root.is_dir() else []
    if not batches or not (root / TEST_BATCH).is_file():
        _raise_not_found(root)
    xs, ys = zip(*(load_batch(p) for p in batches), strict=True)
    X_train = np.concatenate(xs).astype(np.float64)
    y_train = np.concatenate(ys)
    X_test, y_test = load_batch(root / TEST_BATCH)
    return X_train, y_train, X_test.astype(np.float64), y_test


def load_meta(root: Path | str) -> list[str]:
    """Class names from ``batches.meta`` (``label_names``), in label order."""
    path = Path(root) / META
    if not path.is_file():
        raise DataNotFound("cifar10", Path(root), META)
    meta = _unpickle(path)
    if not isinstance(meta, dict) or "label_names" not in _text_keys(meta):
        raise MalformedBatchError(f"{path}: expected a dict with 'label_names'")
    names = _text_keys(meta)["label_names"]
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


# ----------------------------------------------------------------------------- prepare


def _clip_train_val(num_training: int, num_validation: int, n_avail: int) -> tuple[int, int]:
    """Sizes of the training and validation splits that fit in ``n_avail`` rows."""
    if num_training + num_validation <= n_avail:
        return num_training, num_validation
    if num_validation <= n_avail // 2:
        return n_avail - num_validation, num_validation
    n_val = round(n_avail * num_validation / (num_training + num_validation))
    n_val = max(n_val, 1 if num_validation and n_avail else 0)
    return n_avail - n_val, n_val


def prepare(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    channels_first: bool = False,
    flatten: bool = False,
    data_dir: Path | None = None,
) -> dict[str, np.ndarray]:
    """Load CIFAR-10 and split/preprocess it the CS231n way.

    The training split is the first ``num_training`` rows of the training
    batches, the validation split the ``num_validation`` rows right after them,
    the test split the first ``num_test`` rows of the test batch. When the data
    holds fewer images (e.g. a subset), the sizes are clipped and a warning names
    the clipped sizes: the validation split keeps its size while that leaves at
    least as many training rows (training gets the rest), otherwise both are
    scaled in proportion to the requested sizes. The test split is clipped to
    the test batch.

    Args:
        subtract_mean: subtract the mean image of the training split from all splits.
        channels_first: return images as (N, 3, 32, 32) instead of (N, 32, 32, 3).
        flatten: return rows of 3072 values (in the order of the image layout chosen).
        data_dir: where to look (default: :func:`coursedata.data_dir`).

    Returns:
        dict with ``X_train, y_train, X_val, y_val, X_test, y_test``; images float64,
        labels int64.
    """
    for name, value in (("num_training", num_training), ("num_validation", num_validation),
                        ("num_test", num_test)):  # fmt: skip
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    root = find(data_dir)
    X_train_all, y_train_all, X_test_all, y_test_all = load(root)
    n_avail, n_test_avail = len(X_train_all), len(X_test_all)
    n_train, n_val = _clip_train_val(num_training, num_validation, n_avail)
    n_test = min(num_test, n_test_avail)
    clipped = [
        f"{name} {asked} -> {got}"
        for name, asked, got in (("num_training", num_training, n_train),
                                 ("num_validation", num_validation, n_val),
                                 ("num_test", num_test, n_test))
        if got != asked
    ]  # fmt: skip
    if clipped:
        warnings.warn(
            f"CIFAR-10 at {root} holds {n_avail} training and {n_test_avail} test images; "
            "clipped " + ", ".join(clipped),
            stacklevel=2,
        )
    splits = {
        "train": (X_train_all[:n_train], y_train_all[:n_train]),
        "val": (X_train_all[n_train : n_train + n_val], y_train_all[n_train : n_train + n_val]),
        "test": (X_test_all[:n_test], y_test_all[:n_test]),
    }
    out: dict[str, np.ndarray] = {}
    mean_image = splits["train"][0].mean(axis=0) if n_train else None
    for split, (X, y) in splits.items():
        X = X.copy()
        if subtract_mean and mean_image is not None:
            X -= mean_image
        if channels_first:
            X = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
        if flatten:
            X = X.reshape(X.shape[0], -1)
        out[f"X_{split}"] = X
        out[f"y_{split}"] = y.copy()
    return {k: out[k] for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}


# ----------------------------------------------------------------------------- fixture


class _Py2Pickle:
    """Emit protocol-2 pickles the way Python 2's cPickle wrote the official files.

    Strings become ``SHORT_BINSTRING``/``BINSTRING`` (Python 2 ``str``, read back
    as ``str`` with ``encoding='latin1'``) and arrays are rebuilt through
    ``numpy.core.multiarray._reconstruct`` exactly as in the real batches.
    """

    def __init__(self) -> None:
        self.parts: list[bytes] = [b"\x80\x02"]

    def dumps(self, obj: Any) -> bytes:
        self._save(obj)
        self.parts.append(b".")
        return b"".join(self.parts)

    def _save(self, obj: Any) -> None:
        w = self.parts.append
        if obj is None:
            w(b"N")
        elif obj is True or obj is False:
            w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, int | np.integer):
            v = int(obj)
            if 0 <= v < 256:
                w(b"K" + bytes([v]))
            elif 0 <= v < 65536:
                w(b"M" + struct.pack("<H", v))
            else:
                w(b"J" + struct.pack("<i", v))
        elif isinstance(obj, str | bytes):
            raw = obj.encode("latin1") if isinstance(obj, str) else obj
            if len(raw) < 256:
                w(b"U" + bytes([len(raw)]) + raw)
            else:
                w(b"T" + struct.pack("<i", len(raw)) + raw)
        elif isinstance(obj, tuple):
            if not obj:
                w(b")")
                return
            if len(obj) > 3:
                w(b"(")
            for item in obj:
                self._save(item)
            w({1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(obj), b"t"))
        elif isinstance(obj, list):
            w(b"]")
            for start in range(0, len(obj), 1000):
                w(b"(")
                for item in obj[start : start + 1000]:
                    self._save(item)
                w(b"e")
        elif isinstance(obj, dict):
            w(b"}")
            if obj:
                w(b"(")
                for key, value in obj.items():
                    self._save(key)
                    self._save(value)
                w(b"u")
        elif isinstance(obj, np.ndarray):
            self._save_uint8_array(obj)
        else:  # pragma: no cover - internal use only
            raise TypeError(f"cannot write {type(obj).__name__} in the CIFAR layout")

    def _save_uint8_array(self, arr: np.ndarray) -> None:
        if arr.dtype != np.uint8:  # pragma: no cover - internal use only
            raise TypeError("only uint8 arrays are written")
        w = self.parts.append
        w(b"cnumpy.core.multiarray\n_reconstruct\n")
        w(b"cnumpy\nndarray\n")
        w(b"K\x00\x85U\x01b\x87R")  # (ndarray, (0,), 'b') -> REDUCE
        w(b"(K\x01")  # state: (version 1, shape, dtype, fortran, data)
        self._save(tuple(int(s) for s in arr.shape))
        w(b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R")
        w(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        w(b"\x89")
        self._save(np.ascontiguousarray(arr).tobytes())
        w(b"tb")


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _class_prototypes(rng: np.random.Generator) -> np.ndarray:
    """Ten smooth, distinct (32, 32, 3) float prototypes in roughly 0..255."""
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64) / 31.0
    hues = np.linspace(0.0, 1.0, len(CLASSES), endpoint=False) + rng.uniform(0, 0.1)
    protos = np.empty((len(CLASSES), 32, 32, 3))
    for k, hue in enumerate(hues):
        base = 0.5 + 0.35 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))
        angle = np.pi * k / len(CLASSES)
        freq = 1.0 + (k % 4)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        blob = np.exp(-(((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / (0.08 + 0.04 * (k % 3))))
        shade = 0.6 * wave[..., None] * (np.roll(base, k % 3) - 0.5)
        protos[k] = 255.0 * np.clip(
            base[None, None, :] * (0.75 + 0.25 * blob[..., None]) + shade, 0.0, 1.0
        )
    return protos


#: Strength of the class signal against the nuisance variation in generated images.
#: Chosen so that the course's linear classifiers reach about the accuracy they
#: reach on real CIFAR-10 (roughly 35-40% after 300 SGD steps on 2,000 images,
#: real data: about 30%): on easier data a wrong gradient still trains to the
#: reference's accuracy and the accuracy tasks could not tell it apart.
SIGNAL = 0.3


def _make_images(rng: np.random.Generator, protos: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, 3072) CHW uint8 images: a faint class pattern under CIFAR-like nuisance variation.

    Each image is the deviation of its class prototype from the mean prototype,
    randomly shifted, mirrored and scaled (``SIGNAL`` times 0.3..1.7), on top of
    what varies between real photos far more than the class does: overall
    brightness and colour cast, smooth blotches at two scales, pixel noise.
    """
    n = len(labels)
    centered = protos - protos.mean(axis=0, keepdims=True)
    images = np.empty((n, 32, 32, 3))
    for i, label in enumerate(labels):
        dy, dx = rng.integers(-4, 5, size=2)
        pattern = np.roll(centered[label], (int(dy), int(dx)), axis=(0, 1))
        if rng.random() < 0.5:
            pattern = pattern[:, ::-1]
        images[i] = pattern * (SIGNAL * rng.uniform(0.3, 1.7))
    cast = 120.0 + rng.normal(0.0, 35.0, size=(n, 1, 1, 1)) + rng.normal(0.0, 15.0, size=(n, 1, 1, 3))
    coarse = rng.normal(0.0, 35.0, size=(n, 4, 4, 3)).repeat(8, axis=1).repeat(8, axis=2)
    fine = rng.normal(0.0, 20.0, size=(n, 8, 8, 3)).repeat(4, axis=1).repeat(4, axis=2)
    images += cast + coarse + fine + rng.normal(0.0, 10.0, size=images.shape)
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return images.transpose(0, 3, 1, 2).reshape(n, ROW_SIZE)


def write_fixture(dest: Path, *, n_per_batch: int = 200, n_test: int = 200, seed: int = 0) -> Path:
    """Write a small, learnable CIFAR-10 look-alike in exactly the official layout.

    ``dest`` is the ``cifar-10-batches-py`` folder to create; when its name is
    something else, the folder is created inside it (so ``dest`` can be used as
    a data directory). Files: ``data_batch_1`` .. ``data_batch_5`` with
    ``n_per_batch`` images each, ``test_batch`` with ``n_test`` images and
    ``batches.meta``; Python 2 style protocol-2 pickles with the same keys and
    value types as the real files. Each class is a faint smooth colour/texture
    pattern under strong per-image variation (see ``_make_images``), about as
    hard for the course's classifiers as real CIFAR-10, so a wrong gradient
    costs accuracy here as it does there. Deterministic for a seed.

    Returns:
        The ``cifar-10-batches-py`` folder.
    """
    if n_per_batch < 1 or n_test < 1:
        raise ValueError("n_per_batch and n_test must be at least 1")
    dest = Path(dest)
    folder = dest if dest.name == FOLDER else dest / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    protos = _class_prototypes(rng)
    counter = 0
    batches = [(name, f"training batch {i} of 5", n_per_batch)
               for i, name in enumerate(TRAIN_BATCHES, start=1)]  # fmt: skip
    batches.append((TEST_BATCH, "testing batch 1 of 1", n_test))
    for name, batch_label, n in batches:
        labels = rng.permutation(np.arange(n) % len(CLASSES))
        data = _make_images(rng, protos, labels)
        filenames = []
        for label in labels:
            counter += 1
            filenames.append(f"{CLASSES[label]}_s_{counter:06d}.png")
        batch = {
            "batch_label": batch_label,
            "labels": [int(v) for v in labels],
            "data": data,
            "filenames": filenames,
        }
        _write_atomic(folder / name, _Py2Pickle().dumps(batch))
    meta = {"num_cases_per_batch": n_per_batch, "label_names": list(CLASSES), "num_vis": ROW_SIZE}
    _write_atomic(folder / META, _Py2Pickle().dumps(meta))
    return folder


def _fixture_defaults() -> dict[str, Any]:
    """Keyword defaults of :func:`write_fixture` (used by the command line)."""
    params = inspect.signature(write_fixture).parameters
    return {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
