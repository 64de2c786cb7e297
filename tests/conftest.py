"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import course_data
import pytest

REPO = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]


#: Gradescope's results.json format (its source is cited inside): every results.json
#: a test leaves in its temporary folders is validated against it.
RESULTS_SCHEMA = REPO / "tests" / "schemas" / "gradescope_results.schema.json"


def gradescope_schema_errors(root: Path) -> list[str]:
    """``file: error`` for every ``results.json`` under ``root`` that breaks Gradescope's format."""
    import json

    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(RESULTS_SCHEMA.read_text()))
    found, stack = [], [root]
    while stack:  # iterative, without following links: tests build very deep or odd trees
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.name == "results.json" and entry.is_file(follow_symlinks=False):
                        found.append(Path(entry.path))
        except OSError:
            continue
    errors = []
    for path in sorted(found):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: not JSON: {exc}")
            continue
        errors += [f"{path}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                   for e in validator.iter_errors(data)]
    return errors


@pytest.fixture(autouse=True)
def _results_json_follow_gradescope_format(request: pytest.FixtureRequest):
    """After each test: the results.json files in its tmp_path follow Gradescope's format."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if isinstance(tmp, Path) and tmp.is_dir():
        errors = gradescope_schema_errors(tmp)
        assert not errors, "results.json breaks Gradescope's format:\n" + "\n".join(errors[:10])


@pytest.fixture(autouse=True, scope="session")
def _session_results_json_follow_gradescope_format(tmp_path_factory: pytest.TempPathFactory):
    """At the end: also those of module- and session-scoped temporary folders."""
    yield
    errors = gradescope_schema_errors(tmp_path_factory.getbasetemp())
    assert not errors, "results.json breaks Gradescope's format:\n" + "\n".join(errors[:10])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the nbgrader course directory)."""
    return REPO


@pytest.fixture(scope="session")
def course_data_dir() -> Path:
    """The data directory graders get in tests (``course_data.data_dir``).

    It may hold no CIFAR-10: the grader then generates its stand-in itself and
    labels the grade with it, as it does on a fresh machine.
    """
    return course_data.data_dir()


@pytest.fixture(scope="session")
def notebook_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory that holds ``cifar-10-batches-py`` (the notebooks load it).

    The tests' data directory when it holds CIFAR-10, otherwise a generated
    stand-in in the official pickle layout.
    """
    if course_data.real_cifar() is not None:
        return course_data.data_dir()
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


def nbgrader_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with this interpreter's bin first on PATH.

    nbgrader runs ``alembic`` from PATH when it creates the gradebook.
    """
    env = dict(base if base is not None else os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class NbgraderCourse:
    """A throwaway nbgrader course directory: ``source/`` and the config, nothing generated."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(REPO / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")

    def nbgrader(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in the course directory (output captured as text)."""
        return subprocess.run(
            [*NBGRADER, *args], cwd=self.root, capture_output=True, text=True, timeout=timeout,
            env=nbgrader_env(env), check=check,
        )

    def generate(self, assignment: str) -> subprocess.CompletedProcess:
        """``python -m coursegen.release ASSIGNMENT`` (nbgrader, staged): release/ and the gradebook."""
        return subprocess.run(
            [sys.executable, "-m", "coursegen.release", assignment, "--root", str(self.root)],
            cwd=self.root, capture_output=True, text=True, timeout=300, env=nbgrader_env(), check=False,
        )

    def submit(self, assignment: str, student: str) -> Path:
        """Submit the generated release of ``assignment`` as ``student``'s, writable.

        Returns the submission folder ``submitted/<student>/<assignment>``. No
        gradebook step is needed: generation registers the assignment and
        autograde the student (``Autograde.create_student``).
        """
        submitted = self.root / "submitted" / student / assignment
        shutil.copytree(self.root / "release" / assignment, submitted)
        for path in [submitted, *submitted.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return submitted


@pytest.fixture
def nbgrader_course(tmp_path: Path) -> NbgraderCourse:
    """A fresh :class:`NbgraderCourse` in the test's temporary directory."""
    return NbgraderCourse(tmp_path)


#: Test files whose tests are scheduled per assignment (their first parameter)
#: rather than per file: each assignment's end-to-end grading on its own worker.
SPLIT_BY_ASSIGNMENT = ("tests/test_grading.py",)
_FIRST_PARAM = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)[-\]]")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent under -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile`` (``make test``), except that SPLIT_BY_ASSIGNMENT files split by assignment.

    A file's tests run on one worker, so its module-scoped fixtures are built
    once; tests/test_grading.py parametrizes every test by assignment first, so
    the assignments grade on different workers, each building its reference
    once. Other ``--dist`` modes are left to pytest-xdist.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileOrAssignment(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            m = _FIRST_PARAM.search(nodeid) if file in SPLIT_BY_ASSIGNMENT else None
            return f"{file}::{m.group(1)}" if m else file

    return FileOrAssignment(config, log)
