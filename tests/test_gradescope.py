"""Gradescope bundles (``autograder build``): the zip's contents, its scripts, and the
unpacked bundle run against a temporary root laid out like Gradescope's.

The fake root mirrors Gradescope's: ``ROOT/source`` is the unpacked zip,
``ROOT/submission`` the student's files, ``ROOT/results`` where the report goes,
and ``ROOT/run_autograder`` the copy Gradescope makes. ``setup.sh`` runs with
``AUTOGRADER_SKIP_INSTALL=1`` (no apt, no pip) and this interpreter as
``AUTOGRADER_PYTHON``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from functools import cache
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from autograder import cli, config
from autograder.gradescope import (
    AUTHORING_ONLY,
    MANIFEST,
    PYTORCH_CPU_INDEX,
    SETUP,
    BuildError,
    build_bundle,
    extract_bundle,
    runtime_requirements,
)
from coursegen.mutants import build_reference_submission

REPO = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
A1_SUITE = config.suite_dir("assignment1")
A1_REFERENCE = REPO / "source" / "assignment1" / "cs231n"
GRADESCOPE_KEYS = {"score", "execution_time", "output", "stdout_visibility", "extra_data", "tests"}
PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


@cache
def isolation() -> bool:
    """Can workers be confined on this machine (root and namespaces)?"""
    from autograder.sandbox import isolation_available

    return isolation_available(sys.executable)[0]


def plain_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def a1_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle("assignment1", tmp_path_factory.mktemp("a1-bundle"),
                        allow_generated_data=True)


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("toy-bundle") / "toy.zip"
    return build_bundle("toy", dest, course_root=TOY, suite_dir=TOY / "suite")


def make_root(bundle: Path, base: Path) -> Path:
    """A Gradescope-like root: the unpacked bundle, an empty submission and results."""
    root = base / "autograder"
    extract_bundle(bundle, root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    return root


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.pop("PYTHONPATH", None)
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    if not isolation():  # not root here: grade unconfined rather than refuse
        env["AUTOGRADER_REQUIRE_ISOLATION"] = "0"
    env.update(extra)
    return env


def run_setup(root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "source" / "setup.sh")], cwd=root, capture_output=True,
                          text=True, timeout=120, env=env_for(root, AUTOGRADER_SKIP_INSTALL="1",
                                                              **extra))


def run_autograder(root: Path, env: dict[str, str] | None = None,
                   timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True,
                          text=True, timeout=timeout, env=env or env_for(root))
    results = root / "results" / "results.json"
    assert results.is_file(), proc.stdout + proc.stderr
    return proc, json.loads(results.read_text())


def check_report(data: dict, tasks_toml: Path) -> None:
    """Gradescope's top-level fields, one test per task, each with its tasks.toml visibility."""
    spec = config.load_tasks(tasks_toml)
    assert GRADESCOPE_KEYS <= set(data)
    assert data["stdout_visibility"] == "hidden"
    assert data.get("visibility", "visible") in config.VISIBILITIES
    assert [t["name"].split(":")[0] for t in data["tests"]] == list(spec.tasks)
    for test, task in zip(data["tests"], spec.tasks.values(), strict=True):
        assert test["visibility"] == task.visibility
        assert test["max_score"] == task.points
        assert 0 <= test["score"] <= test["max_score"]
        assert test["extra_data"]["execution_time"] >= 0  # seconds, the task's tests
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-9


def student_text(data: dict) -> str:
    return "\n".join([data["output"], *(t["name"] + "\n" + t["output"] for t in data["tests"])])


def assert_no_suite_source(data: dict, suite: Path) -> None:
    """No line of the hidden tests' code appears in what Gradescope shows."""
    text = student_text(data)
    code = []
    for f in suite.glob("*.py"):
        for line in f.read_text().splitlines():
            s = line.strip()
            if len(s) >= 25 and not s.startswith(("#", '"', "'")) and ("(" in s or "=" in s):
                code.append(s)
    assert code
    assert [s for s in code if s in text] == []


# ------------------------------------------------------------------ the zip
def test_bundle_holds_grader_suite_and_reference_only(a1_bundle: Path) -> None:
    with zipfile.ZipFile(a1_bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        manifest = json.loads(zf.read("bundle.json"))
        data = {name: zf.read(name) for name in infos}
    names = set(infos)
    assert a1_bundle.name == "assignment1-gradescope.zip"
    assert {"setup.sh", "run_autograder", "requirements.txt", "bundle.json"} <= names
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/") and "\\" not in name
    # the hidden suite, the reference library, the grader, the data package
    assert {f"course/autograder/suites/assignment1/{f}" for f in plain_files(A1_SUITE)} <= names
    assert {f"course/source/assignment1/cs231n/{f}" for f in plain_files(A1_REFERENCE)} <= names
    assert {"course/autograder/__main__.py", "course/autograder/runner.py",
            "course/autograder/sandbox/jail.py", "packages/coursedata/__init__.py"} <= names
    # and nothing else of the course
    parts = {p for name in names for p in name.split("/")[:-1]}
    assert not parts & {"__pycache__", ".git", "release", "solutions", "tests", "coursegen",
                        "submitted", "autograded", "feedback", "build", "datasets"}
    assert not [n for n in names if n.endswith((".ipynb", ".pyc", ".html", ".db"))]
    assert {n.split("/")[2] for n in names if n.startswith("course/source/")} == {"assignment1", "_common"}
    # the shared modules of the reference package, not the shared student tools
    assert "course/source/_common/cs231n/cs231n/solver.py" in names
    assert not [n for n in names if n.endswith("submit.py")]
    assert {n.split("/")[3] for n in names if n.startswith("course/source/")} == {"cs231n"}
    assert {n.split("/")[3] for n in names
            if n.startswith("course/autograder/suites/") and n.count("/") > 3} == {"assignment1"}
    top = {n.split("/")[0] for n in names}
    assert top == {"setup.sh", "run_autograder", "requirements.txt", "bundle.json", "course",
                   "packages"}
    # executables keep their mode; the manifest hashes every other file
    for name, info in infos.items():
        mode = (info.external_attr >> 16) & 0o777
        assert mode == (0o755 if name in ("setup.sh", "run_autograder") else 0o644), name
    assert set(manifest["files"]) == names - {"bundle.json"}
    for name, meta in manifest["files"].items():
        assert meta["sha256"] == hashlib.sha256(data[name]).hexdigest()
        assert meta["size"] == len(data[name])
    assert manifest["assignment"] == "assignment1" and manifest["max_score"] == 100
    assert manifest["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert manifest["cvcourse"] == metadata.version("cvcourse")
    assert manifest["require_isolation"] is True


def test_requirements_pin_every_package_with_double_equals(a1_bundle: Path) -> None:
    with zipfile.ZipFile(a1_bundle) as zf:
        text = zf.read("requirements.txt").decode()
        manifest = json.loads(zf.read("bundle.json"))
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("#", "--"))]
    assert lines and all(PIN_RE.match(ln) for ln in lines), lines
    options = [ln for ln in text.splitlines() if ln.startswith("--")]
    cpu_builds = [ln for ln in lines if "+cpu" in ln]
    assert options == ([f"--extra-index-url {PYTORCH_CPU_INDEX}"] if cpu_builds else [])
    pins = {canonicalize_name(ln.split("==")[0]): ln.split("==")[1] for ln in lines}
    for name, version in pins.items():
        assert metadata.version(name) == version, name
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = {canonicalize_name(re.split(r"[<>=!~;\[ ]", d)[0])
              for d in pyproject["project"]["dependencies"]}
    per_assignment = {canonicalize_name(p) for a in config.available_assignments()
                      for p in config.load_assignment(a).packages}
    assert wanted - set(AUTHORING_ONLY) - per_assignment <= set(pins)
    assert not set(AUTHORING_ONLY) & set(pins)
    assert {"numpy", "pytest", "packaging", "pluggy"} <= set(pins)  # pytest's own dependencies too
    assert {canonicalize_name(k) for k in manifest["requirements"]} == set(pins)


def test_runtime_requirements_refuse_what_cannot_be_pinned() -> None:
    with pytest.raises(BuildError, match="not installed"):
        runtime_requirements(["surely-not-a-real-package-xyz>=1"])
    with pytest.raises(BuildError, match="does not satisfy"):
        runtime_requirements(["numpy>=9999"])
    assert runtime_requirements(["pywin32; sys_platform == 'win32'"]) == {}


def test_scripts_are_valid_bash(a1_bundle: Path, tmp_path: Path) -> None:
    src = extract_bundle(a1_bundle, tmp_path / "source")
    for name in ("setup.sh", "run_autograder"):
        script = src / name
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "\r" not in text
        assert os.access(script, os.X_OK)
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "/autograder" in text and "AUTOGRADER_ROOT" in text


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = build_bundle("assignment1", tmp_path / "one", allow_generated_data=True)
    second = build_bundle("assignment1", tmp_path / "two" / "named.zip",
                          allow_generated_data=True)
    assert second.name == "named.zip"
    assert first.read_bytes() == second.read_bytes()


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.zip"
    assert cli.main(["build", "assignment1", "--output", str(out), "--with-cifar10"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out} (" in captured.out and "KiB" in captured.out and out.is_file()
    assert "timeout must exceed 15 min" in captured.out and captured.err == ""
    assert "set the assignment's Autograder Points to 100 in Gradescope" in captured.out
    assert cli.main(["build", "toy", "--course-root", str(TOY), "--suite-dir",
                     str(TOY / "suite"), "--output", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "toy-gradescope.zip").is_file()
    assert captured.err.startswith("autograder: warning: relu: visibility 'hidden' with points")
    for argv in (["build", "nosuchassignment"], ["build"],
                 ["build", "assignment1", "--course-root", str(tmp_path / "missing")]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("autograder: error: ") and err.count("\n") == 1, argv


# ------------------------------------------------------------------ setup.sh
def test_setup_checks_the_interpreter_and_the_bundled_grader(a1_bundle: Path,
                                                             tmp_path: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    proc = run_setup(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"grader {root / 'source' / 'course' / 'autograder'}" in proc.stdout
    assert "two_layer_net_loss" in proc.stdout and "setup.sh: done" in proc.stdout
    missing = run_setup(root, AUTOGRADER_PYTHON="")
    assert missing.returncode != 0 and "AUTOGRADER_PYTHON" in missing.stderr


def test_setup_refuses_a_damaged_bundle(a1_bundle: Path, tmp_path: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    test_knn = root / "source" / "course" / "autograder" / "suites" / "assignment1" / "test_knn.py"
    test_knn.write_text(test_knn.read_text() + "\n# edited after the build\n")
    proc = run_setup(root)
    assert proc.returncode != 0
    assert "changed since the bundle was built" in proc.stderr and "test_knn.py" in proc.stderr


# ------------------------------------------------------------------ run_autograder
@pytest.mark.slow
def test_reference_submission_scores_full_marks(a1_bundle: Path, tmp_path: Path,
                                                course_data_dir: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    assert run_setup(root).returncode == 0
    (root / "submission").rmdir()
    build_reference_submission(REPO / "source" / "assignment1", root / "submission")
    proc, data = run_autograder(root, env_for(root, CVCOURSE_DATA_DIR=str(course_data_dir)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_report(data, A1_SUITE / "tasks.toml")
    assert data["score"] == 100, student_text(data)
    assert all(t["status"] == "passed" for t in data["tests"])
    assert data["extra_data"]["isolated"] is isolation()
    assert "report written" in proc.stdout
    assert_no_suite_source(data, A1_SUITE)


def test_empty_submission_gets_a_complete_zero_report(a1_bundle: Path, tmp_path: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    proc, data = run_autograder(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_report(data, A1_SUITE / "tasks.toml")
    assert data["score"] == 0
    assert "could not be graded" in data["output"] and "cs231n/" in data["output"]
    assert all("not graded" in t["output"] for t in data["tests"])
    assert data["extra_data"]["internal_error"] is False


def toy_submission(dest: Path, relu_body: str | None = None) -> Path:
    shutil.copytree(TOY / "source" / "toy", dest, ignore=shutil.ignore_patterns("__pycache__"))
    if relu_body is not None:
        ops = dest / "mylib" / "ops.py"
        text = ops.read_text()
        start = text.index("def relu(x):")
        ops.write_text(text[:start] + relu_body)
    return dest


def test_zip_upload_and_per_test_visibility(toy_bundle: Path, tmp_path: Path) -> None:
    root = make_root(toy_bundle, tmp_path)
    assert run_setup(root).returncode == 0
    folder = toy_submission(tmp_path / "work")
    with zipfile.ZipFile(root / "submission" / "my-work.zip", "w") as zf:
        for path in sorted(folder.rglob("*.py")):
            zf.write(path, f"toy/{path.relative_to(folder).as_posix()}")
    proc, data = run_autograder(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_report(data, TOY / "suite" / "tasks.toml")
    assert data["score"] == 10, student_text(data)
    assert {t["name"].split(":")[0]: t["visibility"] for t in data["tests"]} == {
        "add": "visible", "relu": "hidden", "scaler": "after_due_date"}
    assert_no_suite_source(data, TOY / "suite")


def test_student_code_cannot_read_the_bundle(toy_bundle: Path, tmp_path: Path) -> None:
    if not isolation():
        pytest.skip("workers cannot be confined here (needs root and namespaces)")
    root = make_root(toy_bundle, tmp_path)
    secrets = [root / "source" / "course" / "source" / "toy" / "mylib" / "ops.py",
               root / "source" / "course" / "autograder" / "suites" / "toy" / "test_toy.py",
               root / "source" / "bundle.json"]
    (root / "submission").rmdir()
    toy_submission(root / "submission", relu_body=(
        "def relu(x):\n"
        "    for path in " + repr([str(p) for p in secrets]) + ":\n"
        "        try:\n"
        "            open(path).read()\n"
        "        except OSError:\n"
        "            continue\n"
        "        return np.maximum(x, 0)  # could read a hidden file: 'pass'\n"
        "    return x\n"))
    proc, data = run_autograder(root)
    scores = {t["name"].split(":")[0]: t["score"] for t in data["tests"]}
    assert scores == {"add": 2, "relu": 0, "scaler": 5}, student_text(data)
    assert data["extra_data"]["isolated"] is True
    assert "FAIL test_toy.py::test_relu" in student_text(data)
    assert_no_suite_source(data, TOY / "suite")


@pytest.mark.parametrize("python", ["/bin/false", "/nonexistent/python3"])
def test_a_grader_that_cannot_start_still_leaves_a_report(a1_bundle: Path, tmp_path: Path,
                                                          python: str) -> None:
    root = make_root(a1_bundle, tmp_path)
    forged = {"score": 100.0, "output": "forged", "tests": []}
    (root / "results" / "results.json").write_text(json.dumps(forged))
    proc, data = run_autograder(root, env_for(root, AUTOGRADER_PYTHON=python))
    assert proc.returncode == 0
    assert data["score"] == 0 and data["tests"] == []
    assert "could not be graded" in data["output"] and "course staff" in data["output"]
    assert data["extra_data"]["internal_error"] is True and data["extra_data"]["fallback"] is True
    assert data["stdout_visibility"] == "hidden"
    assert "exit status" in proc.stderr


def test_a_grader_that_hangs_is_stopped_and_still_leaves_a_report(a1_bundle: Path,
                                                                   tmp_path: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    hang = tmp_path / "hanging-python"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    proc, data = run_autograder(root, env_for(root, AUTOGRADER_PYTHON=str(hang),
                                              AUTOGRADER_HARD_LIMIT="1"), timeout=30)
    assert proc.returncode == 0
    assert data["score"] == 0 and "ran out of time" in data["output"]
    assert data["extra_data"]["grader_exit_status"] == 124


def test_results_dir_is_created_when_missing(a1_bundle: Path, tmp_path: Path) -> None:
    root = make_root(a1_bundle, tmp_path)
    (root / "results").rmdir()
    proc, data = run_autograder(root, env_for(root, AUTOGRADER_PYTHON="/bin/false"))
    assert data["score"] == 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to drop CAP_SYS_ADMIN")
def test_root_without_namespaces_refuses_to_grade_and_says_why(a1_bundle: Path,
                                                               tmp_path: Path) -> None:
    """Root in a container without CAP_SYS_ADMIN (Docker's default): no confinement, so
    --require-isolation grades nothing, and the report says why."""
    root = make_root(a1_bundle, tmp_path)
    (root / "submission").rmdir()
    build_reference_submission(REPO / "source" / "assignment1", root / "submission")
    proc = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
         str(root / "run_autograder")],
        cwd=root, capture_output=True, text=True, timeout=120,
        env=env_for(root, AUTOGRADER_REQUIRE_ISOLATION="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    check_report(data, A1_SUITE / "tasks.toml")
    assert data["score"] == 0 and data["extra_data"]["internal_error"] is True
    assert data["extra_data"]["isolated"] is False
    assert "isolation was required but is not available" in data["output"]


# --------------------------------------------------------------------------- data in the bundle


def test_with_data_downloads_registered_sets(tmp_path: Path) -> None:
    path = build_bundle("assignment1", tmp_path / "b.zip", with_data=("mnist",),
                        download_cifar10=True)
    with zipfile.ZipFile(path) as zf:
        setup = zf.read(SETUP).decode()
        manifest = json.loads(zf.read(MANIFEST))
        names = set(zf.namelist())
    assert "WITH_DATA='mnist cifar10'" in setup and 'coursedata download "$name"' in setup
    assert manifest["with_data"] == ["mnist", "cifar10"] and manifest["download_cifar10"] is True
    assert any(n.endswith("coursedata/registry.py") for n in names)


def test_build_refuses_unverified_or_ungradable_data(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="--with-data styles: no verified checksum"):
        build_bundle("assignment1", tmp_path, with_data=("styles",))
    with pytest.raises(BuildError, match="unknown data set 'cifar100'"):
        build_bundle("assignment1", tmp_path, with_data=("cifar100",))
    with pytest.raises(BuildError, match="pytorch_my_model cannot be graded on generated cifar10.*"
                                         "--with-data cifar10"):
        build_bundle("assignment2", tmp_path, allow_generated_data=True)
    assert build_bundle("assignment2", tmp_path / "ok.zip", allow_ungradable=True).is_file()
    assert build_bundle("assignment2", tmp_path / "real.zip", with_data=("cifar10",)).is_file()


def test_build_refuses_generated_data_unless_allowed(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle grades on the declared data sets, or the instructor says otherwise."""
    for assignment in ("assignment1", "assignment2"):
        with pytest.raises(BuildError, match=rf"{assignment} uses cifar10, which this bundle would "
                                             r"not download.*--with-data cifar10.*"
                                             r"--allow-generated-data"):
            build_bundle(assignment, tmp_path / f"{assignment}.zip")
        assert not (tmp_path / f"{assignment}.zip").exists()
    assert cli.main(["build", "assignment1", "--output", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograder: error: assignment1 uses cifar10") and err.count("\n") == 1
    assert not (tmp_path / "x.zip").exists()
    allowed = tmp_path / "allowed.zip"
    assert cli.main(["build", "assignment1", "--output", str(allowed),
                     "--allow-generated-data"]) == 0
    with zipfile.ZipFile(allowed) as zf:
        assert json.loads(zf.read(MANIFEST))["with_data"] == []


def _pinned(bundle: Path) -> set[str]:
    with zipfile.ZipFile(bundle) as zf:
        text = zf.read("requirements.txt").decode()
    return {canonicalize_name(ln.split("==")[0]) for ln in text.splitlines()
            if "==" in ln and not ln.startswith("#")}


def test_each_bundle_installs_what_its_declaration_needs(a1_bundle: Path, tmp_path: Path) -> None:
    """torch, Cython and setuptools only where [assignment] packages names them (Assignment 2)."""
    a1 = config.load_assignment("assignment1")
    a2 = config.load_assignment("assignment2")
    a2_bundle = build_bundle("assignment2", tmp_path, with_data=("cifar10",))
    a1_pins, a2_pins = _pinned(a1_bundle), _pinned(a2_bundle)
    declared = {canonicalize_name(p) for p in a2.packages}
    assert {"torch", "cython", "setuptools"} <= declared and not a1.packages
    assert declared <= a2_pins, declared - a2_pins
    assert not declared & a1_pins, declared & a1_pins
    # torch's own dependencies (sympy, networkx...) leave with it
    assert not {"sympy", "networkx", "mpmath"} & a1_pins
    assert {"numpy", "scipy", "pytest", "h5py"} <= a1_pins & a2_pins  # the engine's own
    assert "copydetect" not in a1_pins | a2_pins  # an instructor tool, not grading
    for bundle, pins in ((a1_bundle, a1_pins), (a2_bundle, a2_pins)):
        with zipfile.ZipFile(bundle) as zf:
            setup = zf.read(SETUP).decode()
            manifest = json.loads(zf.read(MANIFEST))
        # setup.sh installs exactly the pinned file: nothing else reaches the image
        assert [ln.strip() for ln in setup.splitlines() if "pip install" in ln] == \
            ['"$PY" -m pip install -q "pip==$PIP_VERSION"',
             '"$PY" -m pip install --prefer-binary -r "$SRC/requirements.txt"']
        assert "torch" not in setup
        assert {canonicalize_name(k) for k in manifest["requirements"]} == pins
    with zipfile.ZipFile(a1_bundle) as zf:
        assert "--extra-index-url" not in zf.read("requirements.txt").decode()


def test_the_gradescope_schema_rejects_what_gradescope_does_not_read(tmp_path: Path) -> None:
    """The schema every results.json of the tests is checked against (tests/conftest.py) bites."""
    from conftest import RESULTS_SCHEMA, gradescope_schema_errors

    assert "gradescope-autograders.readthedocs.io/en/latest/specs" in RESULTS_SCHEMA.read_text()
    good = {"score": 1.0, "execution_time": 2.5, "output": "x", "stdout_visibility": "hidden",
            "extra_data": {}, "tests": [{"name": "a", "score": 1.0, "max_score": 2,
                                         "status": "failed", "visibility": "after_due_date",
                                         "output": "", "extra_data": {"execution_time": 1.0}}]}
    bad = [
        {**good, "tests": [{**good["tests"][0], "execution_time": 1.0}]},  # not a test field
        {**good, "tests": [{**good["tests"][0], "visibility": "public"}]},
        {**good, "tests": [{**good["tests"][0], "status": "error"}]},
        {**good, "max_score": 100},  # no such top-level field
        {k: v for k, v in good.items() if k != "score"} | {"tests": [{"name": "no score"}]},
        {**good, "score": "1"},
        {**good, "execution_time": -1},
    ]
    folder = tmp_path / "schema"
    for i, data in enumerate([good, *bad]):
        (folder / str(i)).mkdir(parents=True)
        (folder / str(i) / "results.json").write_text(json.dumps(data))
    errors = gradescope_schema_errors(folder)
    flagged = {Path(e.split(": ")[0]).parent.name for e in errors}
    assert flagged == {str(i) for i in range(1, len(bad) + 1)}, errors
    shutil.rmtree(folder)  # the per-test check of tmp_path must not see the bad ones
