"""Adding an assignment is adding its folders: tinycv, end to end, from fixture files only.

``tests/fixtures/tinycv`` holds a whole assignment (``source/tinycv/``: a notebook,
a module and a Cython source; ``autograder/suites/tinycv/``: its declaration, with
a registered data set and the compiled source, and its hidden suite) and
``expected.toml``. The test copies the course's generic code (everything but the
assignments, their generated trees and the tests) into a temporary course root,
adds the two folders, and runs the real commands there, with the copied engine
and generation code: the release (``python -m coursegen.release``, nbgrader's
generate_assignment), the executed solutions (``python -m coursegen.solutions``),
grading of the solutions (full points) and of the release stubs (zero, complete
report) with ``python -m autograder grade``, and the Gradescope bundle (``python
-m autograder build``). Nothing generic is edited. See docs/architecture.md,
"Adding an assignment".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import library

REPO = Path(__file__).resolve().parents[1]
NAME = "tinycv"
FIXTURE = REPO / "tests" / "fixtures" / NAME
EXPECTED = tomllib.loads((FIXTURE / "expected.toml").read_text())
SEED = 5
#: Folders of the checkout that are not the course's generic code.
NOT_GENERIC = {".git", ".venv", ".venv-py312", "release", "solutions", "tests", "build",
               ".pytest_cache", ".hypothesis", ".ruff_cache"}
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.c", "build", ".release-staging-*",
                                 "gradebook.db", ".ipynb_checkpoints")

pytestmark = pytest.mark.slow


def _generic_copy(dest: Path) -> None:
    """Copy the checkout's generic code to ``dest``: no assignment, no generated tree, no test."""
    dest.mkdir()
    for entry in sorted(REPO.iterdir()):
        if entry.name in NOT_GENERIC or entry.name.startswith(".release-staging-"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, ignore=SKIPPED, symlinks=True)
        elif entry.is_file():
            shutil.copy2(entry, dest / entry.name)
    for assignment in library.assignment_dirs(dest / "source"):  # every assignment's master copy
        shutil.rmtree(assignment)
    for suite in (dest / "autograder" / "suites").iterdir():  # and its suite
        if suite.is_dir():
            shutil.rmtree(suite)


def _run(root: Path, env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, (f"{' '.join(args)} exited {proc.returncode}:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The temporary course root with tinycv's folders added, and the commands' environment."""
    base = tmp_path_factory.mktemp("newassignment")
    root = base / "course"
    _generic_copy(root)
    for part in ("source", "autograder/suites"):
        shutil.copytree(FIXTURE / part / NAME, root / part / NAME)
    data = base / "data"  # empty: the registry generates MNIST's stand-in, the same everywhere
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"AUTOGRADER_COURSE_ROOT", "PYTHONPATH"}}
    env.update(PYTHONPATH=str(root), CVCOURSE_DATA_DIR=str(data),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return root, env


def test_the_fixture_is_only_the_assignments_own_folders() -> None:
    tops = {p.relative_to(FIXTURE).as_posix() for p in FIXTURE.iterdir()}
    assert tops == {"source", "autograder", "README.md", "expected.toml"}, sorted(tops)
    assert sorted(p.name for p in (FIXTURE / "source").iterdir()) == [NAME]
    assert sorted(p.name for p in (FIXTURE / "autograder").iterdir()) == ["suites"]
    assert sorted(p.name for p in (FIXTURE / "autograder" / "suites").iterdir()) == [NAME]


def test_commands_run_the_copied_generic_code(course: tuple[Path, dict[str, str]]) -> None:
    root, env = course
    proc = _run(root, env, "-c", "import autograder, coursegen, autograder.config as c; "
                "print(autograder.__file__); print(coursegen.__file__); print(c.available_assignments())")
    lines = proc.stdout.splitlines()
    assert all(Path(line).is_relative_to(root) for line in lines[:2]), lines
    assert lines[2] == f"['{NAME}']", f"assignments found from the declarations: {lines[2]}"


@pytest.fixture(scope="module")
def release(course: tuple[Path, dict[str, str]]) -> Path:
    root, env = course
    _run(root, env, "-m", "coursegen.release", NAME, "--root", str(root))
    return root / "release" / NAME


def test_release_is_generated_from_the_folders(release: Path) -> None:
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file())
    assert files == sorted(EXPECTED["release_files"]), f"release/{NAME} holds {files}"
    texts = {rel: (release / rel).read_text() for rel in files}
    for line in EXPECTED["secret_lines"]:
        leaks = [rel for rel, text in texts.items() if line in text]
        assert not leaks, f"solution line {line!r} is in the release: {leaks}"
    for rel, task in EXPECTED["stubs"].items():
        assert f'raise NotImplementedError("{task}:' in texts[rel], f"{rel} has no stub of task {task}"
    nb = nbformat.reads(texts[f"{NAME}.ipynb"], as_version=4)
    assert any("YOUR CODE HERE" in c.source for c in nb.cells), "nbgrader did not stub the solution cell"
    manifest = tomllib.loads(texts["submission.toml"])
    flat = json.dumps(manifest)
    for required in ("cs231n/centroid.py", "cs231n/fastdist.pyx", f"{NAME}.ipynb"):
        assert required in flat, f"submission.toml does not require {required}: {manifest}"


@pytest.fixture(scope="module")
def solutions(course: tuple[Path, dict[str, str]], release: Path) -> Path:
    root, env = course
    _run(root, env, "-m", "coursegen.solutions", NAME, "--root", str(root))
    return root / "solutions" / NAME


def _grade(course: tuple[Path, dict[str, str]], submission: Path, results: Path) -> dict:
    root, env = course
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(submission), "--assignment", NAME,
         "--course-root", str(root), "--results", str(results), "--seed", str(SEED), "-q"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert results.is_file(), f"no results.json (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(results.read_text())


def _scores(results: dict) -> dict[str, float]:
    return {t["name"].split(":", 1)[0]: float(t["score"]) for t in results["tests"]}


def test_solutions_score_full_points(course: tuple[Path, dict[str, str]], solutions: Path,
                                     tmp_path: Path) -> None:
    nb = nbformat.read(solutions / f"{NAME}.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "[[1. 0.]" in outputs, f"the executed solution notebook printed {outputs!r}"
    results = _grade(course, solutions, tmp_path / "results.json")
    expected = EXPECTED["scores"]["reference"]
    assert _scores(results) == expected, f"seed {SEED}: {json.dumps(results['tests'], indent=1)[:4000]}"
    assert results["score"] == sum(expected.values())
    assert results["extra_data"]["internal_error"] is False
    assert "mnist" in results["extra_data"]["data_sources"], results["extra_data"]


def test_release_stub_scores_zero_with_a_complete_report(course: tuple[Path, dict[str, str]],
                                                         release: Path, tmp_path: Path) -> None:
    results = _grade(course, release, tmp_path / "results.json")
    assert _scores(results) == EXPECTED["scores"]["stub"], f"seed {SEED}: {results['tests']}"
    assert results["score"] == 0
    assert results["extra_data"]["internal_error"] is False
    for row in results["tests"]:
        assert "NotImplementedError" in row["output"], f"{row['name']} does not say why:\n{row['output']}"
        assert row["max_score"] == EXPECTED["scores"]["reference"][row["name"].split(":", 1)[0]]


def test_gradescope_bundle(course: tuple[Path, dict[str, str]], release: Path) -> None:
    root, env = course
    out = root / "build" / f"{NAME}.zip"
    _run(root, env, "-m", "autograder", "build", NAME, "--output", str(out), "--course-root", str(root),
         "--with-data", "mnist")  # its declared data set: a bundle grades on the real data
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("bundle.json"))
    missing = [n for n in EXPECTED["bundle"]["holds"] if n not in names]
    assert not missing, f"the bundle lacks {missing}"
    extra = sorted(n for n in names if n.startswith(tuple(EXPECTED["bundle"]["never"])))
    assert not extra, f"the bundle holds {extra}"
    assert manifest["assignment"] == NAME
    assert {t: v["points"] for t, v in manifest["tasks"].items()} == EXPECTED["scores"]["reference"]
