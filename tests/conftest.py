"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the nbgrader course directory)."""
    return REPO


@pytest.fixture(scope="session")
def course_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding ``cifar-10-batches-py``.

    The offline copy of the real data at ``../shared/data`` when present,
    otherwise a small generated dataset in the official pickle layout.
    """
    if (SHARED_DATA / "cifar-10-batches-py").is_dir():
        return SHARED_DATA
    from coursedata import cifar10

    root = tmp_path_factory.mktemp("data")
    cifar10.write_fixture(root / "cifar-10-batches-py")
    return root


@pytest.fixture
def data_env(course_data_dir: Path) -> dict[str, str]:
    """``os.environ`` with the data directory setting pointing at the test data."""
    env = dict(os.environ)
    env["CVCOURSE_DATA_DIR"] = str(course_data_dir)
    return env
