"""The grader compiles a submission's Cython extension in the sandbox (autograder/extensions.py).

A toy assignment is written to a temporary course: a library ``extlib`` with a
Cython module (``fastsum.pyx``) and a pure-Python one (``plain.py``), a
``[build]`` table in its ``tasks.toml`` naming the ``.pyx`` and the task that
needs it. A submission whose ``.pyx`` compiles passes both tasks; one whose ``.pyx`` does not compile
loses only the extension's task, with the compiler's message in the report; a
precompiled module shipped in the submission is never what gets imported.
Compiling takes seconds (Cython + the C compiler): those tests are ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import library
from autograder.config import BuildSpec, load_assignment, load_tasks
from autograder.extensions import run_build
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
    assert where.endswith(".so") and "/ag-ext-" in where, where  # the grader's own build


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
    (suite / "tasks.toml").write_text(TASKS + "\n" + BUILD)
    (suite / "test_ext.py").write_text(SUITE_TEST)
    return root, suite


# -- the [build] table (its errors: tests/test_declaration.py) ------------------


def test_build_spec_is_read(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_text(TASKS)
    assert load_tasks(tmp_path / "tasks.toml").build is None
    (tmp_path / "tasks.toml").write_text(TASKS + "\n" + BUILD)
    assert load_tasks(tmp_path / "tasks.toml").build == BuildSpec(("fastsum.pyx",), ("ext_sum",), 240.0)


def test_the_assignment2_build_spec_names_known_tasks() -> None:
    spec = load_assignment("assignment2").build
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


FORGER = '''import json, os, shutil

# Runs on import, in a worker of the plain task: plant a "built ok" record and the
# shipped binary wherever a build could look for them (the working folder, the fork
# server's folder above it, HOME, TMPDIR), then make the package's own folder
# offer the shipped module.
HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = [n for n in os.listdir(HERE) if n.startswith("fastsum.") and n.endswith(".so")]
RECORD = {"ok": True, "log": "", "seconds": 0.1, "sources": ["fastsum.pyx"]}
for base in {os.getcwd(), os.path.dirname(os.getcwd()), os.environ.get("HOME", "."),
             os.environ.get("TMPDIR", ".")}:
    for name in ("ext-result.json", "result.json"):
        try:
            with open(os.path.join(base, name), "w") as fh:
                json.dump(RECORD, fh)
        except OSError:
            pass
    try:
        os.makedirs(os.path.join(base, "ext", "extlib"), exist_ok=True)
        for name in os.listdir(HERE):
            shutil.copy(os.path.join(HERE, name), os.path.join(base, "ext", "extlib", name))
    except OSError:
        pass
'''


@pytest.mark.slow
def test_forged_build_record_and_shipped_binary_earn_nothing(
        tmp_path: Path, course: tuple[Path, Path]) -> None:
    """A .pyx that does not compile, a working binary compiled elsewhere shipped beside
    it, and an ``__init__`` that plants "built ok" records and the binary wherever a
    build could look: the build tasks get 0, the honest part its points, and the
    report is complete with no internal error. The plain task's tests run first."""
    root, suite = course
    (suite / "test_a_plain.py").write_text(
        "import pytest\n\n@pytest.mark.plain_double\ndef test_plain_first(student):\n"
        "    assert student.lib.plain.double(2) == 4\n")
    honest = _package(tmp_path / "honest", GOOD_PYX)
    out = tmp_path / "elsewhere"
    assert run_build(str(honest), "extlib", ["fastsum.pyx"], str(out), 240)["ok"]
    sub = _package(tmp_path / "submission", BAD_PYX)
    for so in (out / "extlib").glob("fastsum*.so"):
        shutil.copy(so, sub / "extlib" / so.name)
    (sub / "extlib" / "__init__.py").write_text(FORGER)
    results = tmp_path / "results.json"
    report = grade(sub, "extdemo", suite_dir=suite, course_root=root, results_path=results)
    scores = {t.id: t.score for t in report.tasks}
    assert scores == {"ext_sum": 0, "plain_double": 4}, [t.tests for t in report.tasks]
    assert not report.internal_errors
    data = json.loads(results.read_text())
    assert data["score"] == 4 and len(data["tests"]) == 2  # one entry per task
    ext = next(t for t in data["tests"] if t["name"].startswith("ext_sum"))
    assert "did not compile" in ext["output"] and "not_declared_anywhere" in ext["output"]


@pytest.mark.slow
def test_reference_extension_is_built_in_place(tmp_path: Path, course: tuple[Path, Path]) -> None:
    root, suite = course
    pkg = root / "source" / "extdemo" / "extlib"
    assert not list(pkg.glob("fastsum*.so"))
    sub = tmp_path / "submission"
    shutil.copytree(root / "source" / "extdemo", sub)
    grade(sub, "extdemo", suite_dir=suite, course_root=root, tasks=["ext_sum"])
    assert list(pkg.glob("fastsum*.so"))  # compiled for the grader's reference


# -- the student's own build (build_ext.py) on every supported Python ------------------
# Issue: the extension builds with Cython 3 on Python 3.11 and 3.12 (setuptools, no
# distutils). The suite's own interpreter is always tried; ``make test`` also sets up a
# Python 3.12 environment with Cython, numpy and setuptools when the machine has
# python3.12 and names it in CS231N_STUDENT_PYTHONS (paths separated by os.pathsep).

STUDENT_CHECK = """
import sys
import numpy as np
from cs231n.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_forward_fast
from cs231n.layers import conv_backward_naive, conv_forward_naive, max_pool_forward_naive

rng = np.random.default_rng(7)
x = rng.standard_normal((3, 2, 9, 7))
w = rng.standard_normal((4, 2, 3, 2))
b = rng.standard_normal(4)
cp = {"stride": 2, "pad": 1}
if sys.argv[1] == "release":
    from cs231n.im2col_cython import im2col_cython

    try:
        im2col_cython(x, 3, 2, 1, 2)
    except NotImplementedError as exc:
        assert "im2col_cython" in str(exc), exc
        print("stub ok")
        sys.exit(0)
    sys.exit("the released stub did not raise NotImplementedError")
out, cache = conv_forward_fast(x, w, b, cp)
ref, ref_cache = conv_forward_naive(x, w, b, cp)
assert np.allclose(out, ref, rtol=1e-10, atol=1e-12), "conv forward differs from naive"
dout = rng.standard_normal(out.shape)
for name, got, exp in zip("dx dw db".split(), conv_backward_fast(dout, cache),
                          conv_backward_naive(dout, ref_cache)):
    assert np.allclose(got, exp, rtol=1e-10, atol=1e-12), name
pp = {"pool_height": 3, "pool_width": 2, "stride": 3}
assert np.array_equal(max_pool_forward_fast(x, pp)[0], max_pool_forward_naive(x, pp)[0])
print("reference ok", sys.version.split()[0])
"""


def _student_pythons() -> list[str]:
    extra = [p for p in os.environ.get("CS231N_STUDENT_PYTHONS", "").split(os.pathsep) if p]
    return [sys.executable, *extra]


def _version(python: str) -> str:
    done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("python", _student_pythons())
@pytest.mark.parametrize("tree", ["source", "release"])
def test_student_build_script_on_each_python(tmp_path: Path, python: str, tree: str) -> None:
    """``python build_ext.py`` in a copy of the assignment compiles the .pyx (the
    reference's and the released stub's), and the fast layers then work (reference)
    or raise NotImplementedError naming the task (stub)."""
    repo = Path(__file__).resolve().parents[1]
    work = tmp_path / "assignment2"
    skip = shutil.ignore_patterns("*.so", "build", "*.c", "__pycache__")
    if tree == "source":  # the master copy with its shared files, as students get it
        library.assemble(repo / tree / "assignment2", library.declared("assignment2"), work, skip)
    else:
        shutil.copytree(repo / tree / "assignment2", work, ignore=skip)
    version = _version(python)
    built = subprocess.run([python, "build_ext.py"], cwd=work, capture_output=True, text=True,
                           timeout=600, check=False)
    assert built.returncode == 0, (f"build_ext.py failed on Python {version} ({tree}):\n"
                                   f"{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    so = list((work / "cs231n").glob("im2col_cython*.so"))
    assert len(so) == 1 and f"{version.replace('.', '')}" in so[0].name, so
    ran = subprocess.run([python, "-c", STUDENT_CHECK, "release" if tree == "release" else "ref"],
                         cwd=work, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, f"Python {version} ({tree}):\n{ran.stdout}\n{ran.stderr[-3000:]}"
