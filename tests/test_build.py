"""The grader compiles a submission's Cython extension in the sandbox (autograder/build.py).

A toy assignment is written to a temporary course: a library ``extlib`` with a
Cython module (``fastsum.pyx``) and a pure-Python one (``plain.py``), a
``build.toml`` naming the ``.pyx`` and the task that needs it. A submission
whose ``.pyx`` compiles passes both tasks; one whose ``.pyx`` does not compile
loses only the extension's task, with the compiler's message in the report; a
precompiled module shipped in the submission is never what gets imported.
Compiling takes seconds (Cython + the C compiler): those tests are ``slow``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder.build import BuildSpec, load_build_spec, run_build
from autograder.runner import grade

pytest.importorskip("Cython")

GOOD_PYX = '''# cython: language_level=3
def total(double[::1] values):
    """Sum of the values, in a compiled loop."""
    cdef Py_ssize_t i
    cdef double s = 0
    for i in range(values.shape[0]):
        s += values[i]
    return s
'''
BAD_PYX = GOOD_PYX.replace("cdef double s = 0", "cdef double s = not_declared_anywhere")
PLAIN = '''def double(x):
    return 2 * x
'''
TASKS = '''[assignment]
name = "extdemo"
library = "extlib"
required = ["extlib/__init__.py"]
timeout = 60
time_limit = 600

[tasks.ext_sum]
title = "compiled sum"
points = 6
visibility = "visible"

[tasks.plain_double]
title = "pure Python"
points = 4
visibility = "visible"
'''
BUILD = '''[build]
sources = ["fastsum.pyx"]
tasks = ["ext_sum"]
timeout = 240
'''
SUITE_TEST = '''import numpy as np
import pytest


@pytest.mark.ext_sum
def test_total(student, reference, rng):
    values = rng.standard_normal(50)
    assert abs(student.lib.fastsum.total(values) - reference.fastsum.total(values)) < 1e-9
    where = student.lib.fastsum.attr("__file__").get()
    assert where.endswith(".so") and "/ext/extlib/" in where, where


@pytest.mark.ext_sum
def test_total_again(student):
    assert student.lib.fastsum.total(np.ones(3)) == 3.0


@pytest.mark.plain_double
def test_double(student, reference):
    assert student.lib.plain.double(21) == reference.plain.double(21) == 42
'''


def _package(root: Path, pyx: str) -> Path:
    lib = root / "extlib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "plain.py").write_text(PLAIN)
    (lib / "fastsum.pyx").write_text(pyx)
    return root


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, Path]:
    """(course root with the reference in source/extdemo/extlib, suite folder)."""
    root = tmp_path / "course"
    _package(root / "source" / "extdemo", GOOD_PYX)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "tasks.toml").write_text(TASKS)
    (suite / "build.toml").write_text(BUILD)
    (suite / "test_ext.py").write_text(SUITE_TEST)
    return root, suite


# -- build.toml -----------------------------------------------------------------


def test_build_spec_is_read_and_checked(tmp_path: Path) -> None:
    assert load_build_spec(tmp_path) is None
    assert load_build_spec(None) is None
    (tmp_path / "build.toml").write_text(BUILD)
    assert load_build_spec(tmp_path, ["ext_sum", "plain_double"]) == BuildSpec(
        ("fastsum.pyx",), ("ext_sum",), 240.0)
    with pytest.raises(ValueError, match="unknown tasks"):
        load_build_spec(tmp_path, ["plain_double"])
    for bad in ('sources = ["../x.pyx"]\ntasks = ["a"]', 'sources = ["x.py"]\ntasks = ["a"]',
                'sources = []\ntasks = ["a"]', 'sources = ["x.pyx"]\ntasks = ["a"]\ntimeout = 0'):
        (tmp_path / "build.toml").write_text("[build]\n" + bad + "\n")
        with pytest.raises(ValueError):
            load_build_spec(tmp_path)


def test_the_assignment2_build_spec_names_known_tasks() -> None:
    from autograder.config import load_tasks

    suite = Path(__file__).resolve().parents[1] / "autograder" / "suites" / "assignment2"
    spec = load_build_spec(suite, load_tasks(suite / "tasks.toml").tasks)
    assert spec is not None and spec.sources == ("im2col_cython.pyx",)
    assert "conv_fast" in spec.tasks and "three_layer_convnet" not in spec.tasks


def test_missing_source_is_reported_without_compiling(tmp_path: Path) -> None:
    sub = _package(tmp_path / "sub", GOOD_PYX)
    (sub / "extlib" / "fastsum.pyx").unlink()
    result = run_build(str(sub), "extlib", ["fastsum.pyx"], str(tmp_path / "out"), 60)
    assert not result["ok"] and "missing source file(s): extlib/fastsum.pyx" in result["log"]


# -- compiling (slow: Cython and the C compiler run) --------------------------------


@pytest.mark.slow
def test_build_copies_sources_only_and_compiles(tmp_path: Path) -> None:
    sub = _package(tmp_path / "sub", GOOD_PYX)
    (sub / "extlib" / "fastsum.cpython-311-x86_64-linux-gnu.so").write_bytes(b"not a library")
    (sub / "extlib" / "fastsum.c").write_text("garbage")
    out = tmp_path / "out"
    result = run_build(str(sub), "extlib", ["fastsum.pyx"], str(out), 240)
    assert result["ok"], result["log"]
    built = sorted(p.name for p in (out / "extlib").iterdir())
    assert "plain.py" in built and any(n.startswith("fastsum.") and n.endswith(".so")
                                       for n in built)
    assert (out / "extlib" / "fastsum.c").read_text() != "garbage"
    assert not (out / "_build_temp").exists()


@pytest.mark.slow
def test_good_extension_passes_every_task(tmp_path: Path, course: tuple[Path, Path]) -> None:
    root, suite = course
    sub = _package(tmp_path / "submission", GOOD_PYX)
    report = grade(sub, "extdemo", suite_dir=suite, course_root=root,
                   results_path=tmp_path / "results.json")
    scores = {t.id: t.score for t in report.tasks}
    messages = [r.message for t in report.tasks for r in t.tests if r.outcome != "passed"]
    assert scores == {"ext_sum": 6, "plain_double": 4}, messages


@pytest.mark.slow
def test_broken_extension_costs_only_its_tasks_and_shows_the_compiler(
        tmp_path: Path, course: tuple[Path, Path]) -> None:
    root, suite = course
    sub = _package(tmp_path / "submission", BAD_PYX)
    results = tmp_path / "results.json"
    report = grade(sub, "extdemo", suite_dir=suite, course_root=root, results_path=results)
    scores = {t.id: t.score for t in report.tasks}
    assert scores == {"ext_sum": 0, "plain_double": 4}
    data = json.loads(results.read_text())
    ext = next(t for t in data["tests"] if t["name"].startswith("ext_sum"))
    assert "did not compile" in ext["output"]
    assert "not_declared_anywhere" in ext["output"]  # Cython's own message, with the line
    assert "fastsum.pyx" in ext["output"]
    assert data["score"] == 4


@pytest.mark.slow
def test_reference_extension_is_built_in_place(tmp_path: Path, course: tuple[Path, Path]) -> None:
    root, suite = course
    pkg = root / "source" / "extdemo" / "extlib"
    assert not list(pkg.glob("fastsum*.so"))
    sub = tmp_path / "submission"
    shutil.copytree(root / "source" / "extdemo", sub)
    grade(sub, "extdemo", suite_dir=suite, course_root=root, tasks=["ext_sum"])
    assert list(pkg.glob("fastsum*.so"))  # compiled for the grader's reference
