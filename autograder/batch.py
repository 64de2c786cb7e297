"""Grade a whole class: every submission in a folder, in parallel, resumably.

:func:`grade_all` is the library behind ``autograder grade-all``.

Submissions (:func:`discover`, :mod:`autograder.batch_discovery`)
    ``SUBMISSIONS`` is either a plain folder holding one entry per student -
    a directory or a ``.zip`` named by the student id (``alice/``,
    ``bob.zip``) - or nbgrader's layout: a course directory holding
    ``submitted/``, or that ``submitted/`` folder itself, where each student's
    submission is ``submitted/<student>/<assignment>/``. Hidden entries
    (``.x``) are ignored, other files are ignored with a note, and two entries
    for one student are refused.

Grading (:mod:`autograder.batch_pool`)
    Each submission is graded by :func:`autograder.runner.grade` in a process
    of its own (the runner runs pytest in-process, so a process is never
    reused), at most ``jobs`` at a time. Processes are forked from a
    multiprocessing fork server that has already imported the grader and
    probed the sandbox (:mod:`autograder.batch_warm`), so a submission costs
    no interpreter start-up. A grading process that dies, or
    that outlives its hard limit (the assignment's time limit plus
    :data:`HARD_LIMIT_GRACE`), is replaced by a zero report saying the grader
    failed; the other submissions go on.

Outputs (under ``OUTPUT``, default ``grades/<assignment>``; :mod:`autograder.batch_store`)
    ``<student>/results.json`` (Gradescope's format), ``<student>/report.json``
    (the full report, for the instructor and for re-rendering feedback),
    ``<student>/feedback.md`` and ``<student>/feedback.html`` (see
    :mod:`autograder.feedback`), ``<student>/batch.json`` (status, scores,
    fingerprints, timings), and ``gradebook.csv`` with one row per student. A
    student's folder is written in a staging folder and swapped in whole, so it
    is always either the previous complete one, the new complete one, or
    absent (graded again by the next run). Optionally the scores also go into
    nbgrader's gradebook (:mod:`autograder.nbgrader_gradebook`). Last,
    ``shard.json`` records what the output holds (:mod:`autograder.shards`).

Shards (:mod:`autograder.shards`, :mod:`autograder.merge`)
    With ``shard=Shard(K, N)`` only the students whose id hashes to shard K are
    graded (the whole class is still discovered, and recorded in
    ``shard.json``), and nbgrader's gradebook is left to ``autograder merge``,
    which combines the N outputs into one.

Resuming (:mod:`autograder.fingerprints`)
    A student is skipped when their folder holds a complete report (status
    ``graded`` or ``submission_problem``) made from the same submission bytes
    (:func:`autograder.tree.fingerprint`: sha256 of the zip, or of the
    directory's counting files and names) and the same grader (hidden suite,
    points table, reference library and grading options, also a sha256). The
    base seed is not part of that key: by default every grading draws its own
    secret seed (recorded in the student's ``batch.json`` and ``report.json``),
    and an unchanged student keeps the report made with theirs; with an
    explicit ``seed``, a student whose report was made with another seed is
    graded again. ``force=True`` regrades everyone. Failed gradings
    (``internal_error``, ``crashed``) are always retried.

Timings
    Each ``batch.json`` has ``seconds`` (wall time of the grading process, from
    fork to exit) and, in ``timing``, what the grader spent waiting on the
    student's workers, as the engine reports it (``Report.student_seconds``,
    ``Report.worker_seconds``): ``worker_call_s`` (every request to a worker:
    the student's calls plus the transfer of their arguments and results),
    ``workers_s`` (forking, confining and cleaning up the worker of each test)
    and ``tests_s`` (the tests' own call phases).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder.batch_discovery import BatchError, Discovery, SubmissionEntry, discover
from autograder.batch_pool import HARD_LIMIT_GRACE, run_pool
from autograder.batch_store import (
    BATCH_FILE,
    GRADEBOOK_CSV,
    REPORT_FILE,
    StudentOutcome,
    load_outcome,
    write_atomic,
    write_feedback,
    write_gradebook_csv,
)
from autograder.feedback import AUDIENCES, DEFAULT_AUDIENCE
from autograder.fingerprints import fingerprint, grader_key
from autograder.options import GradeOptions, OptionsError
from autograder.shards import MANIFEST_FILE, WHOLE_CLASS, Manifest, Shard, class_digest

__all__ = [
    "HARD_LIMIT_GRACE",
    "BatchError",
    "BatchResult",
    "Discovery",
    "GradeOptions",
    "Progress",
    "StudentOutcome",
    "Shard",
    "SubmissionEntry",
    "default_jobs",
    "default_output",
    "discover",
    "fingerprint",
    "grade_all",
    "write_gradebook_csv",
]

DEFAULT_OUTPUT_ROOT = "grades"
STAGING_DIR = ".staging"


def default_jobs() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_output(assignment: str) -> Path:
    """``grades/<assignment>`` in the current directory."""
    return Path(DEFAULT_OUTPUT_ROOT) / assignment


@dataclass
class Progress:
    """A progress event.

    ``kind`` is ``skipped`` or ``graded`` (one per student, with its
    ``outcome``), or ``grading`` (once, before the first grading starts, with
    no outcome).
    """

    kind: str
    outcome: StudentOutcome | None
    done: int  # students finished so far in this run (graded or skipped)
    total: int
    to_grade: int  # how many this run grades (the rest are skipped)


@dataclass
class BatchResult:
    """The result of :func:`grade_all`."""

    output: Path
    gradebook_csv: Path
    outcomes: list[StudentOutcome]
    discovery: Discovery
    nbgrader_gradebook: str | None = None
    nbgrader_recorded: int = 0
    nbgrader_error: str | None = None  # writing nbgrader's gradebook failed
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def graded(self) -> list[StudentOutcome]:
        """Students graded by this run."""
        return [o for o in self.outcomes if o.graded_now]

    @property
    def skipped(self) -> list[StudentOutcome]:
        """Students whose earlier report was kept."""
        return [o for o in self.outcomes if not o.graded_now]

    @property
    def failed(self) -> list[StudentOutcome]:
        """Students whose grading failed inside the grader (zero placeholder reports)."""
        return [o for o in self.outcomes if not o.complete]

    @property
    def complete(self) -> bool:
        """Every student has a complete report from the grader (and the gradebook took them)."""
        return not self.failed and self.nbgrader_error is None



def grade_all(
    submissions: str | os.PathLike[str],
    assignment: str,
    *,
    output: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    force: bool = False,
    options: GradeOptions | None = None,
    audience: str = DEFAULT_AUDIENCE,
    gradebook: str | os.PathLike[str] | None | bool = None,
    course_id: str | None = None,
    hard_limit: float | None = None,
    progress: Callable[[Progress], None] | None = None,
    shard: Shard | None = None,
) -> BatchResult:
    """Grade every submission under ``submissions`` (see the module docstring).

    ``output`` defaults to :func:`default_output`, ``jobs`` to
    :func:`default_jobs`. ``audience`` selects what the feedback files show
    (:data:`autograder.feedback.AUDIENCES`). ``gradebook``: ``None`` writes
    nbgrader's gradebook only for nbgrader's layout (``<course>/gradebook.db``),
    ``False`` never, a path or database URL always (``course_id``: see
    :func:`autograder.nbgrader_gradebook.record_scores`). ``hard_limit``
    (seconds per grading process) defaults to the assignment's time limit plus
    :data:`HARD_LIMIT_GRACE`. ``progress`` is called once per student.
    ``shard`` grades only that shard's students (:mod:`autograder.shards`); a
    shard never writes nbgrader's gradebook (``gradebook`` must be ``None`` or
    ``False``: ``autograder merge`` writes it).

    Raises :class:`BatchError` for a bad batch (nothing is graded) and
    :class:`autograder.config.ConfigError` for an unknown assignment; every
    problem of a single submission ends in that student's report instead.
    """
    start = time.monotonic()
    options = options or GradeOptions()
    if audience not in AUDIENCES:
        raise BatchError(f"unknown feedback audience {audience!r} "
                         f"(choose from {', '.join(AUDIENCES)})")
    shard = shard or WHOLE_CLASS
    if shard != WHOLE_CLASS and gradebook not in (None, False):
        raise BatchError("a shard does not write nbgrader's gradebook: give --gradebook to "
                         "'autograder merge' instead")
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise BatchError("the number of parallel jobs must be at least 1")
    suite = Path(options.suite_dir).resolve() if options.suite_dir else cfg.suite_dir(assignment)
    spec = cfg.load_tasks(suite / "tasks.toml")
    try:
        options.validate()
    except OptionsError as exc:
        raise BatchError(str(exc)) from None
    course_root = cfg.find_course_root(options.course_root)
    options = GradeOptions(**{**asdict(options), "suite_dir": str(suite),
                              "course_root": str(course_root),
                              "data_dir": (str(Path(options.data_dir).resolve())
                                           if options.data_dir else None)})
    out = Path(output if output is not None else default_output(assignment)).resolve()
    found = discover(submissions, assignment, exclude=[out])
    mine = [e for e in found.entries if shard.holds(e.student)]
    limit = hard_limit if hard_limit is not None else \
        (options.time_limit or spec.time_limit) + HARD_LIMIT_GRACE
    key = grader_key(spec, suite, course_root, options)
    out.mkdir(parents=True, exist_ok=True)
    staging_root = out / STAGING_DIR
    shutil.rmtree(staging_root, ignore_errors=True)  # leftovers of an interrupted run
    # the manifest describes a finished run only: an interrupted one leaves none
    (out / MANIFEST_FILE).unlink(missing_ok=True)

    outcomes: dict[str, StudentOutcome] = {}
    work: list[tuple[SubmissionEntry, dict[str, Any]]] = []
    env, cwd = dict(os.environ), os.getcwd()
    for entry in mine:
        sha = fingerprint(entry.path)
        folder = out / entry.student
        prev = None if force else load_outcome(folder)
        if prev is not None and prev.complete and prev.sha256 == sha and prev.grader_key == key \
                and (options.seed is None or prev.seed == options.seed):
            outcomes[entry.student] = prev
            continue
        work.append((entry, {
            "student": entry.student, "path": str(entry.path.resolve()),
            "layout": entry.layout, "timestamp": entry.timestamp, "assignment": assignment,
            "sha256": sha, "grader_key": key, "audience": audience,
            "options": asdict(options), "env": env, "cwd": cwd,
            "staging": str(staging_root / f"{entry.student}-{uuid.uuid4().hex[:8]}"),
        }))
    total = len(mine)
    done = 0
    for student, prev in outcomes.items():  # skipped: refresh feedback for this audience
        if prev.audience != audience:
            folder = out / student
            from autograder.feedback import report_from_dict

            report = report_from_dict(json.loads((folder / REPORT_FILE).read_text("utf-8")))
            write_feedback(folder, report, student, audience)
            prev.audience = audience
            write_atomic(folder / BATCH_FILE, json.dumps(prev.to_json(), indent=1) + "\n")
        done += 1
        if progress is not None:
            progress(Progress("skipped", prev, done, total, len(work)))

    def on_done(outcome: StudentOutcome) -> None:
        nonlocal done
        outcomes[outcome.student] = outcome
        done += 1
        if progress is not None:
            progress(Progress("graded", outcome, done, total, len(work)))

    try:
        staging_root.mkdir()
        if work:
            if progress is not None:
                progress(Progress("grading", None, done, total, len(work)))
            run_pool(work, jobs=min(jobs, len(work)), spec=spec, options=options, output=out,
                     hard_limit=limit, on_done=on_done)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    ordered = [outcomes[e.student] for e in mine]
    result = BatchResult(output=out, gradebook_csv=out / GRADEBOOK_CSV, outcomes=ordered,
                         discovery=found, notes=list(found.notes))
    write_gradebook_csv(result.gradebook_csv, spec, ordered)

    target: str | os.PathLike[str] | None
    if shard != WHOLE_CLASS:
        target = None
    elif gradebook is None or gradebook is True:
        target = found.course_dir / "gradebook.db" if found.course_dir is not None else None
        if gradebook is True and target is None:
            raise BatchError("no nbgrader gradebook to write: the submissions are not in "
                             "nbgrader's layout; name the gradebook file")
    elif gradebook is False:
        target = None
    else:
        target = gradebook
    if target is not None:
        from autograder.nbgrader_gradebook import GradebookEntry, db_url, record_scores

        recordable = [o for o in ordered if o.complete]
        left = [o.student for o in ordered if not o.complete]
        if left:
            result.notes.append("not written to nbgrader's gradebook (grading failed, re-run "
                                "to retry): " + ", ".join(left))
        result.nbgrader_gradebook = db_url(target)
        try:
            result.nbgrader_recorded = record_scores(
                target, spec,
                [GradebookEntry(o.student, o.tasks, o.timestamp) for o in recordable],
                course_id=course_id)
        except Exception as exc:  # the reports and the CSV are written: say so, go on
            result.nbgrader_error = f"{type(exc).__name__}: {exc}"[:1000]
    manifest = Manifest(
        assignment=assignment, shard=shard.index, shards=shard.count, grader_key=key,
        audience=audience, tasks_toml=(suite / "tasks.toml").read_text(encoding="utf-8"),
        class_count=len(found.entries), class_digest=class_digest(e.student for e in
                                                                   found.entries),
        students=[o.student for o in ordered])
    write_atomic(out / MANIFEST_FILE, manifest.to_text())
    result.wall_seconds = time.monotonic() - start
    return result
