"""Accuracy verdicts come from plain data the grader checks, never from the student's word.

Each case is the reference submission with one attack appended to a module or
one file replaced, graded on the tasks the attack targets: the tests the attack
aims at must fail, and every other test of those tasks (the honest part) must
pass, with a complete report and no internal error.

- A ``Solver`` that trains nothing and reports perfect accuracies (its
  ``check_accuracy`` and histories): the grader scores the parameters it fetches.
- A linear classifier that trains nothing and whose ``predict`` looks the
  evaluation rows up in a table of the course data's labels: the grader scores
  the weights ``W`` on rows it draws, without ``predict``.
- The PyTorch model: untrained weights beside a ``build_my_model`` that would
  look labels up, a weights file without its description, or a description
  with a layer outside the allow-list: the grader rebuilds the model from the
  description without student code, so none of them earns the task.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from autograder import data, netspec
from autograder.runner import grade
from coursegen.mutants import build_reference_submission

REPO = Path(__file__).resolve().parents[1]
SEED = 31337
MARK = "# HOSTILE CORPUS (tests/test_verdicts.py)"

SOLVER_REPORTS_PERFECT = f"""
{MARK}: a Solver that trains nothing and reports perfect accuracy.
def _train(self):
    self.loss_history = [0.0]
    self.train_acc_history = [1.0]
    self.val_acc_history = [1.0]
    self.best_val_acc = 1.0


def _check_accuracy(self, X, y, num_samples=None, batch_size=100):
    return 1.0


Solver.train = _train
Solver.check_accuracy = _check_accuracy
"""

LINEAR_LOOKUP = f"""
{MARK}: train nothing; predict looks the course data's rows up in a table of labels.
import hashlib as _hashlib
from pathlib import Path as _Path

import numpy as _np

with _np.load(_Path(__file__).with_name("_labels.npz")) as _table:
    _LABELS = dict(zip(_table["keys"].tolist(), _table["labels"].tolist()))


def _train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False):
    if self.W is None:
        self.W = 0.001 * _np.random.randn(X.shape[1], int(_np.max(y)) + 1)
    return [0.0] * num_iters


_honest_predict = LinearClassifier.predict


def _predict(self, X):
    honest = _honest_predict(self, X)
    found = [_LABELS.get(_hashlib.sha1(row.tobytes()).hexdigest()) for row in _np.asarray(X)]
    return _np.array([h if f is None else f for h, f in zip(honest, found)])


LinearClassifier.train = _train
LinearClassifier.predict = _predict
"""

MY_MODEL_LOOKUP = f"""
{MARK}: a model that would answer from a lookup table, if the grader ran it.
class _Lookup(nn.Module):
    def forward(self, x):
        scores = torch.zeros(len(x), 10)
        scores[:, 3] = 1.0
        return scores


def build_my_model():
    return _Lookup()


def load_weights(model, path=WEIGHTS_FILE):
    return model
"""


def _outcomes(report, task: str) -> dict[str, str]:
    [result] = [t for t in report.tasks if t.id == task]
    return {t.name.split("::")[-1].split("[")[0]: t.outcome for t in result.tests}


def _grade(submission: Path, assignment: str, tasks: list[str], data_dir: Path, tmp: Path):
    report = grade(submission, assignment, tasks=tasks, seed=SEED, data_dir=data_dir,
                   results_path=tmp / "results.json")
    assert not report.internal_errors, report.internal_errors
    written = json.loads((tmp / "results.json").read_text())
    assert len(written["tests"]) == len(report.tasks)
    return report


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for assignment in ("assignment1", "assignment2"):
        build_reference_submission(REPO / "source" / assignment, root / assignment)
        out[assignment] = root / assignment
    return out


def _copy(references: dict[str, Path], assignment: str, dest: Path) -> Path:
    shutil.copytree(references[assignment], dest)
    return dest


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")


@pytest.mark.slow
def test_a1_solver_reporting_perfect_accuracy_loses_the_training_test(references, course_data_dir,
                                                                        tmp_path):
    sub = _copy(references, "assignment1", tmp_path / "sub")
    _append(sub / "cs231n" / "solver.py", SOLVER_REPORTS_PERFECT)
    report = _grade(sub, "assignment1", ["two_layer_net_loss"], course_data_dir, tmp_path)
    outcomes = _outcomes(report, "two_layer_net_loss")
    assert outcomes.pop("test_two_layer_net_solver_accuracy") == "failed"
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes


@pytest.mark.slow
def test_a1_lookup_table_predict_loses_linear_train(references, course_data_dir, tmp_path):
    arrays, _source, _fp = data.cifar(course_data_dir)
    rows = np.concatenate([arrays["X_val"], arrays["X_test"]])
    labels = np.concatenate([arrays["y_val"], arrays["y_test"]])
    keys = np.array([hashlib.sha1(np.ascontiguousarray(r).tobytes()).hexdigest() for r in rows])
    sub = _copy(references, "assignment1", tmp_path / "sub")
    lib = sub / "cs231n" / "classifiers"
    np.savez(lib / "_labels.npz", keys=keys, labels=labels)
    _append(lib / "linear_classifier.py", LINEAR_LOOKUP)
    report = _grade(sub, "assignment1", ["linear_train", "linear_predict"], course_data_dir, tmp_path)
    assert set(_outcomes(report, "linear_train").values()) == {"failed"}
    assert set(_outcomes(report, "linear_predict").values()) == {"passed"}


@pytest.mark.slow
def test_a2_solver_forging_histories_loses_the_training_tests(references, course_data_dir, tmp_path):
    sub = _copy(references, "assignment2", tmp_path / "sub")
    _append(sub / "cs231n" / "solver.py", SOLVER_REPORTS_PERFECT)
    report = _grade(sub, "assignment2", ["fc_net_loss"], course_data_dir, tmp_path)
    outcomes = _outcomes(report, "fc_net_loss")
    assert outcomes.pop("test_fc_net_overfits_small_data") == "failed"
    assert outcomes.pop("test_fc_net_short_training_accuracy") == "failed"
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes


def _untrained_weights(references: dict[str, Path], path: Path, *, describe: bool = True,
                       layers: list | None = None) -> None:
    """Weights of a fresh build_my_model (the reference's architecture), saved as data."""
    import torch  # noqa: F401 - the reference library needs it

    from autograder.plugin import load_reference

    pm = load_reference(REPO, "assignment2", "cs231n").pytorch_models
    model = pm.build_my_model()
    arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    if describe:
        description = pm.describe_model(model)
        if layers is not None:
            description["layers"] = layers
        arrays[netspec.ARCH_KEY] = np.frombuffer(json.dumps(description).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _real_cifar(course_data_dir: Path) -> bool:
    return not data.cifar(course_data_dir)[1].startswith("generated")


@pytest.mark.slow
def test_a2_my_model_reference_and_attacks(references, course_data_dir, tmp_path):
    weights = "my_model_weights.npz"
    honest = _grade(references["assignment2"], "assignment2", ["pytorch_my_model"],
                    course_data_dir, tmp_path)
    [task] = [t for t in honest.tasks if t.id == "pytorch_my_model"]
    if _real_cifar(course_data_dir):
        assert task.score == task.points, task.tests
        # a pass says what was measured and what was required (issue 11, item 14)
        [noted] = [t.note for t in task.tests if t.note]
        assert "test images correctly; required: " in noted and "% on this data" in noted, noted
    else:  # a model trained on CIFAR-10 cannot be judged on generated images: said, not passed
        assert task.score == 0 and task.not_graded and "not gradable" in task.not_graded

    cases = {
        "lookup": dict(append=MY_MODEL_LOOKUP, describe=True, layers=None,
                       message="below the"),
        "no_description": dict(append=None, describe=False, layers=None,
                               message="holds no model description"),
        "forbidden_layer": dict(append=None, describe=True,
                                layers=[{"type": "Lambda", "args": {}}],
                                message="is not allowed"),
    }
    for name, case in cases.items():
        sub = _copy(references, "assignment2", tmp_path / name)
        if case["append"]:
            _append(sub / "cs231n" / "pytorch_models.py", case["append"])
        _untrained_weights(references, sub / weights, describe=case["describe"],
                           layers=case["layers"])
        (tmp_path / name / "out").mkdir()
        report = _grade(sub, "assignment2", ["pytorch_my_model"], course_data_dir,
                        tmp_path / name / "out")
        [task] = [t for t in report.tasks if t.id == "pytorch_my_model"]
        assert task.score == 0, (name, task.tests)
        if _real_cifar(course_data_dir) or name != "lookup":
            [test] = task.tests
            assert test.outcome == "failed" and case["message"] in test.message, (name, test)
