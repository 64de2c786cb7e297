"""Record autograder scores in nbgrader's gradebook (``gradebook.db``).

nbgrader models an assignment as notebooks holding grade cells (each with a
``max_score``); a student's submission mirrors that structure, with one
``Grade`` (``auto_score``, ``manual_score``) per grade cell. nbgrader's totals
(``nbgrader export``, formgrader's gradebook pages) are sums of those grades.

The library tasks graded by the autograder are not notebook cells, so they are
recorded as one more notebook of the assignment, named
``<library>_autograder`` (for Assignment 1: ``cs231n_autograder``), with one
grade cell per task of ``tasks.toml`` (name = task id, ``max_score`` = the
task's points, cell type ``code``). For each student, the assignment and the
student are created when missing, the submission too (mirroring every notebook
of the assignment, as ``nbgrader autograde`` does), and each task's grade gets
``auto_score`` = the task's score and ``needs_manual_grade = False``. Grades of
the real notebooks are never touched, and a ``manual_score`` set in formgrader
still overrides the autograder's, as for any nbgrader grade.

Caveats, all of them nbgrader's rules applied to the extra notebook:

* ``nbgrader autograde`` gives every notebook without a submitted ``.ipynb`` a
  zero, which includes this one: run ``autograder grade-all`` after
  ``nbgrader autograde`` (a re-run of ``grade-all`` regrades nothing that is
  unchanged and writes the scores again).
* ``nbgrader generate_assignment`` refuses to change an assignment's notebooks
  once it has submissions, and the extra notebook counts as a change:
  regenerate such an assignment with ``--no-db``.
* formgrader shows the scores in its gradebook and submission lists, but has
  no ``.ipynb`` to open for this notebook; the per-student feedback files of
  ``grade-all`` are the place to read the details.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentSpec

__all__ = ["DEFAULT_COURSE_ID", "GradebookEntry", "db_url", "notebook_name", "record_scores"]

DEFAULT_COURSE_ID = "default_course"  # nbgrader's own default


@dataclass(frozen=True)
class GradebookEntry:
    """One student's task scores (missing tasks count 0) and nbgrader timestamp text."""

    student: str
    task_scores: Mapping[str, float]
    timestamp: str | None = None


def notebook_name(spec: AssignmentSpec) -> str:
    """The name of the notebook that holds the autograder's tasks in the gradebook."""
    return f"{spec.library}_autograder"


def db_url(gradebook: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL: ``gradebook`` itself when it is one, else ``sqlite:///<abs path>``."""
    text = os.fspath(gradebook)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).resolve())


@contextlib.contextmanager
def _alembic_on_path() -> Iterator[None]:
    """nbgrader runs ``alembic`` from PATH when it creates a gradebook: put ours first."""
    old = os.environ.get("PATH")
    here = str(Path(sys.executable).parent)
    os.environ["PATH"] = here + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def _choose_course(gb: object, assignment: str, course_id: str | None) -> str:
    from nbgrader.api import Assignment, Course

    db = gb.db  # type: ignore[attr-defined]
    if course_id:
        return course_id
    existing = db.query(Assignment).filter(Assignment.name == assignment).one_or_none()
    if existing is not None and existing.course_id:
        return str(existing.course_id)
    courses = [c.id for c in db.query(Course).all()]
    return courses[0] if len(courses) == 1 else DEFAULT_COURSE_ID


def record_scores(gradebook: str | os.PathLike[str], spec: AssignmentSpec,
                  entries: Iterable[GradebookEntry], *, course_id: str | None = None) -> int:
    """Write ``entries`` into the gradebook at ``gradebook`` (a path or a database URL).

    ``course_id`` defaults to the course of the assignment when it exists,
    else the gradebook's only course, else nbgrader's ``default_course``.
    Returns the number of students recorded. Idempotent: recording the same
    scores again changes nothing. nbgrader's API commits as it creates rows
    (students, submissions), so an error part-way leaves the earlier students
    recorded; the exception propagates and a re-run completes the rest.
    """
    from nbgrader.api import Grade, Gradebook, MissingEntry, SubmittedNotebook
    from nbgrader.utils import parse_utc

    nb_name = notebook_name(spec)
    entries = list(entries)
    with _alembic_on_path():
        gb = Gradebook(db_url(gradebook), course_id="")  # "" creates no course row
    with gb, warnings.catch_warnings():
        # nbgrader's add_submission builds rows before adding them to the session, which
        # makes SQLAlchemy warn during autoflush; the rows are added right after.
        warnings.filterwarnings("ignore", message=r".*not in session.*")
        chosen = _choose_course(gb, spec.name, course_id)
        gb.check_course(chosen)
        gb.course_id = chosen
        try:
            gb.find_assignment(spec.name)
        except MissingEntry:
            gb.add_assignment(spec.name)
        try:
            notebook = gb.find_notebook(nb_name, spec.name)
        except MissingEntry:
            notebook = gb.add_notebook(nb_name, spec.name)
        db = gb.db
        try:
            cells = {c.name: c for c in notebook.grade_cells}
            for task in spec.tasks.values():
                cell = cells.get(task.id)
                if cell is None:
                    cells[task.id] = gb.add_grade_cell(task.id, nb_name, spec.name,
                                                       max_score=task.points, cell_type="code")
                elif cell.max_score != task.points or cell.cell_type != "code":
                    cell.max_score, cell.cell_type = task.points, "code"
            for name in [n for n in cells if n not in spec.tasks]:  # a task was removed
                stale = cells.pop(name)
                for grade in list(stale.grades):
                    db.delete(grade)
                db.delete(stale)
            db.flush()
            for entry in entries:
                gb.update_or_create_student(entry.student)
                try:
                    submission = gb.find_submission(spec.name, entry.student)
                except MissingEntry:
                    submission = gb.add_submission(spec.name, entry.student)
                if entry.timestamp and submission.timestamp is None:
                    try:
                        submission.timestamp = parse_utc(entry.timestamp)
                    except (ValueError, TypeError, OverflowError):
                        pass  # an unreadable timestamp.txt: nbgrader would stop; we go on
                try:
                    sub_nb = gb.find_submission_notebook(nb_name, spec.name, entry.student)
                except MissingEntry:  # the submission predates the notebook
                    sub_nb = SubmittedNotebook(notebook=notebook, assignment=submission)
                    db.add(sub_nb)
                    db.flush()
                grades = {g.cell_id: g for g in sub_nb.grades}
                for task_id, cell in cells.items():
                    grade = grades.get(cell.id)
                    if grade is None:
                        grade = Grade(cell_id=cell.id, notebook=sub_nb)
                        db.add(grade)
                    grade.auto_score = float(entry.task_scores.get(task_id, 0.0))
                    grade.needs_manual_grade = False
            db.commit()
        except BaseException:
            db.rollback()
            raise
    return len(entries)
