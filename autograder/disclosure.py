"""What a failing check may tell the student: expected values for visible tasks only.

The grader's checks (:mod:`autograder.checks`) word their failure messages
through :func:`expected_shown`. For a test of a ``visible`` task they may show
the reference's value at the worst index; for any other task (``hidden``, and
the ``after_due_date``/``after_published`` ones not released yet) they name the
output, the shape, the index and the order of magnitude of the error, and
show no expected value, so a student cannot read the reference's answers
out of the feedback (see docs/threat-model.md).

The plugin (:class:`autograder.plugin.GraderPlugin`) sets the state for each
test from its task's visibility in ``tasks.toml``, so no suite passes a flag
around. Outside a grading run (a check called directly) expected values are
shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any

__all__ = ["SHOWN_VISIBILITIES", "clear", "expected_shown", "for_visibility", "reset",
           "set_visibility", "withheld"]

#: Task visibilities whose failure messages may show expected values.
SHOWN_VISIBILITIES = frozenset({"visible"})

_SHOW: ContextVar[bool] = ContextVar("autograder_show_expected", default=True)


def expected_shown() -> bool:
    """True when the current test's messages may show expected (reference) values."""
    return _SHOW.get()


def set_visibility(tasks: Mapping[str, Any], task: str | None) -> None:
    """Set the state for a test of ``task`` (``tasks``: id -> spec with a ``visibility``).

    A test of no known task counts as hidden.
    """
    spec = tasks.get(task or "")
    _SHOW.set(spec is not None and spec.visibility in SHOWN_VISIBILITIES)


def clear() -> None:
    """Back to the default (expected values shown), e.g. after a grading run."""
    _SHOW.set(True)


def for_visibility(visibility: str) -> Token[bool]:
    """Set the state for a test of a task with ``visibility``; returns a token for :func:`reset`."""
    return _SHOW.set(visibility in SHOWN_VISIBILITIES)


def reset(token: Token[bool]) -> None:
    """Undo :func:`for_visibility`."""
    _SHOW.reset(token)


@contextlib.contextmanager
def withheld() -> Iterator[None]:
    """Within the block, checks show no expected values (as for a hidden task)."""
    token = _SHOW.set(False)
    try:
        yield
    finally:
        _SHOW.reset(token)
