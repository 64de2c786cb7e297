"""Reference weights, one mechanism: declared in ``[reference_model]``, trained by
``python -m coursegen.reference_model``, and checked for staleness against their record.

Training takes minutes, so these tests never train: they check the committed
weights against their record, and that every kind of change (the declaration's
table, the reference module, the weights, the data) is reported as stale, in a
copy of the assignment's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder.config import available_assignments, load_assignment
from coursegen import reference_model as rm

REPO = Path(__file__).resolve().parents[1]
WITH_MODEL = [a for a in available_assignments() if load_assignment(a).reference_model is not None]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar-10-batches-py"


def test_assignment2_declares_its_reference_model() -> None:
    assert "assignment2" in WITH_MODEL
    spec = load_assignment("assignment2").reference_model
    assert (spec.weights, spec.recipe, spec.data, spec.epochs, spec.seed) == (
        "my_model_weights.npz", "cs231n_image_classifier", "cifar10", 10, 0)


@pytest.mark.parametrize("assignment", WITH_MODEL)
def test_committed_weights_match_their_record(assignment: str) -> None:
    """Fails when the weights are stale: retrain (python -m coursegen.reference_model A) and commit."""
    reasons = rm.stale_reasons(assignment, REPO, None)
    assert not reasons, (f"{assignment}'s reference weights are stale: {reasons}; run "
                         f"python -m coursegen.reference_model {assignment} and commit the weights and record")
    record = json.loads(rm.record_path(assignment, REPO).read_text())
    assert record["trained"]["epochs"] == load_assignment(assignment).reference_model.epochs


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course root holding only what Assignment 2's reference model is made of."""
    spec = load_assignment("assignment2").reference_model
    root = tmp_path / "course"
    suite = root / "autograder" / "suites" / "assignment2"
    suite.mkdir(parents=True)
    for name in ("tasks.toml", rm.RECORD):
        shutil.copy(REPO / "autograder" / "suites" / "assignment2" / name, suite / name)
    for rel in (spec.weights, spec.module):
        (root / "source" / "assignment2" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "source" / "assignment2" / rel, root / "source" / "assignment2" / rel)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


CHANGES = {
    "epochs": (lambda r: _edit(r / "autograder/suites/assignment2/tasks.toml", "epochs = 10", "epochs = 9"),
               "the [reference_model] table of the declaration changed"),
    "seed": (lambda r: _edit(r / "autograder/suites/assignment2/tasks.toml", "seed = 0", "seed = 1"),
             "the [reference_model] table of the declaration changed"),
    "module": (lambda r: _edit(r / "source/assignment2/cs231n/pytorch_models.py", "MAX_EPOCHS = 10",
                               "MAX_EPOCHS = 10  # edited"), "cs231n/pytorch_models.py changed"),
    "weights": (lambda r: _flip_a_byte(r / "source/assignment2/my_model_weights.npz"),
                "my_model_weights.npz is not the file that was trained"),
    "no record": (lambda r: (r / "autograder/suites/assignment2" / rm.RECORD).unlink(), "is missing"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_makes_the_weights_stale(course: Path, change: str, tmp_path: Path) -> None:
    empty = tmp_path / "nodata"  # no copy of the data: the data cannot be compared
    empty.mkdir()
    assert rm.stale_reasons("assignment2", course, empty) == [], "the untouched copy is stale"
    assert rm.main(["assignment2", "--root", str(course), "--data-dir", str(empty), "--check"]) == 0
    edit, reason = CHANGES[change]
    edit(course)
    reasons = rm.stale_reasons("assignment2", course, empty)
    assert len(reasons) == 1 and reason in reasons[0], f"{change}: {reasons}"
    assert rm.main(["assignment2", "--root", str(course), "--data-dir", str(empty), "--check"]) == 1


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="the course's offline CIFAR-10 is not beside the checkout")
def test_other_data_makes_the_weights_stale(course: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SHARED_CIFAR, data / SHARED_CIFAR.name)
    assert rm.stale_reasons("assignment2", course, data) == [], "the same data is reported as other data"
    meta = data / SHARED_CIFAR.name / "batches.meta"
    meta.write_bytes(meta.read_bytes() + b"\0")
    reasons = rm.stale_reasons("assignment2", course, data)
    assert len(reasons) == 1 and "is not the data the weights were trained on" in reasons[0], reasons


def test_an_assignment_without_a_reference_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert rm.main(["assignment1", "--root", str(REPO), "--check"]) == 1
    assert "assignment1 declares no [reference_model]" in capsys.readouterr().err


def test_the_command_trains_from_the_declaration_and_records_it(course: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The generic command hands the declared settings to the declared recipe (replaced here by a
    stand-in that writes a file: real training takes minutes) and records fresh weights."""
    calls = []

    def recipe(pm, data, data_dir, out, *, epochs, seed, threads, **options):
        calls.append((data, epochs, seed, options, callable(getattr(pm, "build_my_model", None))))
        out.write_bytes(b"weights trained with seed %d" % seed)
        return "stand-in recipe"

    monkeypatch.setitem(rm.RECIPES, "cs231n_image_classifier", recipe)
    empty = tmp_path / "nodata"
    empty.mkdir()
    assert rm.stale_reasons("assignment2", course, empty) != [], "the stand-in recipe's code is another recipe"
    assert rm.main(["assignment2", "--root", str(course), "--data-dir", str(empty)]) == 0
    assert calls == [("cifar10", 10, 0, {"batch_size": 64, "lr": 0.1}, True)]
    assert (course / "source/assignment2/my_model_weights.npz").read_bytes() == b"weights trained with seed 0"
    record = json.loads(rm.record_path("assignment2", course).read_text())
    assert record["how"] == "trained" and record["sha256"]["data"] is None, record
    assert rm.stale_reasons("assignment2", course, empty) == []
