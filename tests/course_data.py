"""Which course data the project's tests use: the one place that knows about ``../shared``.

``CVCOURSE_DATA_DIR`` when it is set (``make test`` sets it to the offline copy
``../shared/data`` beside the checkout when there is one; point it at an empty
folder to test as on a fresh machine, see ``make test-nodata``), else
``../shared/data`` when present, else the data directory's default. Where that
directory holds no CIFAR-10 the grader generates its CIFAR-format stand-in and
says so in the report.
"""

from __future__ import annotations

import os
from pathlib import Path

import coursedata
from coursedata import DataNotFound, cifar10

REPO = Path(__file__).resolve().parents[1]
OFFLINE_COPY = REPO.parent / "shared" / "data"


def data_dir() -> Path:
    """The data directory the tests grade with (it may hold nothing: generated data)."""
    if os.environ.get(coursedata.ENV_VAR, "").strip():
        return coursedata.data_dir()
    if OFFLINE_COPY.is_dir():
        return OFFLINE_COPY
    return coursedata.data_dir()


def real_cifar() -> Path | None:
    """The ``cifar-10-batches-py`` folder of :func:`data_dir`, or None (generated data)."""
    try:
        return cifar10.find(data_dir())
    except DataNotFound:
        return None
