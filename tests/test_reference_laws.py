"""Laws the reference libraries must obey, checked by hypothesis on many small inputs.

The hidden suites compare a submission with the reference, so the reference
itself must be right: fast layers equal the naive ones (any stride, padding,
non-square filters, pools that overlap or do not tile), every backward pass
matches central differences in float64, im2col and col2im are adjoint, the
vectorized losses and distances equal their loop versions. Each example draws
its inputs from a seed that hypothesis reports when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import (
    ConvGeometry,
    PoolGeometry,
    classification_problems,
    conv_geometries,
    pool_geometries,
    seeds,
)

from autograder.extensions import ensure_reference_built
from autograder.plugin import load_reference

REPO = Path(__file__).resolve().parents[1]
LAWS = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def a1():
    return load_reference(REPO, "assignment1", "cs231n")


@pytest.fixture(scope="module")
def a2():
    pytest.importorskip("Cython")
    ensure_reference_built(REPO / "source" / "assignment2" / "cs231n", "cs231n",
                           ("im2col_cython.pyx",))
    return load_reference(REPO, "assignment2", "cs231n")


def close(got, expected, what: str, rtol: float = 1e-9, atol: float = 1e-11) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    err = np.abs(got - expected)
    bound = atol + rtol * np.abs(expected)
    if np.any(err > bound):
        at = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(f"{what}: at index {tuple(int(i) for i in at)} got {got[at]!r}, "
                             f"expected {expected[at]!r} (abs error {err[at]:.3g}, "
                             f"tolerance {bound[at]:.3g})")


def numeric_grad(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray,
                 h: float = 1e-6) -> np.ndarray:
    """Central differences of sum(f() * dout) with respect to x (changed in place, restored)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.sum(f() * dout)
        x[i] = old - h
        minus = np.sum(f() * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


# -- Assignment 2: convolution -------------------------------------------------------


def _conv_inputs(g: ConvGeometry, seed: int):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(g.x_shape), rng.standard_normal(g.w_shape),
            rng.standard_normal(g.F))


@LAWS
@given(g=conv_geometries(), seed=seeds)
def test_fast_conv_equals_naive_conv(a2, g: ConvGeometry, seed: int) -> None:
    x, w, b = _conv_inputs(g, seed)
    out, cache = a2.fast_layers.conv_forward_fast(x, w, b, g.conv_param)
    ref, ref_cache = a2.layers.conv_forward_naive(x, w, b, g.conv_param)
    close(out, ref, f"conv_forward_fast vs naive, {g}")
    dout = np.random.default_rng(seed + 1).standard_normal(ref.shape)
    for name, got, exp in zip(("dx", "dw", "db"), a2.fast_layers.conv_backward_fast(dout, cache),
                              a2.layers.conv_backward_naive(dout, ref_cache), strict=True):
        close(got, exp, f"conv_backward_fast {name} vs naive, {g}")


@LAWS
@given(g=conv_geometries(max_side=5, max_field=3), seed=seeds)
def test_conv_backward_matches_central_differences(a2, g: ConvGeometry, seed: int) -> None:
    x, w, b = _conv_inputs(g, seed)
    out, cache = a2.layers.conv_forward_naive(x, w, b, g.conv_param)
    dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    dx, dw, db = a2.layers.conv_backward_naive(dout, cache)

    def fwd() -> np.ndarray:
        return a2.layers.conv_forward_naive(x, w, b, g.conv_param)[0]

    for name, arr, got in (("dx", x, dx), ("dw", w, dw), ("db", b, db)):
        close(got, numeric_grad(fwd, arr, dout), f"conv_backward_naive {name}, {g}",
              rtol=1e-6, atol=1e-8)


@LAWS
@given(g=conv_geometries(), seed=seeds)
def test_im2col_and_col2im_are_adjoint(a2, g: ConvGeometry, seed: int) -> None:
    """<im2col(x), c> == <x, col2im(c)>: col2im is exactly im2col's backward pass."""
    mod = a2.im2col_cython
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(g.x_shape)
    cols = mod.im2col_cython(x, g.HH, g.WW, g.pad, g.stride)
    c = rng.standard_normal(cols.shape)
    back = mod.col2im_cython(c, *g.x_shape, g.HH, g.WW, g.pad, g.stride)
    lhs, rhs = float(np.sum(cols * c)), float(np.sum(x * back))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs)), f"{g}: {lhs!r} != {rhs!r}"


# -- Assignment 2: max pooling ---------------------------------------------------------


@LAWS
@given(g=pool_geometries(), seed=seeds)
def test_fast_max_pool_equals_naive(a2, g: PoolGeometry, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal(g.x_shape)
    out, cache = a2.fast_layers.max_pool_forward_fast(x, g.pool_param)
    ref, ref_cache = a2.layers.max_pool_forward_naive(x, g.pool_param)
    close(out, ref, f"max_pool_forward_fast vs naive, {g}", rtol=0, atol=0)
    dout = np.random.default_rng(seed + 1).standard_normal(ref.shape)
    close(a2.fast_layers.max_pool_backward_fast(dout, cache),
          a2.layers.max_pool_backward_naive(dout, ref_cache),
          f"max_pool_backward_fast vs naive, {g}")


@LAWS
@given(g=pool_geometries(max_side=6), seed=seeds)
def test_max_pool_backward_matches_central_differences(a2, g: PoolGeometry, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal(g.x_shape)  # ties have probability 0
    out, cache = a2.layers.max_pool_forward_naive(x, g.pool_param)
    dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    close(a2.layers.max_pool_backward_naive(dout, cache),
          numeric_grad(lambda: a2.layers.max_pool_forward_naive(x, g.pool_param)[0], x, dout),
          f"max_pool_backward_naive dx, {g}", rtol=1e-6, atol=1e-8)


# -- Assignment 2: normalization -------------------------------------------------------


@LAWS
@given(n=st.integers(2, 8),
       d=st.integers(1, 6), seed=seeds)
def test_batchnorm_backward_forms_agree_with_central_differences(a2, n: int, d: int,
                                                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.standard_normal((n, d)), rng.standard_normal(d), rng.standard_normal(d)
    bn = {"mode": "train"}
    out, cache = a2.layers.batchnorm_forward(x, gamma, beta, dict(bn))
    dout = rng.standard_normal(out.shape)
    graph = a2.layers.batchnorm_backward(dout, cache)
    alt = a2.layers.batchnorm_backward_alt(dout, cache)

    def fwd() -> np.ndarray:
        return a2.layers.batchnorm_forward(x, gamma, beta, dict(bn))[0]

    for name, arr, got, got_alt in zip(("dx", "dgamma", "dbeta"), (x, gamma, beta), graph, alt,
                                       strict=True):
        close(got_alt, got, f"batchnorm_backward_alt vs batchnorm_backward {name}")
        close(got, numeric_grad(fwd, arr, dout), f"batchnorm_backward {name} (N={n}, D={d})",
              rtol=1e-5, atol=1e-7)


# -- Assignment 1: vectorized == loops ---------------------------------------------------


@LAWS
@given(problem=classification_problems(), seed=seeds)
def test_vectorized_linear_losses_equal_naive(a1, problem, seed: int) -> None:
    n, d, classes, reg = problem
    rng = np.random.default_rng(seed)
    W = 0.1 * rng.standard_normal((d, classes))
    X = rng.standard_normal((n, d))
    y = rng.integers(0, classes, n)
    for kind, naive, vec in (("svm", a1.classifiers.linear_svm.svm_loss_naive,
                              a1.classifiers.linear_svm.svm_loss_vectorized),
                             ("softmax", a1.classifiers.softmax.softmax_loss_naive,
                              a1.classifiers.softmax.softmax_loss_vectorized)):
        loss_n, dW_n = naive(W, X, y, reg)
        loss_v, dW_v = vec(W, X, y, reg)
        close(loss_v, loss_n, f"{kind} loss (N={n}, D={d}, C={classes}, reg={reg})")
        close(dW_v, dW_n, f"{kind} dW (N={n}, D={d}, C={classes}, reg={reg})")
        close(dW_n, numeric_grad(lambda naive=naive: np.asarray(naive(W, X, y, reg)[0]), W, np.ones(())),
              f"{kind} naive dW vs central differences", rtol=1e-5, atol=1e-7)


@LAWS
@given(n_train=st.integers(1, 10),
       n_test=st.integers(1, 6),
       d=st.integers(1, 8), seed=seeds)
def test_knn_distances_agree_for_every_loop_count(a1, n_train: int, n_test: int, d: int,
                                                  seed: int) -> None:
    rng = np.random.default_rng(seed)
    knn = a1.classifiers.k_nearest_neighbor.KNearestNeighbor()
    knn.train(rng.standard_normal((n_train, d)), rng.integers(0, 3, n_train))
    X = rng.standard_normal((n_test, d))
    two = knn.compute_distances_two_loops(X)
    close(two, np.linalg.norm(X[:, None, :] - knn.X_train[None, :, :], axis=2), "two loops")
    close(knn.compute_distances_one_loop(X), two, "one loop vs two loops")
    close(knn.compute_distances_no_loops(X), two, "no loops vs two loops", rtol=1e-7, atol=1e-7)
