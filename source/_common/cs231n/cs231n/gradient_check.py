"""Numerical gradients (central differences) to check analytic gradients against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rel_error(x: np.ndarray | float, y: np.ndarray | float) -> float:
    """Relative error: max |x - y| / max(1e-8, |x| + |y|), taken elementwise."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function f at x, by central differences.

    Inputs:
    - f: a function that takes one array and returns a scalar.
    - x: the point (array) at which to evaluate the gradient. It is modified in
      place during the evaluation and restored afterwards.
    - verbose: if True, print the index and the gradient of every entry.
    - h: the step of the central differences.

    Returns:
    - grad: array of the same shape as x, the numerical gradient of f at x.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)  # f(x + h)
        x[ix] = oldval - h
        fxmh = f(x)  # f(x - h)
        x[ix] = oldval  # restore
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of sum(f(x) * df) with respect to x, for an array-valued f.

    Inputs:
    - f: a function that takes one array and returns an array.
    - x: the input array (modified in place during evaluation, then restored).
    - df: array of the shape of f(x), the upstream gradient.
    - h: the step of the central differences.

    Returns:
    - grad: array of the same shape as x.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = oldval - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = oldval
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = None,
) -> list[float]:
    """Compare the analytic gradient with a numerical one at a few random entries.

    Inputs:
    - f: a function that takes one array and returns a scalar.
    - x: the point at which the gradient was taken (modified and restored).
    - analytic_grad: array of the shape of x, the gradient to check.
    - num_checks: how many random entries to check.
    - h: the step of the central differences.
    - seed: seed of the random choice of entries (None: unpredictable).

    Prints one line per check and returns the list of the relative errors.
    """
    rng = np.random.default_rng(seed)
    errors: list[float] = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)
        x[ix] = oldval - h
        fxmh = f(x)
        x[ix] = oldval
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        rel = abs(grad_numerical - grad_analytic) / max(
            1e-8, abs(grad_numerical) + abs(grad_analytic)
        )
        errors.append(float(rel))
        print(f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, relative error: {rel:e}")
    return errors
