"""The stability tests grade what the instructions ask: "shift by the maximum".

The stubs' TODOs, the self-checks and the failure messages of every softmax task
(Assignment 1's ``softmax_loss`` layer and ``softmax_loss_naive``/``_vectorized``
classifier, Assignment 2's ``softmax_loss`` layer) ask the student to shift each
row of scores by its maximum. A student who does exactly that the textbook way
(shift, exponentiate, normalise to probabilities, then take the log: no
log-sum-exp) must get full marks on every one of them, and a student who skips
the shift must still lose the stability test with a message saying to shift.
Each submission is the reference with the softmax functions replaced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.config import load_assignment
from autograder.runner import grade

REPO = Path(__file__).resolve().parents[1]
SEED = 20261207

_LAYER = '''
import numpy as _np


def softmax_loss(x, y):
    {shift}
    probs = _np.exp(scores)
    probs = probs / _np.sum(probs, axis=1, keepdims=True)
    n = x.shape[0]
    loss = -_np.sum(_np.log(probs[_np.arange(n), y])) / n
    dx = probs.copy()
    dx[_np.arange(n), y] -= 1
    return loss, dx / n
'''

_CLASSIFIER = '''
import numpy as _np


def softmax_loss_naive(W, X, y, reg):
    loss = 0.0
    dW = _np.zeros(W.shape)
    for i in range(X.shape[0]):
        scores = X[i].dot(W)
        {shift_row}
        probs = _np.exp(scores) / _np.sum(_np.exp(scores))
        loss -= _np.log(probs[y[i]])
        for j in range(W.shape[1]):
            dW[:, j] += (probs[j] - (j == y[i])) * X[i]
    loss = loss / X.shape[0] + reg * _np.sum(W * W)
    return loss, dW / X.shape[0] + 2 * reg * W


def softmax_loss_vectorized(W, X, y, reg):
    x = X.dot(W)
    {shift}
    probs = _np.exp(scores)
    probs = probs / _np.sum(probs, axis=1, keepdims=True)
    n = X.shape[0]
    loss = -_np.sum(_np.log(probs[_np.arange(n), y])) / n + reg * _np.sum(W * W)
    dscores = probs.copy()
    dscores[_np.arange(n), y] -= 1
    return loss, X.T.dot(dscores) / n + 2 * reg * W
'''

SHIFTED = {"shift": "scores = x - _np.max(x, axis=1, keepdims=True)",
           "shift_row": "scores = scores - _np.max(scores)"}
UNSHIFTED = {"shift": "scores = x", "shift_row": "pass"}

# (assignment, {module: template}, tasks graded: the softmax tasks and those built on them)
CASES = [
    ("assignment1", {"cs231n/layers.py": _LAYER, "cs231n/classifiers/softmax.py": _CLASSIFIER},
     ["softmax_loss", "softmax_loss_naive", "softmax_loss_vectorized", "linear_train",
      "two_layer_net_loss"]),
    ("assignment2", {"cs231n/layers.py": _LAYER}, ["softmax_loss", "fc_net_loss"]),
]
#: Tasks with a stability test: the unshifted version must lose points there.
STABILITY_TASKS = {"assignment1": ["softmax_loss", "softmax_loss_vectorized"],
                   "assignment2": ["softmax_loss"]}


def _submission(tmp_path: Path, assignment: str, modules: dict[str, str],
                fill: dict[str, str]) -> Path:
    """The reference of ``assignment`` with the softmax functions replaced."""
    from coursegen.mutants import build_reference_submission

    sub = tmp_path / "submission"
    build_reference_submission(REPO / "source" / assignment, sub)
    for module, template in modules.items():
        with open(sub / module, "a", encoding="utf-8") as fh:
            fh.write("\n\n# a student's textbook softmax\n" + textwrap.dedent(template).format(**fill))
    return sub


def _grade(tmp_path: Path, assignment: str, modules: dict[str, str], fill: dict[str, str],
           tasks: list[str]) -> dict:
    sub = _submission(tmp_path, assignment, modules, fill)
    results = tmp_path / "results.json"
    grade(sub, assignment, suite_dir=REPO / "autograder" / "suites" / assignment,
          course_root=REPO, seed=SEED, results_path=results, tasks=tasks, timeout=60)
    shutil.rmtree(sub)
    return json.loads(results.read_text())


def _scores(data: dict) -> dict[str, float]:
    return {t["name"].split(":", 1)[0]: t["score"] for t in data["tests"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_textbook_shifted_softmax_gets_full_marks(case, tmp_path: Path) -> None:
    assignment, modules, tasks = case
    spec = load_assignment(assignment)
    full = {t: spec.tasks[t].points for t in tasks}
    data = _grade(tmp_path, assignment, modules, SHIFTED, tasks)
    got = {k: v for k, v in _scores(data).items() if k in full}
    assert got == full, f"{assignment} (seed {SEED}): textbook shifted softmax scored {got}, " \
                        f"full marks are {full}\n{data['output']}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_unshifted_softmax_loses_the_stability_test(case, tmp_path: Path) -> None:
    assignment, modules, _ = case
    tasks = STABILITY_TASKS[assignment]
    full = {t: load_assignment(assignment).tasks[t].points for t in tasks}
    data = _grade(tmp_path, assignment, modules, UNSHIFTED, tasks)
    got = _scores(data)
    outputs = {t["name"].split(":", 1)[0]: t.get("output", "") for t in data["tests"]}
    for task in tasks:
        assert got[task] < full[task], f"{assignment} {task} (seed {SEED}): the unshifted softmax " \
                                       f"kept {got[task]}/{full[task]}"
        assert "shift each row by its maximum" in outputs[task], \
            f"{assignment} {task}: the failure does not say to shift:\n{outputs[task]}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_self_check_agrees(case, tmp_path: Path) -> None:
    """``submit.py check`` passes the textbook softmax and fails the unshifted one."""
    assignment, modules, _ = case
    softmax = [t for t in case[2] if t.startswith("softmax")]
    for fill, expected in ((SHIFTED, "PASS"), (UNSHIFTED, None)):
        sub = _submission(tmp_path / expected if expected else tmp_path / "unshifted",
                          assignment, modules, fill)
        res = subprocess.run([sys.executable, "submit.py", "check", *softmax], cwd=sub, text=True,
                             capture_output=True, timeout=300, check=False)
        status = {ln.split()[1]: ln.split()[0] for ln in res.stdout.splitlines()
                  if ln.split() and ln.split()[0] in ("PASS", "FAIL", "TODO")}
        if expected:
            assert status == dict.fromkeys(softmax, "PASS"), res.stdout + res.stderr
        else:
            for task in STABILITY_TASKS[assignment]:
                assert status.get(task) == "FAIL", f"{task}: {res.stdout}"
            assert "1000" in res.stdout and "maximum" in res.stdout, res.stdout
