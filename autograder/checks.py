"""Comparison, gradient-check and timing helpers for the hidden suites.

All helpers run in the grader process on plain data (numpy arrays, numbers).
Failure messages name the output, the shapes, the worst index with the
student's and the expected value, the error and the tolerance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "assert_close",
    "assert_faster",
    "assert_gradient",
    "numerical_gradient",
    "rel_error",
    "time_call",
]


def rel_error(x: Any, y: Any) -> float:
    """Max elementwise relative error ``|x-y| / max(1e-8, |x|+|y|)`` (CS231n style)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0 and y.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if value is None:
        return "None"
    type_name = getattr(value, "type_name", None)
    if isinstance(type_name, str):  # a RemoteObject
        return f"a {type_name} object"
    return f"a {type(value).__name__}"


def _fmt(v: Any) -> str:
    return np.format_float_positional(v, precision=10, trim="-") if np.isscalar(v) and \
        np.isrealobj(v) else repr(v)


def assert_close(actual: Any, expected: Any, *, name: str, rtol: float = 1e-7,
                 atol: float = 0.0) -> None:
    """Assert ``actual`` (the student's) matches ``expected`` (the reference's).

    Passes when, elementwise, ``|a - e| <= atol + rtol * max(|a|, |e|)``.
    Scalars are compared as 0-d arrays; shapes must match exactly.
    """
    exp = np.asarray(expected)
    if not isinstance(actual, (np.ndarray, np.generic, int, float, complex, list, tuple)):
        raise AssertionError(
            f"{name}: expected an array of shape {exp.shape}, got {_describe(actual)}"
        )
    try:
        act = np.asarray(actual)
    except Exception:
        raise AssertionError(
            f"{name}: expected an array of shape {exp.shape}, got {_describe(actual)}"
        ) from None
    if act.dtype.kind not in "biufc":
        raise AssertionError(
            f"{name}: expected numbers, got an array of dtype {act.dtype}"
        )
    if act.shape != exp.shape:
        raise AssertionError(f"{name}: expected shape {exp.shape}, got shape {act.shape}")
    if act.size == 0:
        return
    a = act.astype(np.complex128 if act.dtype.kind == "c" or exp.dtype.kind == "c"
                   else np.float64)
    e = exp.astype(a.dtype)
    bad_a = ~np.isfinite(a)
    bad_e = ~np.isfinite(e)
    if np.any(bad_a & ~bad_e):
        idx = tuple(int(i) for i in np.argwhere(bad_a & ~bad_e)[0])
        where = f" at index {idx}" if act.ndim else ""
        raise AssertionError(
            f"{name}: got a non-finite value {a[idx]}{where} (expected {_fmt(e[idx])})"
        )
    diff = np.abs(a - e)
    # positions where both are the same non-finite value count as equal
    same = bad_e & (a == e)
    diff = np.where(same, 0.0, diff)
    diff = np.where(bad_e & ~same, np.inf, diff)
    scale = np.maximum(np.abs(np.where(bad_a, 0, a)), np.abs(np.where(bad_e, 0, e)))
    allowed = atol + rtol * scale
    excess = diff - allowed
    if np.all(excess <= 0):
        return
    flat = int(np.argmax(np.where(np.isnan(excess), np.inf, excess)))
    idx = np.unravel_index(flat, act.shape)
    idx = tuple(int(i) for i in idx)
    nbad = int(np.count_nonzero(~(excess <= 0)))
    denom = float(scale[idx]) if scale[idx] > 0 else 1.0
    where = f" at index {idx}" if act.ndim else ""
    raise AssertionError(
        f"{name}: {nbad} of {act.size} values differ (shape {act.shape}); worst{where}: "
        f"got {_fmt(a[idx])}, expected {_fmt(e[idx])}, relative error "
        f"{float(diff[idx]) / denom:.3g} > tolerance rtol={rtol:g}, atol={atol:g}"
    )


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, df: Any = None,
                       h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``f`` at ``x`` in float64.

    Without ``df``, ``f(x)`` must be a scalar; with ``df`` (the upstream
    gradient), returns the gradient of ``sum(f(x) * df)``. ``x`` is modified in
    place during evaluation and restored afterwards.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError("numerical_gradient needs a float64 array x")
    dfa = None if df is None else np.asarray(df, dtype=np.float64)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fp = np.asarray(f(x), dtype=np.float64).copy()
        x[ix] = old - h
        fm = np.asarray(f(x), dtype=np.float64).copy()
        x[ix] = old
        if dfa is None:
            if fp.size != 1:
                raise ValueError("f(x) is not a scalar: pass df")
            grad[ix] = (fp.item() - fm.item()) / (2 * h)
        else:
            grad[ix] = np.sum((fp - fm) * dfa) / (2 * h)
    return grad


def assert_gradient(analytic: Any, f: Callable[[np.ndarray], Any], x: np.ndarray,
                    df: Any = None, *, name: str, tol: float = 1e-6, h: float = 1e-6) -> None:
    """Check the student's ``analytic`` gradient against ``numerical_gradient(f, x, df)``.

    Fails when the CS231n relative error (:func:`rel_error`) exceeds ``tol``;
    the message gives the worst index with both values.
    """
    num = numerical_gradient(f, x, df, h=h)
    if not isinstance(analytic, (np.ndarray, list)) and not np.isscalar(analytic):
        raise AssertionError(
            f"{name}: expected an array of shape {num.shape}, got {_describe(analytic)}"
        )
    ana = np.asarray(analytic)
    if ana.dtype.kind not in "biuf":
        raise AssertionError(f"{name}: expected numbers, got an array of dtype {ana.dtype}")
    if ana.shape != num.shape:
        raise AssertionError(f"{name}: expected shape {num.shape}, got shape {ana.shape}")
    ana = ana.astype(np.float64)
    if not np.all(np.isfinite(ana)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(ana))[0])
        raise AssertionError(f"{name}: gradient has a non-finite value at index {idx}")
    if ana.size == 0:
        return
    err = np.abs(ana - num) / np.maximum(1e-8, np.abs(ana) + np.abs(num))
    worst = float(err.max())
    if worst <= tol:
        return
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
    raise AssertionError(
        f"{name}: gradient check failed (shape {ana.shape}); worst at index {idx}: "
        f"got {_fmt(ana[idx])}, numerical {_fmt(num[idx])}, relative error {worst:.3g} "
        f"> tolerance {tol:g}"
    )


def time_call(fn: Callable[..., Any], *args: Any, repeat: int = 5, warmup: int = 1,
              **kw: Any) -> float:
    """Best (minimum) wall time in seconds of ``fn(*args, **kw)`` in the grader process."""
    for _ in range(max(0, warmup)):
        fn(*args, **kw)
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best


def assert_faster(student_s: float, reference_s: float, *, at_least: float, name: str) -> None:
    """Assert the student's time is at least ``at_least`` times faster than ``reference_s``."""
    ratio = reference_s / student_s if student_s > 0 else float("inf")
    if ratio >= at_least:
        return
    raise AssertionError(
        f"{name}: too slow: your code took {student_s * 1e3:.3g} ms, the reference loop "
        f"version {reference_s * 1e3:.3g} ms, a speed-up of {ratio:.3g}x; at least "
        f"{at_least:g}x is required"
    )
