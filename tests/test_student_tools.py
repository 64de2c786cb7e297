"""The student's tools shipped in the assignment folders: ``submit.py check`` and ``collect``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from autograder import config, library
from autograder.submission import prepare_submission
from coursegen.mutants import apply_mutants, build_reference_submission, load_mutants

REPO = Path(__file__).resolve().parents[1]
MUTANTS = REPO / "tests" / "fixtures" / "assignment1" / "mutants.toml"
ASSIGNMENTS = config.available_assignments()


def sample(assignment: str) -> tuple[str, str, str]:
    """A required module and two notebooks every submission of ``assignment`` holds (its declaration's)."""
    spec = spec_of(assignment)
    module = next(m for m in spec.required if not m.endswith("__init__.py"))
    notebooks = spec.submission_spec.notebooks
    return module, notebooks[0], notebooks[-1]


def submit(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "submit.py", *args], cwd=folder, text=True,
                          capture_output=True, timeout=300, check=False)


def statuses(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("PASS", "FAIL", "TODO"):
            out[parts[1]] = parts[0]
    return out


def spec_of(assignment: str) -> config.AssignmentSpec:
    return config.load_assignment(assignment)


def build_reference(assignment: str, dest: Path) -> Path:
    """The solution-mode copy of ``assignment`` at ``dest``, with its extension compiled."""
    source = REPO / "source" / assignment
    build_reference_submission(source, dest)
    if (source / "build_ext.py").is_file():  # build_reference_submission leaves out *.so
        built = sorted((source / "cs231n").glob("im2col_cython*.so"))
        if built:  # the instructor's build of the same (solution) .pyx
            shutil.copyfile(built[0], dest / "cs231n" / built[0].name)
        else:
            subprocess.run([sys.executable, "build_ext.py"], cwd=dest, check=True,
                           capture_output=True, timeout=300)
    return dest


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reference("assignment1", tmp_path_factory.mktemp("ref") / "assignment1")


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def any_reference(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    assignment = request.param
    return assignment, build_reference(assignment, tmp_path_factory.mktemp("ref") / assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_submit_py_is_the_one_shared_tool(assignment: str) -> None:
    shared = library.shared_files(REPO / "source" / assignment, library.declared(assignment))
    assert "submit.py" in shared, (
        f"{assignment} does not take submit.py from source/_common: keep the tool generic and "
        "put what is assignment-specific in submission.toml")
    assert (REPO / "release" / assignment / "submit.py").read_bytes() == shared["submit.py"].read_bytes()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_manifest_matches_the_graders_required_files(assignment: str) -> None:
    source, release = REPO / "source" / assignment, REPO / "release" / assignment
    with open(release / "submission.toml", "rb") as fh:  # generated from the declaration
        manifest = tomllib.load(fh)["submission"]
    spec = spec_of(assignment)
    assert sorted(manifest["modules"]) == sorted(spec.required)
    assert manifest["library"] == spec.library
    assert sorted(manifest["notebooks"]) == sorted(p.name for p in source.glob("*.ipynb"))
    assert manifest["zip_name"] == f"{assignment}_submission.zip"
    for name in ("cs231n/selfcheck.py", "README.md"):
        assert (release / name).read_bytes() == (source / name).read_bytes()
    for artifact in manifest.get("artifacts", []):
        assert (source / artifact).is_file() and not (release / artifact).exists()


def test_check_passes_on_the_reference(any_reference: tuple[str, Path]) -> None:
    assignment, folder = any_reference
    res = submit(folder, "check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert statuses(res.stdout) == dict.fromkeys(spec_of(assignment).tasks, "PASS")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_reports_every_stub_of_the_release(tmp_path: Path, assignment: str) -> None:
    folder = tmp_path / assignment
    shutil.copytree(REPO / "release" / assignment, folder)
    res = submit(folder, "check")
    assert res.returncode == 1
    got = statuses(res.stdout)
    spec = spec_of(assignment)
    assert set(got) == set(spec.tasks) and set(got.values()) == {"TODO"}, res.stdout
    assert f"{len(spec.tasks)} not implemented" in res.stdout
    if spec.build is not None:  # no compiled extension in the release
        assert "run python build_ext.py" in res.stdout


@pytest.mark.parametrize("name", ["affine_backward_dx_sign", "svm_naive_grad_sign"])
def test_check_catches_plausible_mistakes(reference: Path, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "assignment1"
    shutil.copytree(reference, folder)
    mutant = next(m for m in load_mutants(MUTANTS) if m.name == name)
    apply_mutants(folder, [mutant])
    res = submit(folder, "check", *mutant.loses)
    failed = {t for t, s in statuses(res.stdout).items() if s == "FAIL"}
    assert res.returncode == 1
    assert mutant.loses[0] in failed, res.stdout
    assert "relative error" in res.stdout and "seed 0" in res.stdout


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_collect_refuses_unrun_notebooks_and_missing_files(tmp_path: Path, assignment: str) -> None:
    folder = tmp_path / assignment
    shutil.copytree(REPO / "release" / assignment, folder)
    module, notebook, _ = sample(assignment)
    (folder / module).unlink()
    res = submit(folder, "collect")
    assert res.returncode == 1
    assert f"missing required file {module}" in res.stderr
    assert f"{notebook}:" in res.stderr and "never run" in res.stderr
    assert not list(folder.glob("*.zip"))


def executed_copy(any_reference: tuple[str, Path], tmp_path: Path) -> tuple[str, Path]:
    """A complete submission: the reference with the executed notebooks of solutions/."""
    assignment, reference = any_reference
    folder = tmp_path / assignment
    shutil.copytree(reference, folder)
    for nb in (REPO / "solutions" / assignment).glob("*.ipynb"):
        shutil.copyfile(nb, folder / nb.name)
    return assignment, folder


def test_collect_writes_a_zip_the_grader_accepts(any_reference: tuple[str, Path],
                                                 tmp_path: Path) -> None:
    assignment, folder = executed_copy(any_reference, tmp_path)
    module, notebook, _ = sample(assignment)
    (folder / "cifar-10-batches-py").mkdir()
    (folder / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x" * 100)
    (folder / "cs231n" / "__pycache__").mkdir(exist_ok=True)
    (folder / "cs231n" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"x")
    (folder / "build" / "temp").mkdir(parents=True)
    (folder / "build" / "temp" / "im2col_cython.o").write_bytes(b"x")
    (folder / "cs231n" / "im2col_cython.c").write_text("/* generated */")
    res = submit(folder, "collect")
    assert res.returncode == 0, res.stderr
    archive = folder / f"{assignment}_submission.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    with open(folder / "submission.toml", "rb") as fh:
        manifest = tomllib.load(fh)["submission"]
    assert {module, notebook, "submit.py", *manifest.get("artifacts", [])} <= names
    assert not any("cifar-10" in n or "__pycache__" in n or n.startswith("build/")
                   or n.endswith((".so", ".c")) for n in names), sorted(names)
    sub = prepare_submission(archive, tmp_path / "intake", spec_of(assignment))
    assert (sub.root / module).is_file()
    for required in spec_of(assignment).required:
        assert (sub.root / required).is_file()


def test_collect_refuses_a_submission_without_the_trained_weights(
        any_reference: tuple[str, Path], tmp_path: Path) -> None:
    assignment, folder = executed_copy(any_reference, tmp_path)
    with open(folder / "submission.toml", "rb") as fh:
        artifacts = tomllib.load(fh)["submission"].get("artifacts", [])
    assert artifacts == list(spec_of(assignment).submission_spec.artifacts)
    if not artifacts:
        pytest.skip(f"{assignment} has no artifacts")
    (folder / artifacts[0]).unlink()
    for args in (("collect",), ("collect", "--allow-unrun")):
        res = submit(folder, *args)
        assert res.returncode == 1
        assert f"missing required file {artifacts[0]}" in res.stderr
        assert "run them to the end" in res.stderr
        assert not list(folder.glob("*.zip"))


def test_collect_flags_a_notebook_that_ended_in_an_error(any_reference: tuple[str, Path],
                                                         tmp_path: Path) -> None:
    assignment, folder = executed_copy(any_reference, tmp_path)
    _, _, victim = sample(assignment)
    nb = json.loads((folder / victim).read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "x",
                        "traceback": []}]
    (folder / victim).write_text(json.dumps(nb))
    res = submit(folder, "collect")
    assert res.returncode == 1 and f"{victim}: cell" in res.stderr and "error" in res.stderr
    res = submit(folder, "collect", "--allow-unrun")
    assert res.returncode == 0, res.stderr


def test_check_warns_when_a_compiled_source_is_newer_than_its_build(tmp_path: Path) -> None:
    """The grader compiles the ``.pyx``: checks against an older build must say so."""
    built = [a for a in ASSIGNMENTS if spec_of(a).build is not None]
    assert built, "no assignment with a compiled extension"
    folder = tmp_path / built[0]
    shutil.copytree(REPO / "release" / built[0], folder)
    pyx = sorted(folder.rglob("*.pyx"))
    assert pyx, f"{built[0]}: no .pyx in the release"
    rel = pyx[0].relative_to(folder).as_posix()
    so = pyx[0].with_name(pyx[0].stem + ".cpython-312-x86_64-linux-gnu.so")
    so.write_bytes(b"")  # never imported: the one task checked below does not use it
    task = next(iter(spec_of(built[0]).tasks))
    os.utime(so, (1_000_000_000, 1_000_000_000))  # the build is older than the source
    res = submit(folder, "check", task)
    assert f"warning: {rel} changed after the last build" in res.stderr, res.stderr
    os.utime(so, None)  # rebuilt: now newer than the source
    os.utime(pyx[0], (1_000_000_000, 1_000_000_000))
    res = submit(folder, "check", task)
    assert "changed after the last build" not in res.stderr, res.stderr
