"""Hidden tests of Assignment 1's linear classifiers: SVM and softmax losses, SGD, predict.

The case tables come first; the test functions read them. Losses are compared
with the reference (tight), their gradients with central differences of the
REFERENCE loss, the naive and vectorized versions with each other, and the
vectorized versions must beat the reference's naive loops by a margin.
Training runs on the ``cifar`` fixture.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from autograder.checks import (
    assert_close,
    assert_speedup,
    expect_reference,
    numerical_gradient,
    time_call,
)
from autograder.evaluation import accuracy, fetch_array, held_out
from autograder.values import as_array, as_float, as_object, as_tuple

RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7

# (id, D, C, N, reg, weight scale)
LOSS_CASES = [
    ("tiny", 5, 3, 4, 0.0, 1e-1),
    ("small", 10, 4, 20, 0.1, 1e-2),
    ("medium", 30, 10, 50, 1.5, 1e-3),
    ("no_reg", 20, 10, 40, 0.0, 1e-2),
    ("big_reg", 8, 5, 16, 50.0, 1e-1),
]

#: Gradient checks cost O(D * C) loss evaluations: only for cases with D * C <= this.
GRADCHECK_MAX_SIZE = 200

# Speed: (D, C, N) for "vectorized vs the reference's naive loops" and the factor,
# both timed in the same run: SPEED_ROUNDS interleaved rounds, each SPEED_REPEAT
# student calls on fresh W, X, y (after a warm-up call; every result checked; see
# Sandbox.timeit for what is timed) and one reference call (CPU time of the
# grader's thread); best against best. D is small because the fixed cost of a
# call (three requests to the worker) dominates: with the other core busy (and
# a machine shared with other jobs) the reference solution measures 21-64x and
# a solution looping over the examples 0.3-1.1x (benchmarks/perf_stability.py).
SPEED_SHAPE = (32, 10, 1000)
SPEED_FACTOR = 10.0
SPEED_ROUNDS = 5
SPEED_REPEAT = 5

# Training on CIFAR: classifier -> hyperparameters (same for student and reference).
TRAIN_ROWS = 2000
EVAL_ROWS = 500  # held-out rows drawn per seed from the validation + test splits
TRAIN_CASES = [
    ("LinearSVM", {"learning_rate": 1e-7, "reg": 2.5e4, "num_iters": 300, "batch_size": 200}),
    ("Softmax", {"learning_rate": 5e-7, "reg": 2.5e4, "num_iters": 300, "batch_size": 200}),
]
ACC_MARGIN = 0.03  # the student may be this much below the reference
ACC_FLOOR = 0.20  # and never below this (chance is 0.10)

# (id, N, D, C) for predict with fixed weights.
PREDICT_CASES = [("small", 7, 5, 3), ("cifar_like", 50, 3072, 10)]

LOSSES = ("svm", "softmax")


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _loss_fns(lib, kind: str):
    """(naive, vectorized) loss functions of ``lib`` for ``kind``."""
    if kind == "svm":
        mod = lib.classifiers.linear_svm
        return mod.svm_loss_naive, mod.svm_loss_vectorized
    mod = lib.classifiers.softmax
    return mod.softmax_loss_naive, mod.softmax_loss_vectorized


def _loss_inputs(rng: np.random.Generator, d: int, c: int, n: int, scale: float):
    W = scale * rng.standard_normal((d, c))
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    return W, X, y


def _check_loss(student_fn, reference_fn, W, X, y, reg, what: str = "the loss function") -> None:
    """Loss and dW vs the reference; dW also vs central differences of the reference loss."""
    loss, dW = _loss_and_grad(student_fn(W, X, y, reg), what)
    ref_loss, ref_dW = reference_fn(W, X, y, reg)
    assert_close(loss, np.float64(ref_loss), name="loss", rtol=RTOL, atol=ATOL)
    assert_close(dW, ref_dW, name="dW", rtol=RTOL, atol=ATOL)
    if W.size <= GRADCHECK_MAX_SIZE:
        num_dW = numerical_gradient(lambda W_: reference_fn(W_, X, y, reg)[0], W.copy())
        assert_close(dW, num_dW, name="dW (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


def _loss_and_grad(value, what: str):
    """``(loss, dW)`` from what a loss function returned, checked."""
    loss, dW = as_tuple(value, name=f"{what}'s return value (loss, dW)", length=2)
    return as_float(loss, name=f"{what}'s loss"), dW


def _check_agreement(naive, vectorized, W, X, y, reg) -> None:
    loss_n, dW_n = _loss_and_grad(naive(W, X, y, reg), "your naive version")
    loss_v, dW_v = _loss_and_grad(vectorized(W, X, y, reg), "your vectorized version")
    dW_n = as_array(dW_n, name="dW of your naive version", shape=W.shape)
    assert_close(loss_v, np.float64(loss_n), name="loss (vectorized vs your naive)", rtol=RTOL, atol=ATOL)
    assert_close(dW_v, dW_n, name="dW (vectorized vs your naive)", rtol=RTOL, atol=ATOL)


def _check_speed(student, student_fn, reference_fast, reference_naive, rng, seed,
                 label: str) -> None:
    d, c, n = SPEED_SHAPE
    W, X, y = _loss_inputs(rng, d, c, n, 1e-3)
    reg = 0.5
    reference_naive(W, X[:2], y[:2], reg)  # warm-up

    def fresh_inputs(r: np.random.Generator) -> tuple:
        return (*_loss_inputs(r, d, c, n, 1e-3), reg)

    # every timed call gets new W, X, y and its loss and dW are checked
    check = expect_reference(reference_fast, names=("loss", "dW"), rtol=RTOL, atol=ATOL)
    assert_speedup(
        lambda: student.timeit(student_fn, fresh_inputs, check, rng=rng, repeat=SPEED_REPEAT,
                               warmup=1),
        lambda: time_call(reference_naive, W, X, y, reg, repeat=1, warmup=0,
                          clock=time.thread_time),
        at_least=SPEED_FACTOR, name=label, seed=seed, rounds=SPEED_ROUNDS,
        inputs=f"W {W.shape}, X {X.shape}", reference_label="the reference's naive loops",
        hint="No Python loops over examples or classes",
        reference_cpu_time=True,
    )


# --------------------------------------------------------------------------- SVM


@pytest.mark.svm_loss_naive
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_svm_loss_naive(student, reference, rng, case):
    _, d, c, n, reg, scale = case
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    _, ref_vec = _loss_fns(reference, "svm")  # the reference's two versions agree to ~1e-15
    _check_loss(student.lib.classifiers.linear_svm.svm_loss_naive, ref_vec, W, X, y, reg, "svm_loss_naive")


@pytest.mark.svm_loss_vectorized
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_svm_loss_vectorized(student, reference, rng, case):
    _, d, c, n, reg, scale = case
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    _, ref_vec = _loss_fns(reference, "svm")
    _check_loss(student.lib.classifiers.linear_svm.svm_loss_vectorized, ref_vec, W, X, y, reg, "svm_loss_vectorized")


@pytest.mark.svm_loss_vectorized
def test_svm_naive_vs_vectorized(student, rng):
    _, d, c, n, reg, scale = LOSS_CASES[2]
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    naive, vectorized = _loss_fns(student.lib, "svm")
    _check_agreement(naive, vectorized, W, X, y, reg)


@pytest.mark.svm_loss_vectorized
def test_svm_vectorized_speed(student, reference, rng, seed):
    ref_naive, ref_vec = _loss_fns(reference, "svm")
    _check_speed(student, student.lib.classifiers.linear_svm.svm_loss_vectorized, ref_vec,
                 ref_naive, rng, seed, "svm_loss_vectorized")


# ----------------------------------------------------------------------- softmax


@pytest.mark.softmax_loss_naive
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_softmax_loss_naive(student, reference, rng, case):
    _, d, c, n, reg, scale = case
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    _, ref_vec = _loss_fns(reference, "softmax")  # the reference's two versions agree to ~1e-15
    _check_loss(student.lib.classifiers.softmax.softmax_loss_naive, ref_vec, W, X, y, reg, "softmax_loss_naive")


@pytest.mark.softmax_loss_vectorized
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_softmax_loss_vectorized(student, reference, rng, case):
    _, d, c, n, reg, scale = case
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    _, ref_vec = _loss_fns(reference, "softmax")
    _check_loss(student.lib.classifiers.softmax.softmax_loss_vectorized, ref_vec, W, X, y, reg, "softmax_loss_vectorized")


@pytest.mark.softmax_loss_vectorized
def test_softmax_naive_vs_vectorized(student, rng):
    _, d, c, n, reg, scale = LOSS_CASES[2]
    W, X, y = _loss_inputs(rng, d, c, n, scale)
    naive, vectorized = _loss_fns(student.lib, "softmax")
    _check_agreement(naive, vectorized, W, X, y, reg)


@pytest.mark.softmax_loss_vectorized
def test_softmax_vectorized_is_stable(student, reference, rng):
    """Scores in the thousands must not overflow (shift every row by its maximum).

    Large scores, moderate differences: every score is about 1000 (a constant
    feature with weight 1000, the bias trick) and a row's scores differ by a few
    units, so exp overflows without the shift and every probability stays far
    from underflow with it; the textbook "shift, softmax, log" gets full marks.
    """
    W, X, y = _loss_inputs(rng, 10, 5, 12, 1.0)
    X[:, -1] = 1.0
    W[-1, :] = 1000.0
    loss, _dW = _loss_and_grad(student.lib.classifiers.softmax.softmax_loss_vectorized(W, X, y, 0.0),
                               "softmax_loss_vectorized")
    assert np.isfinite(loss), f"loss is {loss} for large scores: shift each row by its maximum"
    _check_loss(
        student.lib.classifiers.softmax.softmax_loss_vectorized,
        reference.classifiers.softmax.softmax_loss_vectorized,
        W, X, y, 0.0, "softmax_loss_vectorized",
    )


@pytest.mark.softmax_loss_vectorized
def test_softmax_vectorized_speed(student, reference, rng, seed):
    ref_naive, ref_vec = _loss_fns(reference, "softmax")
    _check_speed(student, student.lib.classifiers.softmax.softmax_loss_vectorized, ref_vec,
                 ref_naive, rng, seed, "softmax_loss_vectorized")


# ------------------------------------------------------------ training, predict


@pytest.mark.linear_train
@pytest.mark.parametrize("case", TRAIN_CASES, ids=_ids(TRAIN_CASES))
def test_linear_train_accuracy(student, reference, cifar, seed, secret_rng, case, reference_memo):
    name, hyper = case
    X_train = cifar["X_train"][:TRAIN_ROWS]
    y_train = cifar["y_train"][:TRAIN_ROWS]
    # Evaluation rows: drawn per seed from the validation and test splits, which
    # the worker never gets; the accuracy of the trained W is computed here.
    # secret_rng: the worker knows the test's seed, so the rows must not follow from it
    X_eval, y_eval = held_out(cifar, secret_rng, EVAL_ROWS)
    num_classes = int(max(y_train.max(), y_eval.max())) + 1
    W0 = 1e-3 * np.random.default_rng(seed).standard_normal((X_train.shape[1], num_classes))

    # The reference, trained the same way in the grader with the same seed
    # (remembered across submissions graded with the same seed and data).
    def train_reference() -> dict:
        saved = np.random.get_state()
        np.random.seed(seed % 2**32)  # the worker's global RNG starts from the same seed
        try:
            ref_clf = getattr(reference.classifiers, name)()
            ref_clf.W = W0.copy()
            hist = ref_clf.train(X_train, y_train, verbose=False, **hyper)
            acc = accuracy(X_eval @ ref_clf.W, y_eval)
        finally:
            np.random.set_state(saved)
        return {"acc": acc, "first": float(hist[0]), "last": float(hist[-1])}

    ref = reference_memo(train_reference, name=name, hyper=hyper, rows=TRAIN_ROWS, eval=EVAL_ROWS,
                         eval_rng="secret")
    ref_acc = ref["acc"]

    clf = as_object(getattr(student.lib.classifiers, name)(), name=f"{name}()")
    clf.W.set(W0.copy())
    history = clf.train(student.put(X_train), student.put(y_train), verbose=False, **hyper)
    assert isinstance(history, list) and len(history) == hyper["num_iters"], (
        f"{name}.train must return its loss history, a list of num_iters = {hyper['num_iters']} "
        f"numbers; got {type(history).__name__}"
        + (f" of length {len(history)}" if isinstance(history, list) else ""))
    W = fetch_array(clf.W.get(), f"{name}.W after training", W0.shape)
    acc = accuracy(X_eval @ W, y_eval)
    need = max(ref_acc - ACC_MARGIN, ACC_FLOOR)
    assert acc >= need, (
        f"{name}: the weights W after training with {hyper} on {len(y_train)} images classify "
        f"{acc:.3f} of {len(y_eval)} held-out images correctly; need >= {need:.3f} "
        f"(the reference trained the same way reaches {ref_acc:.3f})"
    )


@pytest.mark.linear_predict
@pytest.mark.parametrize("kind", ["LinearSVM", "Softmax"])
@pytest.mark.parametrize("case", PREDICT_CASES, ids=_ids(PREDICT_CASES))
def test_linear_predict(student, reference, rng, case, kind):
    _, n, d, c = case
    W = rng.standard_normal((d, c))
    X = rng.standard_normal((n, d))
    ref_clf = getattr(reference.classifiers, kind)()
    ref_clf.W = W
    expected = np.asarray(ref_clf.predict(X))
    clf = as_object(getattr(student.lib.classifiers, kind)(), name=f"{kind}()")
    clf.W.set(W)
    y_pred = as_array(clf.predict(X), name=f"{kind}.predict's return value", shape=expected.shape,
                      dtype="int")
    assert_close(y_pred, expected, name="y_pred", rtol=0, atol=0)
