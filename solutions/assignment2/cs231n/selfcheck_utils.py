"""The machinery of the self-checks (``python submit.py check``): registry, runner, messages.

Provided, not graded. Each assignment's ``selfcheck.py`` holds its checks, one
per task id, registered in a dict with the decorator that :func:`registrar`
makes, and compares values with :func:`close`, :func:`near` and
:func:`shape`, whose messages name the output and the error. :func:`run` runs
them: a check passes when it returns, is ``todo`` when your code still raises
``NotImplementedError``, and fails on :class:`CheckFailed` or any other error
(the message says where it was raised).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gradient_check import rel_error

__all__ = ["GRAD_TOL", "Check", "CheckFailed", "Outcome", "close", "expect", "near", "registrar",
           "run", "shape"]

#: A check: raises CheckFailed (or anything) when the law it tests does not hold.
Check = Callable[[np.random.Generator], None]
#: Default relative tolerance of :func:`close` (float64 numerical gradients).
GRAD_TOL = 1e-6


class CheckFailed(AssertionError):
    """A self-check found a problem; the message says which output and by how much."""


@dataclass
class Outcome:
    """The result of one task's check: status is pass, fail or todo."""

    task: str
    status: str
    detail: str
    seconds: float


def registrar(checks: dict[str, Check]) -> Callable[[str], Callable[[Check], Check]]:
    """A decorator factory: ``@check("task_id")`` stores the function in ``checks``."""

    def check(task: str) -> Callable[[Check], Check]:
        def register(fn: Check) -> Check:
            checks[task] = fn
            return fn

        return register

    return check


def expect(cond: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``cond``."""
    if not cond:
        raise CheckFailed(message)


def close(name: str, actual: Any, expected: Any, tol: float = GRAD_TOL) -> None:
    """``actual`` has ``expected``'s shape and is within relative error ``tol`` of it."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    expect(actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}")
    err = rel_error(actual, expected)
    expect(err <= tol, f"{name}: relative error {err:.2e} > tolerance {tol:.0e}")


def near(name: str, actual: Any, expected: Any, atol: float) -> None:
    """``actual`` has ``expected``'s shape and is within absolute error ``atol`` of it."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    expect(actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}")
    err = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    expect(err <= atol, f"{name}: absolute error {err:.2e} > tolerance {atol:.0e}")


def shape(name: str, value: Any, expected: tuple[int, ...]) -> None:
    """``value`` has the shape ``expected``."""
    got = np.shape(value)
    expect(got == expected, f"{name}: shape {got}, expected {expected}")


def run(checks: dict[str, Check], tasks: list[str] | None = None, seed: int = 0) -> list[Outcome]:
    """Run the checks of ``tasks`` (default all), each with a fresh ``seed``; never raises."""
    out = []
    for task in tasks or list(checks):
        if task not in checks:
            out.append(Outcome(task, "fail", f"no such task (known: {', '.join(checks)})", 0.0))
            continue
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        try:
            checks[task](rng)
            status, detail = "pass", ""
        except NotImplementedError as exc:
            status, detail = "todo", str(exc) or "not implemented yet"
        except CheckFailed as exc:
            status, detail = "fail", str(exc)
        except Exception as exc:  # noqa: BLE001 - a student's bug is a failed check
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno}" \
                if frames else ""
            status, detail = "fail", f"{type(exc).__name__}: {exc}{where}"
        out.append(Outcome(task, status, detail, time.perf_counter() - start))
    return out
