"""Hidden tests of Assignment 1's layers: affine, ReLU, and the SVM / softmax losses.

Every case is a row of the tables below; the test functions read them. The
student's code runs in the worker (``student.lib...``), the reference and every
comparison in the grader. Gradients are checked twice: against the reference's
analytic gradient (tight) and against float64 central differences of the
REFERENCE forward pass (so a student cannot pass with a wrong forward and a
matching wrong backward).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close, numerical_gradient
from autograder.values import as_float, as_tuple

#: Tolerances: forward results of float64 code, analytic vs analytic gradients,
#: and analytic vs central differences (h = 1e-6).
RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7

# (id, N, input shape (d_1, ..., d_k), M)
AFFINE_CASES = [
    ("vector", 3, (5,), 4),
    ("image", 2, (4, 5, 6), 3),
    ("batch", 10, (3, 2, 2), 7),
]

# (id, shape)
RELU_CASES = [
    ("matrix", (10, 8)),
    ("4d", (2, 3, 4, 5)),
    ("vector", (17,)),
]

# (id, N, C, score scale)
LOSS_CASES = [
    ("binary", 4, 2, 1.0),
    ("small", 20, 10, 0.5),
    ("wide", 50, 10, 3.0),
]


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _affine_inputs(rng: np.random.Generator, n: int, dims: tuple[int, ...], m: int):
    x = rng.standard_normal((n, *dims))
    w = rng.standard_normal((int(np.prod(dims)), m))
    b = rng.standard_normal(m)
    return x, w, b


@pytest.mark.affine_forward
@pytest.mark.parametrize("case", AFFINE_CASES, ids=_ids(AFFINE_CASES))
def test_affine_forward(student, reference, rng, case):
    _, n, dims, m = case
    x, w, b = _affine_inputs(rng, n, dims, m)
    out, _cache = as_tuple(student.lib.layers.affine_forward(x, w, b),
                           name="affine_forward's return value (out, cache)", length=2)
    expected, _ = reference.layers.affine_forward(x, w, b)
    assert_close(out, expected, name="out", rtol=RTOL, atol=ATOL)


@pytest.mark.affine_backward
@pytest.mark.parametrize("case", AFFINE_CASES, ids=_ids(AFFINE_CASES))
def test_affine_backward(student, reference, rng, case):
    _, n, dims, m = case
    x, w, b = _affine_inputs(rng, n, dims, m)
    dout = rng.standard_normal((n, m))
    # The student's own forward makes the cache their backward expects.
    _out, cache = as_tuple(student.lib.layers.affine_forward(x, w, b),
                           name="affine_forward's return value (out, cache)", length=2)
    dx, dw, db = as_tuple(student.lib.layers.affine_backward(dout, cache),
                          name="affine_backward's return value (dx, dw, db)", length=3)

    _, ref_cache = reference.layers.affine_forward(x, w, b)
    ref_dx, ref_dw, ref_db = reference.layers.affine_backward(dout, ref_cache)
    assert_close(dx, ref_dx, name="dx", rtol=RTOL, atol=ATOL)
    assert_close(dw, ref_dw, name="dw", rtol=RTOL, atol=ATOL)
    assert_close(db, ref_db, name="db", rtol=RTOL, atol=ATOL)

    fwd = reference.layers.affine_forward
    num_dx = numerical_gradient(lambda x_: fwd(x_, w, b)[0], x.copy(), dout)
    num_dw = numerical_gradient(lambda w_: fwd(x, w_, b)[0], w.copy(), dout)
    num_db = numerical_gradient(lambda b_: fwd(x, w, b_)[0], b.copy(), dout)
    assert_close(dx, num_dx, name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dw, num_dw, name="dw (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(db, num_db, name="db (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


def _relu_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normals kept at least 1e-3 away from the kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-3, np.copysign(1e-3, x) + x, x)


@pytest.mark.relu_forward
@pytest.mark.parametrize("case", RELU_CASES, ids=_ids(RELU_CASES))
def test_relu_forward(student, reference, rng, case):
    _, shape = case
    x = _relu_input(rng, shape)
    out, _cache = as_tuple(student.lib.layers.relu_forward(x),
                           name="relu_forward's return value (out, cache)", length=2)
    expected, _ = reference.layers.relu_forward(x)
    assert_close(out, expected, name="out", rtol=RTOL, atol=ATOL)


@pytest.mark.relu_backward
@pytest.mark.parametrize("case", RELU_CASES, ids=_ids(RELU_CASES))
def test_relu_backward(student, reference, rng, case):
    _, shape = case
    x = _relu_input(rng, shape)
    dout = rng.standard_normal(shape)
    _out, cache = as_tuple(student.lib.layers.relu_forward(x),
                           name="relu_forward's return value (out, cache)", length=2)
    dx = student.lib.layers.relu_backward(dout, cache)

    _, ref_cache = reference.layers.relu_forward(x)
    assert_close(dx, reference.layers.relu_backward(dout, ref_cache), name="dx", rtol=RTOL, atol=ATOL)
    num_dx = numerical_gradient(lambda x_: reference.layers.relu_forward(x_)[0], x.copy(), dout)
    assert_close(dx, num_dx, name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


def _loss_inputs(rng: np.random.Generator, n: int, c: int, scale: float):
    x = scale * rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    return x, y


def _check_layer_loss(student_fn, reference_fn, x: np.ndarray, y: np.ndarray, what: str) -> None:
    loss, dx = as_tuple(student_fn(x, y), name=f"{what}'s return value (loss, dx)", length=2)
    loss = as_float(loss, name=f"{what}'s loss")
    ref_loss, ref_dx = reference_fn(x, y)
    assert_close(loss, np.float64(ref_loss), name="loss", rtol=RTOL, atol=ATOL)
    assert_close(dx, ref_dx, name="dx", rtol=RTOL, atol=ATOL)
    num_dx = numerical_gradient(lambda x_: reference_fn(x_, y)[0], x.copy())
    assert_close(dx, num_dx, name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


@pytest.mark.svm_loss
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_svm_loss(student, reference, rng, case):
    _, n, c, scale = case
    x, y = _loss_inputs(rng, n, c, scale)
    _check_layer_loss(student.lib.layers.svm_loss, reference.layers.svm_loss, x, y, "svm_loss")


@pytest.mark.softmax_loss
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_softmax_loss(student, reference, rng, case):
    _, n, c, scale = case
    x, y = _loss_inputs(rng, n, c, scale)
    _check_layer_loss(student.lib.layers.softmax_loss, reference.layers.softmax_loss, x, y, "softmax_loss")


@pytest.mark.softmax_loss
def test_softmax_loss_is_stable(student, reference, rng):
    """Scores in the thousands must not overflow (shift by the row maximum)."""
    x, y = _loss_inputs(rng, 8, 5, 1.0)
    x = x + 1000.0
    loss, dx = as_tuple(student.lib.layers.softmax_loss(x, y),
                        name="softmax_loss's return value (loss, dx)", length=2)
    loss = as_float(loss, name="softmax_loss's loss")
    ref_loss, ref_dx = reference.layers.softmax_loss(x, y)
    assert np.isfinite(loss), f"loss is {loss} for scores around 1000: shift each row by its maximum"
    assert_close(loss, np.float64(ref_loss), name="loss", rtol=RTOL, atol=ATOL)
    assert_close(dx, ref_dx, name="dx", rtol=RTOL, atol=ATOL)
