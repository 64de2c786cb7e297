"""The data sets the hidden suites use, prepared once per process.

Suites ask for a registered data set by name (``dataset("mnist")``, see
:mod:`coursedata.registry`; CIFAR-10 comes as the CS231n splits of :func:`cifar`).
``grade-all`` grades every submission in a process forked from a warm server
(:mod:`autograder.batch_warm`), which calls :func:`preload` with the data sets
the assignment declares (:func:`declared_datasets`): they then live in memory
shared copy-on-write by every grading process, instead of being read and
preprocessed again for each submission. Outside ``grade-all`` the first call
simply loads and remembers them.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CIFAR_SIZES", "WARM_ENV", "DataUse", "cifar", "dataset", "declared_datasets",
           "preload", "real_data_tasks"]

#: Environment variable through which ``grade-all`` tells its warm fork server which
#: data sets to preload (comma-separated registry names).
WARM_ENV = "CVCOURSE_WARM_DATASETS"
#: Data sets of the assignments that do not declare theirs yet (until each
#: assignment's declaration lists ``datasets``): every suite here uses CIFAR-10.
_UNDECLARED_DEFAULT = ("cifar10",)

CIFAR_SIZES = {"num_training": 4000, "num_validation": 500, "num_test": 500}
_CACHE: dict[str, tuple[dict[str, np.ndarray], str, str]] = {}


def _finish(data: dict[str, np.ndarray], source: str) -> tuple[dict[str, np.ndarray], str, str]:
    out = {}
    h = hashlib.sha256(source.encode())
    for key, value in data.items():
        arr = np.asarray(value)
        arr = arr.astype(np.int64) if key.startswith("y") else arr.astype(np.float64)
        arr.flags.writeable = False  # shared by every test (and, forked, every submission)
        out[key] = arr
        h.update(f"{key}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr.reshape(-1)[::97]).tobytes())
    return out, source, h.hexdigest()


def cifar(data_dir: Path | None, scratch: Path | None = None
          ) -> tuple[dict[str, np.ndarray], str, str]:
    """``(arrays, source, fingerprint)``: CIFAR-10 splits, float64, mean-subtracted, flat.

    From ``data_dir`` (default: coursedata's setting) when it holds CIFAR-10,
    else the registry's stand-in in the official format, written under
    ``scratch``. Real data is remembered for the process; arrays are read-only.
    """
    import coursedata
    from coursedata import cifar10, registry

    key = str(data_dir) if data_dir is not None else ""
    if key in _CACHE:
        return _CACHE[key]
    kwargs = dict(CIFAR_SIZES, subtract_mean=True, flatten=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = cifar10.find(data_dir)
            result = _finish(cifar10.prepare(**kwargs, data_dir=data_dir),
                             f"CIFAR-10 from {found}")
            _CACHE[key] = result
            return result
        except coursedata.DataNotFound:
            located = registry.materialize("cifar10", data_dir, scratch)
            return _finish(cifar10.prepare(**kwargs, data_dir=located.folder), located.source)


def dataset(name: str, data_dir: Path | None, scratch: Path | None = None
            ) -> tuple[Any, str, str]:
    """``(data, source, fingerprint)`` of the registered data set ``name``.

    CIFAR-10 is :func:`cifar`'s splits. Any other data set is loaded by its
    registry loader from ``data_dir`` (default: coursedata's setting) or, when no
    complete copy is there, from a stand-in generated in its official format
    under ``scratch`` (``source`` says which). Remembered for the process.
    """
    if name == "cifar10":
        return cifar(data_dir, scratch)
    from coursedata import registry

    key = f"{name}|{data_dir if data_dir is not None else ''}"
    if key not in _CACHE:
        data, source = registry.load(name, data_dir, scratch)
        _CACHE[key] = (data, source, hashlib.sha256(f"{name}|{source}".encode()).hexdigest())
    return _CACHE[key]


class DataUse:
    """The data sets one grading run used: their sources (for the report) and a
    fingerprint of their contents (part of the key of remembered reference results)."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}  # registry name -> what it was loaded from
        self._fingerprints: dict[str, str] = {}

    def load(self, name: str, data_dir: Path | None, scratch: Path | None) -> Any:
        """:func:`dataset`'s data, its source and fingerprint recorded."""
        loaded, self.sources[name], self._fingerprints[name] = dataset(name, data_dir, scratch)
        return loaded

    @property
    def summary(self) -> str:
        """``"name: source; ..."`` for the report (``"not used"`` when none)."""
        return "; ".join(f"{n}: {s}" for n, s in sorted(self.sources.items())) or "not used"

    @property
    def fingerprint(self) -> str:
        """sha256 over every used data set's fingerprint (``"no data"`` when none)."""
        if not self._fingerprints:
            return "no data"
        joined = "|".join(f"{n}={f}" for n, f in sorted(self._fingerprints.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def declared_datasets(spec: Any) -> tuple[str, ...]:
    """The registry names of the data sets an assignment's declaration lists.

    ``spec`` is the assignment's parsed declaration: its ``datasets`` when it
    has that field, else the default of the assignments that do not declare theirs.
    """
    declared = getattr(spec, "datasets", None)
    return tuple(declared) if declared is not None else _UNDECLARED_DEFAULT


def real_data_tasks(spec: Any) -> dict[str, str]:
    """``{task: data set}`` of the tasks of ``spec`` that need the real data set to be graded.

    Declared per task (``real_data = "cifar10"`` in ``[tasks.<id>]``: a model
    trained on real CIFAR-10 images says nothing about synthetic ones).
    """
    return dict(getattr(spec, "real_data_tasks", None) or {})


def preload(names: tuple[str, ...] | None = None) -> None:
    """Load ``names`` (default: those in ``$CVCOURSE_WARM_DATASETS``) from the default
    data directory now, where it holds them (never raises; missing data sets are
    generated by each grading)."""
    if names is None:
        names = tuple(n for n in os.environ.get(WARM_ENV, "").split(",") if n)
    try:
        from coursedata import registry
    except Exception:  # noqa: BLE001 - never break the fork server
        return
    for name in names:
        try:
            registry.find(name, None)
            dataset(name, None)
        except Exception:  # noqa: BLE001 - no data, or broken data: each grading reports it
            continue
