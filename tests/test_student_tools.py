"""The student's tools shipped in the assignment folder: ``submit.py check`` and ``collect``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from autograder import config
from autograder.submission import prepare_submission
from coursegen.mutants import apply_mutants, build_reference_submission, load_mutants

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "release" / "assignment1"
SOURCE = REPO / "source" / "assignment1"
SOLUTIONS = REPO / "solutions" / "assignment1"
MUTANTS = REPO / "tests" / "fixtures" / "assignment1" / "mutants.toml"


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


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("ref") / "assignment1"
    build_reference_submission(SOURCE, dest)
    return dest


def test_manifest_matches_the_graders_required_files() -> None:
    with open(SOURCE / "submission.toml", "rb") as fh:
        manifest = tomllib.load(fh)["submission"]
    spec = config.load_tasks(config.suite_dir("assignment1") / "tasks.toml")
    assert sorted(manifest["modules"]) == sorted(spec.required)
    assert manifest["library"] == spec.library
    assert sorted(manifest["notebooks"]) == sorted(p.name for p in SOURCE.glob("*.ipynb"))
    for name in ("submit.py", "submission.toml", "cs231n/selfcheck.py"):
        assert (RELEASE / name).read_bytes() == (SOURCE / name).read_bytes()


def test_check_passes_on_the_reference(reference: Path) -> None:
    res = submit(reference, "check")
    assert res.returncode == 0, res.stdout + res.stderr
    spec = config.load_tasks(config.suite_dir("assignment1") / "tasks.toml")
    assert statuses(res.stdout) == dict.fromkeys(spec.tasks, "PASS")


def test_check_reports_every_stub_of_the_release(tmp_path: Path) -> None:
    folder = tmp_path / "assignment1"
    shutil.copytree(RELEASE, folder)
    res = submit(folder, "check")
    assert res.returncode == 1
    got = statuses(res.stdout)
    spec = config.load_tasks(config.suite_dir("assignment1") / "tasks.toml")
    assert set(got) == set(spec.tasks) and set(got.values()) == {"TODO"}
    assert "18 not implemented" in res.stdout


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


def test_collect_refuses_unrun_notebooks_and_missing_files(tmp_path: Path) -> None:
    folder = tmp_path / "assignment1"
    shutil.copytree(RELEASE, folder)
    (folder / "cs231n" / "layers.py").unlink()
    res = submit(folder, "collect")
    assert res.returncode == 1
    assert "missing required file cs231n/layers.py" in res.stderr
    assert "knn.ipynb:" in res.stderr and "never run" in res.stderr
    assert not list(folder.glob("*.zip"))


def test_collect_writes_a_zip_the_grader_accepts(reference: Path, tmp_path: Path) -> None:
    folder = tmp_path / "assignment1"
    shutil.copytree(reference, folder)
    for nb in SOLUTIONS.glob("*.ipynb"):  # executed notebooks
        shutil.copyfile(nb, folder / nb.name)
    (folder / "cifar-10-batches-py").mkdir()
    (folder / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x" * 100)
    (folder / "cs231n" / "__pycache__").mkdir(exist_ok=True)
    (folder / "cs231n" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"x")
    res = submit(folder, "collect")
    assert res.returncode == 0, res.stderr
    archive = folder / "assignment1_submission.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"cs231n/layers.py", "knn.ipynb", "submit.py"} <= names
    assert not any("cifar-10" in n or "__pycache__" in n for n in names)
    spec = config.load_tasks(config.suite_dir("assignment1") / "tasks.toml")
    sub = prepare_submission(archive, tmp_path / "intake", spec)
    assert (sub.root / "cs231n" / "layers.py").is_file()


def test_collect_flags_a_notebook_that_ended_in_an_error(reference: Path, tmp_path: Path) -> None:
    folder = tmp_path / "assignment1"
    shutil.copytree(reference, folder)
    for nb in SOLUTIONS.glob("*.ipynb"):
        shutil.copyfile(nb, folder / nb.name)
    nb = json.loads((folder / "svm.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "x",
                        "traceback": []}]
    (folder / "svm.ipynb").write_text(json.dumps(nb))
    res = submit(folder, "collect")
    assert res.returncode == 1 and "svm.ipynb: cell" in res.stderr and "error" in res.stderr
    res = submit(folder, "collect", "--allow-unrun")
    assert res.returncode == 0, res.stderr
