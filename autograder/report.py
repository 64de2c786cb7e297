"""The grading report: data classes, Gradescope ``results.json`` and a stdout table."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class TestResult:
    """One test of the hidden suite: outcome is passed, failed, error or skipped."""

    name: str
    task: str | None
    outcome: str
    message: str = ""
    duration: float = 0.0
    seed: int | None = None
    internal: bool = False
    #: what the test chose to report on any outcome (``note`` fixture), e.g. a measured value
    note: str = ""


@dataclass
class TaskResult:
    """Per-task aggregate: score = points * passed / counted tests."""

    id: str
    title: str
    points: float
    score: float = 0.0
    visibility: str = "visible"
    tests: list[TestResult] = field(default_factory=list)
    internal_error: str | None = None
    not_graded: str | None = None

    @property
    def failing(self) -> int:
        """Number of tests that did not pass (skips excluded)."""
        return sum(t.outcome in ("failed", "error") for t in self.tests)


@dataclass
class Report:
    """A complete grading report for one submission."""

    assignment: str
    tasks: list[TaskResult]
    seed: int | None  # the base seed (secret: instructor-side only); None if never known
    score: float = 0.0
    max_score: float = 0.0
    execution_time: float = 0.0
    data_source: str = "not used"
    #: registry name -> what that data set was loaded from (real copy or generated stand-in)
    data_sources: dict[str, str] = field(default_factory=dict)
    isolated: bool = False
    isolation_note: str = ""
    submission_problem: str | None = None
    internal_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    student_seconds: float = 0.0  # waiting on the student's code (worker calls)
    worker_seconds: float = 0.0  # starting and stopping workers

    def summary(self) -> str:
        """The report's top-level text (Gradescope's ``output``, shown to the student).

        It names no seed: the base seed is secret (see docs/threat-model.md).
        """
        lines = [f"{self.assignment}: {self.score:g} / {self.max_score:g} points"]
        if self.submission_problem:
            lines.append(f"Your submission could not be graded: {self.submission_problem}")
        for msg in self.internal_errors:
            lines.append(f"internal grader error: {msg}")
        lines.append(f"data: {self.data_source}")
        lines.append(
            f"sandbox: {'isolated' if self.isolated else 'NOT isolated'} ({self.isolation_note})"
        )
        lines.extend(self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-able data."""
        return asdict(self)


#: A repeated failure is cited by its first line, cut to this many characters.
CITED_CHARS = 120
_FAILED = ("failed", "error")


def _test_line(t: TestResult) -> str:
    status = {"passed": "PASS", "skipped": "SKIP"}.get(t.outcome, "FAIL")
    line = f"{status} {t.name}"  # no seed: students see none (docs/threat-model.md)
    if t.message and t.outcome != "passed":
        line += f": {t.message}"
    if t.note:
        line += f" ({t.note})" if t.outcome != "passed" else f": {t.note}"
    return line


def failure_text(t: TestResult) -> str:
    """What a failing test says: its message, then its note (if any)."""
    return (t.message or t.outcome) + (f" ({t.note})" if t.note else "")


def failure_groups(tests: list[TestResult]) -> list[list[TestResult]]:
    """The failing tests grouped by identical text, in order of first appearance."""
    groups: dict[str, list[TestResult]] = {}
    for t in tests:
        if t.outcome in _FAILED:
            groups.setdefault(failure_text(t), []).append(t)
    return list(groups.values())


def cite(message: str) -> str:
    """A short citation of a message said in full elsewhere: its first line, cut."""
    first = message.strip().splitlines()[0] if message.strip() else message
    return first if len(first) <= CITED_CHARS else first[:CITED_CHARS - 3] + "..."


def _task_lines(task: TaskResult, shown: dict[tuple[str, str], str]) -> list[str]:
    """One line per passing/skipped test, one per distinct failure (each said once).

    ``shown`` maps (message, visibility) to the task that already printed it in
    full: a later task with the same visibility cites it instead of repeating it.
    """
    lines: list[str] = []
    groups = {id(g[0]): g for g in failure_groups(task.tests)}
    for t in task.tests:
        if t.outcome not in _FAILED:
            lines.append(_test_line(t))
            continue
        group = groups.get(id(t))
        if group is None:  # said with the first test of its group
            continue
        message = failure_text(t)
        names = ", ".join(g.name for g in group)  # no seeds: students see none
        count = f" (the same failure in {len(group)} tests)" if len(group) > 1 else ""
        where = shown.setdefault((message, task.visibility), task.id)
        text = message if where == task.id else f"{cite(message)} [in full under task {where}]"
        lines.append(f"FAIL {names}{count}: {text}")
    return lines


def gradescope_results(report: Report) -> dict[str, Any]:
    """The report in Gradescope's ``results.json`` format (one entry per task).

    Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
    (checked by the tests against ``tests/schemas/gradescope_results.schema.json``).
    ``execution_time`` is in seconds, for the submission and, in each test's
    ``extra_data``, for the task (the sum of its tests' durations). Each test's
    ``max_score`` is the task's points, so Gradescope shows every task out of
    its points; the assignment's total points are a Gradescope setting that
    results.json cannot carry (``autograder build`` prints the value to enter).

    Seeds (the base seed and each test's) go only into ``extra_data``, which
    Gradescope stores for the instructor and does not show the student; the
    ``output`` texts the student reads name none.
    """
    tests = []
    shown: dict[tuple[str, str], str] = {}
    for task in report.tasks:
        lines = []
        if task.internal_error:
            lines.append(f"internal grader error: {task.internal_error}")
        if task.not_graded:
            lines.append(task.not_graded)
        if report.submission_problem and not task.tests:
            lines.append(f"not graded: {report.submission_problem}")
        lines.extend(_task_lines(task, shown))
        tests.append({
            "name": f"{task.id}: {task.title}",
            "score": task.score,
            "max_score": task.points,
            "status": "passed" if task.score >= task.points else "failed",
            "output": "\n".join(lines),
            "visibility": task.visibility,
            # Gradescope's spec has no per-test execution_time: it goes in the test's extra_data
            "extra_data": {"execution_time": round(sum(t.duration for t in task.tests), 3)},
        })
    return {
        "score": report.score,
        "execution_time": round(report.execution_time, 3),
        "output": report.summary(),
        "stdout_visibility": "hidden",
        "extra_data": {
            "max_score": report.max_score,
            "seed": report.seed,  # extra_data is stored, not shown to students
            "test_seeds": {t.name: t.seed for task in report.tasks for t in task.tests
                           if t.seed is not None},
            "data_source": report.data_source,
            "data_sources": dict(report.data_sources),
            "isolated": report.isolated,
            "timing": {"total_s": round(report.execution_time, 3),
                       "student_code_s": round(report.student_seconds, 3),
                       "workers_s": round(report.worker_seconds, 3)},
            "internal_error": bool(report.internal_errors
                                   or any(t.internal_error for t in report.tasks)),
        },
        "tests": tests,
    }


def write_results_json(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write Gradescope's JSON atomically (temp file in the same dir, fsync, replace)."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(gradescope_results(report), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return target


def print_table(report: Report, file: TextIO | None = None) -> None:
    """Print a per-task table (task, title, score/max, failing tests) and the total."""
    out = file or sys.stdout
    rows = [(t.id, t.title, f"{t.score:g}/{t.points:g}",
             "INTERNAL ERROR" if t.internal_error else
             "not graded" if t.not_graded else str(t.failing)) for t in report.tasks]
    headers = ("task", "title", "score", "failing")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths[1] = min(widths[1], 60)

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0]), r[1][:60].ljust(widths[1]), r[2].rjust(widths[2]),
                 r[3].rjust(widths[3])]
        return "  ".join(cells).rstrip()

    print(fmt(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(fmt(r), file=out)
    print(f"total: {report.score:g} / {report.max_score:g}", file=out)
    if report.submission_problem:
        print(f"submission problem: {report.submission_problem}", file=out)
    for msg in report.internal_errors:
        print(f"INTERNAL GRADER ERROR: {msg}", file=out)
    print(f"seed {report.seed}; data: {report.data_source}; sandbox "
          f"{'isolated' if report.isolated else 'NOT isolated'}", file=out)
