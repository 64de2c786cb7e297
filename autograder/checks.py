"""Comparison, gradient-check and timing helpers for the hidden suites.

All helpers run in the grader process on plain data (numpy arrays, numbers).
Failure messages name the output, the shapes, the worst index with the
student's value, the error and the tolerance; the expected (reference) value
only for tests of visible tasks (:mod:`autograder.disclosure`): elsewhere the
error is given as an order of magnitude, so the message cannot be solved for
the expected value.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.disclosure import expected_shown

__all__ = [
    "CONCLUSIVE",
    "HOPELESS",
    "SPEEDUPS",
    "Speedup",
    "assert_close",
    "assert_faster",
    "assert_gradient",
    "assert_speedup",
    "expect_reference",
    "measure_speedup",
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
    if type(value).__name__ in ("RemoteObject", "RemotePath"):  # never the class name it reports
        return "an object that is not plain data"
    return f"a {type(value).__name__}"


def _fmt(v: Any) -> str:
    return np.format_float_positional(v, precision=10, trim="-") if np.isscalar(v) and \
        np.isrealobj(v) else repr(v)


def _magnitude(x: float) -> str:
    """``x`` rounded down to a power of ten ("at least 1e-03"): no digits to solve for."""
    if not math.isfinite(x):
        return str(x)
    if x <= 0:
        return "0"
    return f"at least {10.0 ** math.floor(math.log10(x)):.0e}"


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
        expected = f" (expected {_fmt(e[idx])})" if expected_shown() else ""
        raise AssertionError(f"{name}: got a non-finite value {a[idx]}{where}{expected}")
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
    error = float(diff[idx]) / denom
    if expected_shown():
        detail = f"got {_fmt(a[idx])}, expected {_fmt(e[idx])}, relative error {error:.3g}"
    else:
        detail = f"relative error {_magnitude(error)}"
    raise AssertionError(
        f"{name}: {nbad} of {act.size} values differ (shape {act.shape}); worst{where}: "
        f"{detail} > tolerance rtol={rtol:g}, atol={atol:g}"
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
    if expected_shown():
        detail = (f"got {_fmt(ana[idx])}, numerical {_fmt(num[idx])}, relative error "
                  f"{worst:.3g}")
    else:
        detail = f"relative error {_magnitude(worst)}"
    raise AssertionError(
        f"{name}: gradient check failed (shape {ana.shape}); worst at index {idx}: "
        f"{detail} > tolerance {tol:g}"
    )


def time_call(fn: Callable[..., Any], *args: Any, repeat: int = 5, warmup: int = 1,
              clock: Callable[[], float] = time.perf_counter, **kw: Any) -> float:
    """Best (minimum) time in seconds of ``fn(*args, **kw)`` in the grader process.

    ``clock`` defaults to wall time (``time.perf_counter``). Speed tests time
    the reference's long loops with ``time.thread_time`` (CPU time of this
    thread): another process taking the core for a while then does not make
    the reference look slower, and so a loop implementation look faster.
    """
    for _ in range(max(0, warmup)):
        fn(*args, **kw)
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = clock()
        fn(*args, **kw)
        best = min(best, clock() - t0)
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


@dataclass(frozen=True)
class Speedup:
    """One student-vs-reference speed comparison (times in seconds, best of each side)."""

    name: str
    student_s: float
    reference_s: float
    at_least: float
    seed: int | None = None
    student_times: tuple[float, ...] = ()
    reference_times: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        """How many times faster the student's code is than the reference (best vs best)."""
        return self.reference_s / self.student_s if self.student_s > 0 else math.inf

    @property
    def passed(self) -> bool:
        return self.ratio >= self.at_least


#: :func:`assert_speedup` stops timing after a round whose speed-up is below
#: ``at_least / HOPELESS``.
HOPELESS = 4.0

#: With ``reference_cpu_time=True``, :func:`assert_speedup` stops timing after a
#: round whose speed-up is at least ``at_least * CONCLUSIVE``. Only for a
#: reference timed in CPU time of the grader's thread: noise adds wall time to
#: the student's side (which lowers the ratio) but hardly any CPU time to the
#: reference's, so such a first round cannot be a fluke in the student's favour.
CONCLUSIVE = 2.0

#: Every comparison :func:`assert_speedup` made in this process, newest last.
#: Read by ``benchmarks/perf_stability.py``, which grades in-process, to report
#: the measured ratios of passing tests too; the grader itself never reads it.
SPEEDUPS: deque[Speedup] = deque(maxlen=1000)


def _as_times(value: Any) -> list[float]:
    """Seconds from a timing round: a ``Timing`` (its ``.times``), a float, or floats."""
    times = getattr(value, "times", value)
    out = [float(times)] if isinstance(times, (int, float)) else [float(t) for t in times]
    if not out or not all(math.isfinite(t) and t >= 0 for t in out):
        raise ValueError(f"a timing round returned no valid times: {value!r}")
    return out


def measure_speedup(student_round: Callable[[], Any], reference_round: Callable[[], Any], *,
                    rounds: int = 3, stop_below: float | None = None,
                    stop_above: float | None = None) -> tuple[list[float], list[float]]:
    """Time both sides in ``rounds`` interleaved rounds; return (student times, reference times).

    Each round calls ``student_round()`` (e.g. ``student.timeit(...)``, which
    warms up and repeats) and ``reference_round()`` (e.g. :func:`time_call`),
    alternating which goes first, so a slow spell of the machine (another
    process on the other core, a frequency change) hits both sides alike
    instead of one side's whole measurement. Compare the minimum of each list:
    noise only ever adds time. With ``stop_below``, the rounds stop early once
    the best-vs-best speed-up is below it (a hopelessly slow student's code is
    not timed again and again); with ``stop_above``, once it is at least that
    (the verdict cannot change: see :data:`CONCLUSIVE`).
    """
    student: list[float] = []
    reference: list[float] = []
    for i in range(max(1, rounds)):
        if i % 2 == 0:
            student += _as_times(student_round())
            reference += _as_times(reference_round())
        else:
            reference += _as_times(reference_round())
            student += _as_times(student_round())
        if stop_below is not None and min(reference) < stop_below * min(student):
            break
        if stop_above is not None and min(reference) >= stop_above * min(student):
            break
    return student, reference


def assert_speedup(student_round: Callable[[], Any], reference_round: Callable[[], Any], *,
                   at_least: float, name: str, seed: int | None = None, rounds: int = 3,
                   inputs: str = "", reference_label: str = "the reference",
                   hint: str = "", reference_cpu_time: bool = False) -> Speedup:
    """Assert the student's code is at least ``at_least`` times faster than the reference.

    Both sides are timed in the same run, on the same machine, in interleaved
    rounds (:func:`measure_speedup`); the best student time is compared with
    the best reference time. Rounds stop early when the speed-up is below
    ``at_least / HOPELESS`` (noise cannot account for that much) and, when
    ``reference_round`` times the reference in CPU time of the grader's thread
    (``reference_cpu_time``), when it is at least ``at_least * CONCLUSIVE``. The
    comparison is appended to :data:`SPEEDUPS` (with ``seed``). A failure
    message gives both times, the ratio and the threshold; not the seed, which
    the report keeps for the instructor (students see no seed).
    """
    student, reference = measure_speedup(
        student_round, reference_round, rounds=rounds, stop_below=at_least / HOPELESS,
        stop_above=at_least * CONCLUSIVE if reference_cpu_time else None)
    result = Speedup(name=name, student_s=min(student), reference_s=min(reference),
                     at_least=float(at_least), seed=seed, student_times=tuple(student),
                     reference_times=tuple(reference))
    SPEEDUPS.append(result)
    if result.passed:
        return result
    on = f" on {inputs}" if inputs else ""
    raise AssertionError(
        f"{name} is too slow{on}: your code took {result.student_s * 1e3:.3g} ms (best of "
        f"{len(student)} calls), {reference_label} {result.reference_s * 1e3:.3g} ms (best of "
        f"{len(reference)}, timed in the same run): a speed-up of {result.ratio:.3g}x, but at "
        f"least {at_least:g}x is required" + (f". {hint}" if hint else "")
    )


def expect_reference(reference_fn: Callable[..., Any], *, names: str | Sequence[str],
                     rtol: float = 1e-7, atol: float = 0.0) -> Callable[..., None]:
    """A ``check(result, *inputs)`` for :meth:`Sandbox.timeit`: the reference's answer.

    The check calls ``reference_fn(*inputs)`` in the grader process and
    compares the student's ``result`` with it by :func:`assert_close`. With
    one name the function has one output; with several (``("loss", "dW")``)
    it returns a tuple of that many outputs, each compared under its name.
    Use the reference's fast version here: the check runs after every timed
    call (outside the timed interval, but inside the test's time).
    """
    many = not isinstance(names, str)
    labels = tuple(names) if many else (names,)

    def check(result: Any, *inputs: Any) -> None:
        expected = reference_fn(*inputs)
        if not many:
            assert_close(result, expected, name=labels[0], rtol=rtol, atol=atol)
            return
        if not isinstance(result, (tuple, list)) or len(result) != len(labels):
            raise AssertionError(
                f"expected {len(labels)} outputs ({', '.join(labels)}), got {_describe(result)}"
                + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
        for label, got, exp in zip(labels, result, expected, strict=True):
            assert_close(got, exp, name=label, rtol=rtol, atol=atol)

    return check


#: Prefix of the skip reason :func:`not_gradable` gives; the runner turns a task
#: whose every test says so into "not graded" with that reason (never a pass).
NOT_GRADABLE = "not gradable on this data: "


def not_gradable(reason: str) -> None:
    """End this test as "not graded here: ``reason``" (for a verdict the available data
    cannot support, e.g. a model trained on real images shown generated ones).

    The task scores 0 with the reason in the report, so an instructor sees it; the
    Gradescope bundle refuses data that would make a task ungradable (see README).
    """
    import pytest

    pytest.skip(NOT_GRADABLE + reason)
