"""Hostile submissions against the speed tests get exactly the points of their honest part;
ordinary vectorized solutions written unlike the reference get full points.

Each case is Assignment 1's reference submission with one graded function
replaced (code appended to its module rebinds the name), graded by the real
grader on that function's task only. A submission that detects the speed test
and takes a fast wrong path, remembers answers, or returns garbage once called
repeatedly must fail the speed test (like the honest-but-slow version of the
same code) and pass every other test of the task: score = points * (n - 1) / n.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.runner import grade
from coursegen.mutants import build_reference_submission

REPO = Path(__file__).resolve().parents[1]
SEED = 2024


@dataclass(frozen=True)
class SpeedHostile:
    name: str
    task: str
    speed_test: str  # the speed test's name in the report
    file: str  # module (under the submission) the code is appended to
    code: str
    message: str  # the speed test's failure message contains this


CASES = [
    SpeedHostile(
        name="svm_fast_wrong_path_when_timed",
        task="svm_loss_vectorized",
        speed_test="test_linear.py::test_svm_vectorized_speed",
        file="cs231n/classifiers/linear_svm.py",
        # correct but slow (the naive loops) on the small inputs of the checked
        # calls; a fast wrong answer once it believes it is being timed: big
        # inputs, or called again and again in one worker
        code='''
_CALLS = [0]
_honest_slow = svm_loss_naive


def svm_loss_vectorized(W, X, y, reg):
    _CALLS[0] += 1
    if X.shape[0] >= 200 or _CALLS[0] > 2:
        return 0.0, np.zeros_like(W)
    return _honest_slow(W, X, y, reg)
''',
        message="returned a wrong result",
    ),
    SpeedHostile(
        name="knn_remembers_answers_by_bytes_and_id",
        task="knn_no_loops",
        speed_test="test_knn.py::test_distances_no_loops_speed",
        file="cs231n/classifiers/k_nearest_neighbor.py",
        # the two loops, remembered: the same bytes or the same object (id) as
        # the last call get the last answer at once
        code='''
def _remembering_no_loops(self, X):
    memo = self.__dict__.setdefault("_memo", {})
    for key in (("bytes", X.tobytes()), ("id", id(X))):
        if key in memo:
            return memo[key]
    dists = self.compute_distances_two_loops(X)
    memo.clear()
    memo[("bytes", X.tobytes())] = dists
    memo[("id", id(X))] = dists
    return dists


KNearestNeighbor.compute_distances_no_loops = _remembering_no_loops
''',
        message="",  # too slow, or a wrong result when a new array reuses an old id
    ),
    SpeedHostile(
        name="softmax_garbage_when_called_repeatedly",
        task="softmax_loss_vectorized",
        speed_test="test_linear.py::test_softmax_vectorized_speed",
        file="cs231n/classifiers/softmax.py",
        # the reference's fast code for the first two calls of a worker, garbage after
        code='''
_CALLS = [0]
_honest_fast = softmax_loss_vectorized


def softmax_loss_vectorized(W, X, y, reg):
    _CALLS[0] += 1
    if _CALLS[0] > 2:
        return 2.3, np.ones_like(W)
    return _honest_fast(W, X, y, reg)
''',
        message="returned a wrong result",
    ),
]


@dataclass(frozen=True)
class HonestControl:
    name: str
    task: str
    file: str
    code: str


#: Ordinary vectorized solutions written differently from the reference: full points.
HONEST = [
    HonestControl(
        name="svm_vectorized_one_hot",
        task="svm_loss_vectorized",
        file="cs231n/classifiers/linear_svm.py",
        code='''
def svm_loss_vectorized(W, X, y, reg):
    num_train, num_classes = X.shape[0], W.shape[1]
    one_hot = np.eye(num_classes)[y]
    scores = X @ W
    correct = np.sum(scores * one_hot, axis=1, keepdims=True)
    margins = np.where(one_hot == 1, 0.0, np.maximum(0.0, scores - correct + 1.0))
    loss = margins.sum() / num_train + reg * np.sum(W ** 2)
    positive = (margins > 0).astype(float)
    positive -= one_hot * positive.sum(axis=1, keepdims=True)
    dW = X.T @ positive / num_train + 2 * reg * W
    return loss, dW
''',
    ),
    HonestControl(
        name="knn_no_loops_einsum",
        task="knn_no_loops",
        file="cs231n/classifiers/k_nearest_neighbor.py",
        code='''
def _einsum_no_loops(self, X):
    test_sq = np.einsum("ij,ij->i", X, X)[:, np.newaxis]
    train_sq = np.einsum("ij,ij->i", self.X_train, self.X_train)[np.newaxis, :]
    return np.sqrt(np.maximum(test_sq + train_sq - 2.0 * X @ self.X_train.T, 0.0))


KNearestNeighbor.compute_distances_no_loops = _einsum_no_loops
''',
    ),
]


@pytest.fixture(scope="module")
def reference_submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("speed-hostile") / "reference"
    build_reference_submission(REPO / "source" / "assignment1", dest)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_speed_hostile_gets_exactly_its_honest_points(case: SpeedHostile,
                                                      reference_submission: Path,
                                                      tmp_path: Path) -> None:
    sub = tmp_path / case.name
    shutil.copytree(reference_submission, sub)
    target = sub / case.file
    target.write_text(target.read_text(encoding="utf-8") + "\n" + case.code, encoding="utf-8")
    report = grade(sub, "assignment1", tasks=[case.task], seed=SEED, quiet=True)
    assert not report.internal_errors and not report.submission_problem, report.summary()
    (task,) = [t for t in report.tasks if t.id == case.task]
    outcomes = {t.name: (t.outcome, t.message) for t in task.tests}
    assert case.speed_test in outcomes, f"{case.speed_test} not in {sorted(outcomes)}"
    speed_outcome, speed_message = outcomes.pop(case.speed_test)
    assert speed_outcome == "failed", f"{case.name}: the speed test {speed_outcome}"
    assert case.message in speed_message, speed_message
    others = {name: o for name, o in outcomes.items() if o[0] != "passed"}
    assert not others, f"{case.name}: tests other than the speed test did not pass: {others}"
    expected = task.points * len(outcomes) / (len(outcomes) + 1)
    assert task.score == pytest.approx(expected, abs=0.006), f"{case.name}: {task.score} != {expected}"


@pytest.mark.slow
@pytest.mark.parametrize("case", HONEST, ids=[c.name for c in HONEST])
def test_ordinary_vectorized_solution_gets_full_points(case: HonestControl,
                                                       reference_submission: Path,
                                                       tmp_path: Path) -> None:
    sub = tmp_path / case.name
    shutil.copytree(reference_submission, sub)
    target = sub / case.file
    target.write_text(target.read_text(encoding="utf-8") + "\n" + case.code, encoding="utf-8")
    report = grade(sub, "assignment1", tasks=[case.task], seed=SEED, quiet=True)
    (task,) = [t for t in report.tasks if t.id == case.task]
    failed = {t.name: t.message for t in task.tests if t.outcome != "passed"}
    assert not failed and task.score == task.points, f"{case.name}: {failed}"
