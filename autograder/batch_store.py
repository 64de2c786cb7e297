"""What a batch leaves on disk, per student and for the class.

Each student's folder under the output holds ``results.json`` (Gradescope's
format), ``report.json`` (the full report), ``feedback.md``/``.html`` and
``batch.json`` (a :class:`StudentOutcome`), written last. A folder is built in
a staging folder and swapped in whole (:func:`install`). ``gradebook.csv`` has
one row per student (:func:`write_gradebook_csv`). Every file is written
atomically.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder.feedback import DEFAULT_AUDIENCE, render_html, render_markdown
from autograder.report import Report

__all__ = ["BATCH_FILE", "COMPLETE", "GRADEBOOK_CSV", "REPORT_FILE", "RESULTS_FILE",
           "STATUSES", "StudentOutcome", "install", "load_outcome", "status_of",
           "write_atomic", "write_feedback", "write_gradebook_csv", "write_student_files"]

BATCH_FILE = "batch.json"
REPORT_FILE = "report.json"
RESULTS_FILE = "results.json"
GRADEBOOK_CSV = "gradebook.csv"
COMPLETE = ("graded", "submission_problem")
STATUSES = (*COMPLETE, "internal_error", "crashed")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class StudentOutcome:
    """One student's grading, as stored in ``<student>/batch.json``."""

    student: str
    status: str  # one of STATUSES
    score: float
    max_score: float
    tasks: dict[str, float]
    submission: str
    layout: str
    sha256: str
    grader_key: str
    seconds: float = 0.0  # wall time of the grading process
    message: str = ""
    timestamp: str | None = None
    audience: str = DEFAULT_AUDIENCE
    timing: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # the secret base seed this grading used (replay with --seed)
    graded_now: bool = False  # not stored: True when graded by this run

    @property
    def complete(self) -> bool:
        """True when the report is the grader's own (not a failure placeholder)."""
        return self.status in COMPLETE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("graded_now")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudentOutcome:
        names = set(cls.__dataclass_fields__) - {"graded_now"}
        return cls(**{k: v for k, v in data.items() if k in names})


def status_of(report: Report) -> tuple[str, str]:
    """``(status, message)`` of a finished grading (one of :data:`STATUSES` but ``crashed``)."""
    if report.internal_errors or any(t.internal_error for t in report.tasks):
        first = (report.internal_errors or [t.internal_error for t in report.tasks
                                            if t.internal_error])[0]
        return "internal_error", f"internal grader error: {first}"
    if report.submission_problem:
        return "submission_problem", report.submission_problem
    return "graded", ""


def load_outcome(folder: Path) -> StudentOutcome | None:
    """The complete outcome stored in ``folder``, or ``None`` (missing, damaged, partial)."""
    try:
        data = json.loads((folder / BATCH_FILE).read_text(encoding="utf-8"))
        outcome = StudentOutcome.from_json(data)
    except (OSError, ValueError, TypeError):
        return None
    if outcome.status not in STATUSES:
        return None
    if not all((folder / f).is_file() for f in (RESULTS_FILE, REPORT_FILE)):
        return None
    return outcome


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_student_files(folder: Path, report: Report, outcome: StudentOutcome) -> None:
    """Everything of one student into ``folder``; ``batch.json`` last."""
    from autograder.report import write_results_json

    write_results_json(report, folder / RESULTS_FILE)
    write_feedback(folder, report, outcome.student, outcome.audience)
    write_atomic(folder / REPORT_FILE, json.dumps(report.to_dict(), indent=1,
                                                   allow_nan=False) + "\n")
    write_atomic(folder / BATCH_FILE, json.dumps(outcome.to_json(), indent=1) + "\n")


def write_feedback(folder: Path, report: Report, student: str, audience: str) -> None:
    """``feedback.md`` and ``feedback.html`` of one student, for ``audience``."""
    write_atomic(folder / "feedback.md", render_markdown(report, student=student,
                                                          audience=audience))
    write_atomic(folder / "feedback.html", render_html(report, student=student,
                                                        audience=audience))


def install(staging: Path, final: Path) -> None:
    """Swap the finished ``staging`` folder in as ``final`` (old one removed)."""
    old = None
    if final.exists():
        old = staging.parent / f"old-{uuid.uuid4().hex}"
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)



def _csv_text(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (messages may quote student code)."""
    value = " ".join(value.split())
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_gradebook_csv(path: Path, spec: cfg.AssignmentSpec,
                        outcomes: Sequence[StudentOutcome]) -> Path:
    """One row per student: student, score, max_score, each task, status, seconds, message."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *spec.tasks, "status", "seconds",
                     "message"])
    for o in outcomes:
        writer.writerow([_csv_text(o.student), f"{o.score:g}", f"{o.max_score:g}",
                         *(f"{o.tasks.get(t, 0.0):g}" for t in spec.tasks), o.status,
                         f"{o.seconds:.1f}", _csv_text(o.message)[:500]])
    write_atomic(path, buf.getvalue())
    return path
