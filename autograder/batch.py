"""Grade a whole class: every submission in a folder, in parallel, resumably.

:func:`grade_all` is the library behind ``autograder grade-all``.

Submissions (:func:`discover`)
    ``SUBMISSIONS`` is either a plain folder holding one entry per student -
    a directory or a ``.zip`` named by the student id (``alice/``,
    ``bob.zip``) - or nbgrader's layout: a course directory holding
    ``submitted/``, or that ``submitted/`` folder itself, where each student's
    submission is ``submitted/<student>/<assignment>/``. Hidden entries
    (``.x``) are ignored, other files are ignored with a note, and two entries
    for one student are refused.

Grading
    Each submission is graded by :func:`autograder.runner.grade` in a process
    of its own (the runner runs pytest in-process, so a process is never
    reused), at most ``jobs`` at a time. Processes are forked from a
    multiprocessing fork server that has already imported the grader and
    probed the sandbox (:mod:`autograder.batch_warm`), so a submission costs
    no interpreter start-up. A grading process that dies, or
    that outlives its hard limit (the assignment's time limit plus
    :data:`HARD_LIMIT_GRACE`), is replaced by a zero report saying the grader
    failed; the other submissions go on.

Outputs (under ``OUTPUT``, default ``grades/<assignment>``)
    ``<student>/results.json`` (Gradescope's format), ``<student>/report.json``
    (the full report, for the instructor and for re-rendering feedback),
    ``<student>/feedback.md`` and ``<student>/feedback.html`` (see
    :mod:`autograder.feedback`), ``<student>/batch.json`` (status, scores,
    fingerprints, timings), and ``gradebook.csv`` with one row per student. A
    student's folder is written in a staging folder and swapped in whole, so it
    is always either the previous complete one, the new complete one, or
    absent (graded again by the next run). Optionally the scores also go into
    nbgrader's gradebook (:mod:`autograder.nbgrader_gradebook`).

Resuming
    A student is skipped when their folder holds a complete report (status
    ``graded`` or ``submission_problem``) made from the same submission bytes
    (:func:`autograder.tree.fingerprint`: sha256 of the zip, or of the
    directory's counting files and names) and the same
    grader (hidden suite, points table, reference library and grading options,
    also a sha256). The base seed is not part of that key: by default every
    grading draws its own secret seed (recorded in the student's
    ``batch.json`` and ``report.json``), and an unchanged student keeps the
    report made with theirs; with an explicit ``seed``, a student whose report
    was made with another seed is graded again. ``force=True`` regrades
    everyone. Failed gradings (``internal_error``, ``crashed``) are always
    retried.

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

import contextlib
import csv
import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder.feedback import AUDIENCES, DEFAULT_AUDIENCE, render_html, render_markdown
from autograder.report import Report
from autograder.tree import BUILD_SUFFIXES, SKIP_DIRS, fingerprint, hash_tree

__all__ = [
    "BatchError",
    "BatchResult",
    "Discovery",
    "GradeOptions",
    "Progress",
    "StudentOutcome",
    "SubmissionEntry",
    "default_jobs",
    "default_output",
    "discover",
    "fingerprint",
    "grade_all",
]

BATCH_FILE = "batch.json"
REPORT_FILE = "report.json"
RESULTS_FILE = "results.json"
GRADEBOOK_CSV = "gradebook.csv"
DEFAULT_OUTPUT_ROOT = "grades"
STAGING_DIR = ".staging"
HARD_LIMIT_GRACE = 300.0  # seconds a grading process may run past the time limit
TERM_GRACE = 15.0  # seconds between SIGTERM and SIGKILL for a process being stopped
COMPLETE = ("graded", "submission_problem")
STATUSES = (*COMPLETE, "internal_error", "crashed")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class BatchError(Exception):
    """A problem with the batch as a whole (no submissions, two for one student...)."""


# -- options ----------------------------------------------------------------------
@dataclass(frozen=True)
class GradeOptions:
    """Options passed to :func:`autograder.runner.grade` for every submission."""

    seed: int | None = cfg.DEFAULT_SEED  # None: each student's grading draws its own secret seed
    course_root: str | None = None
    data_dir: str | None = None
    timeout: float | None = None
    time_limit: float | None = None
    memory_limit_mb: int | None = cfg.DEFAULT_MEMORY_LIMIT_MB
    sandbox_user: str | None = None
    suite_dir: str | None = None
    require_isolation: bool = False


def default_jobs() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_output(assignment: str) -> Path:
    """``grades/<assignment>`` in the current directory."""
    return Path(DEFAULT_OUTPUT_ROOT) / assignment


# -- discovery --------------------------------------------------------------------
@dataclass(frozen=True)
class SubmissionEntry:
    """One student's submission: ``layout`` is ``directory``, ``zip`` or ``nbgrader``."""

    student: str
    path: Path
    layout: str
    timestamp: str | None = None  # nbgrader's timestamp.txt, when present


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: entries sorted by student, the layout, notes."""

    entries: list[SubmissionEntry]
    layout: str  # "folder" or "nbgrader"
    course_dir: Path | None  # the nbgrader course directory (parent of submitted/)
    notes: list[str] = field(default_factory=list)


def _valid_student(name: str) -> bool:
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name \
        and name.isprintable() and len(name) <= 128


def _read_timestamp(folder: Path) -> str | None:
    try:
        text = (folder / "timestamp.txt").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def discover(submissions: str | os.PathLike[str], assignment: str, *,
             exclude: Sequence[str | os.PathLike[str]] = ()) -> Discovery:
    """Find the submissions under ``submissions`` (see the module docstring).

    Paths in ``exclude`` (e.g. the output folder) are skipped. Raises
    :class:`BatchError` when ``submissions`` is not a directory, holds no
    submission, or holds two for one student.
    """
    root = Path(submissions)
    if not root.is_dir():
        raise BatchError(f"submissions folder {root} is not a directory")
    root = root.resolve()
    excluded = {Path(p).resolve() for p in exclude}
    notes: list[str] = []
    entries: dict[str, SubmissionEntry] = {}
    course_dir: Path | None = None
    if root.name == "submitted" or (root / "submitted").is_dir():
        layout = "nbgrader"
        if root.name != "submitted":
            root = root / "submitted"
        course_dir = root.parent
        for child in sorted(root.iterdir()):
            if child.name.startswith(".") or not child.is_dir() or child in excluded:
                continue
            folder = child / assignment
            if not _valid_student(child.name):
                notes.append(f"ignored {child.name!r}: not usable as a student id")
            elif folder.is_dir():
                entries[child.name] = SubmissionEntry(child.name, folder, "nbgrader",
                                                      _read_timestamp(folder))
            else:
                notes.append(f"{child.name} has no submission of {assignment}")
    else:
        layout = "folder"
        for child in sorted(root.iterdir()):
            name = child.name
            if name.startswith(".") or name in SKIP_DIRS or \
                    Path(os.path.realpath(child)) in excluded:  # never raises on a link loop
                continue
            if child.is_dir():
                student, kind = name, "directory"
            elif child.is_file() and name.lower().endswith(".zip"):
                student, kind = name[:-4], "zip"
            else:
                notes.append(f"ignored {name}: not a folder or a .zip file")
                continue
            if not _valid_student(student):
                notes.append(f"ignored {name!r}: not usable as a student id")
                continue
            if student in entries:
                raise BatchError(f"two submissions for student {student}: "
                                 f"{entries[student].path.name} and {name}")
            entries[student] = SubmissionEntry(student, child, kind)
    if not entries:
        raise BatchError(f"no submissions of {assignment} found in {Path(submissions)}")
    return Discovery(entries=[entries[k] for k in sorted(entries)], layout=layout,
                     course_dir=course_dir, notes=notes)


# -- fingerprints (the rules live in autograder.tree) -----------------------------------
def _grader_key(spec: cfg.AssignmentSpec, suite: Path, course_root: Path | None,
                options: GradeOptions) -> str:
    h = hashlib.sha256()
    h.update(b"suite\0")
    hash_tree(h, suite)
    if course_root is not None:
        ref = course_root / "source" / spec.name / spec.library
        if ref.is_dir():
            h.update(b"reference\0")
            hash_tree(h, ref, skip_suffixes=BUILD_SUFFIXES)
    # not the seed: a drawn seed differs on every run, and any seed grades alike (skipping
    # an unchanged student is decided on the seed separately, see grade_all)
    opts = {k: v for k, v in asdict(options).items()
            if k not in ("suite_dir", "course_root", "seed")}
    opts["data_env"] = os.environ.get("CVCOURSE_DATA_DIR")
    h.update(json.dumps(opts, sort_keys=True).encode())
    return h.hexdigest()


# -- per-student outcome ---------------------------------------------------------------
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
    seed: int | None = None  # the base seed this grading used (replay with --seed)
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


def _status(report: Report) -> tuple[str, str]:
    if report.internal_errors or any(t.internal_error for t in report.tasks):
        first = (report.internal_errors or [t.internal_error for t in report.tasks
                                            if t.internal_error])[0]
        return "internal_error", f"internal grader error: {first}"
    if report.submission_problem:
        return "submission_problem", report.submission_problem
    return "graded", ""


def _load_outcome(folder: Path) -> StudentOutcome | None:
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


# -- atomic files ---------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
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


def _write_student_files(folder: Path, report: Report, outcome: StudentOutcome) -> None:
    """Everything of one student into ``folder``; ``batch.json`` last."""
    from autograder.report import write_results_json

    write_results_json(report, folder / RESULTS_FILE)
    _write_feedback(folder, report, outcome.student, outcome.audience)
    _write_atomic(folder / REPORT_FILE, json.dumps(report.to_dict(), indent=1,
                                                   allow_nan=False) + "\n")
    _write_atomic(folder / BATCH_FILE, json.dumps(outcome.to_json(), indent=1) + "\n")


def _write_feedback(folder: Path, report: Report, student: str, audience: str) -> None:
    _write_atomic(folder / "feedback.md", render_markdown(report, student=student,
                                                          audience=audience))
    _write_atomic(folder / "feedback.html", render_html(report, student=student,
                                                        audience=audience))


def _install(staging: Path, final: Path) -> None:
    """Swap the finished ``staging`` folder in as ``final`` (old one removed)."""
    old = None
    if final.exists():
        old = staging.parent / f"old-{uuid.uuid4().hex}"
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- the grading process ---------------------------------------------------------------
_STOP_REQUESTED = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _STOP_REQUESTED
    if not _STOP_REQUESTED:
        _STOP_REQUESTED = True
        raise KeyboardInterrupt  # pytest stops the run and the fixtures close the workers


def _child_main(job: dict[str, Any]) -> None:
    """Grade one submission into ``job["staging"]`` (runs in a process of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch process decides when to stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    from autograder.runner import grade

    staging = Path(job["staging"])
    options = GradeOptions(**job["options"])
    t0 = time.perf_counter()
    try:
        report = grade(
            job["path"], job["assignment"], results_path=None, seed=options.seed,
            course_root=options.course_root, data_dir=options.data_dir,
            timeout=options.timeout, time_limit=options.time_limit,
            memory_limit_mb=options.memory_limit_mb, sandbox_user=options.sandbox_user,
            suite_dir=options.suite_dir, require_isolation=options.require_isolation,
            quiet=True,
        )
    except KeyboardInterrupt:
        if not _STOP_REQUESTED:
            raise
    if _STOP_REQUESTED:
        os._exit(143)  # stopped: write nothing, the next run grades this student again
    status, message = _status(report)
    timing = {"worker_call_s": report.student_seconds, "workers_s": report.worker_seconds,
              "worker_calls": sum(len(task.tests) for task in report.tasks)}
    timing["grade_s"] = time.perf_counter() - t0
    timing["tests_s"] = sum(t.duration for task in report.tasks for t in task.tests)
    timing["tests"] = sum(len(task.tests) for task in report.tasks)
    outcome = StudentOutcome(
        student=job["student"], status=status, score=report.score,
        max_score=report.max_score, tasks={t.id: t.score for t in report.tasks},
        submission=job["path"], layout=job["layout"], sha256=job["sha256"],
        grader_key=job["grader_key"], message=message, timestamp=job["timestamp"],
        audience=job["audience"], timing=timing, seed=report.seed,
    )
    _write_student_files(staging, report, outcome)


# -- the batch ------------------------------------------------------------------------
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


def _mp_context() -> Any:
    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # pragma: no cover - platforms without fork server
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(["autograder.batch", "autograder.batch_warm"])
    return ctx


@dataclass
class _Running:
    proc: Any
    entry: SubmissionEntry
    job: dict[str, Any]
    started: float
    deadline: float
    term_sent: float | None = None
    reason: str = ""


def _crash_outcome(run: _Running, spec: cfg.AssignmentSpec, options: GradeOptions,
                   message: str, seconds: float) -> tuple[Report, StudentOutcome]:
    from autograder.runner import internal_error_report

    report = internal_error_report(spec, options.seed, message)
    report.execution_time = seconds
    job = run.job
    outcome = StudentOutcome(
        student=run.entry.student, status="crashed", score=0.0, max_score=spec.max_score,
        tasks={t: 0.0 for t in spec.tasks}, submission=job["path"], layout=job["layout"],
        sha256=job["sha256"], grader_key=job["grader_key"], seconds=seconds,
        message=f"internal grader error: {message}", timestamp=job["timestamp"],
        audience=job["audience"],
    )
    return report, outcome


def _finish(run: _Running, spec: cfg.AssignmentSpec, options: GradeOptions,
            output: Path) -> StudentOutcome:
    """Install a finished process's folder, or a zero report when it failed."""
    seconds = time.monotonic() - run.started
    staging = Path(run.job["staging"])
    outcome = None
    if run.proc.exitcode == 0:  # finished (even if just as its time ran out)
        loaded = _load_outcome(staging)
        if loaded is not None and loaded.student == run.entry.student \
                and loaded.sha256 == run.job["sha256"]:
            outcome = loaded
            outcome.seconds = seconds
            _write_atomic(staging / BATCH_FILE, json.dumps(outcome.to_json(), indent=1) + "\n")
    if outcome is None:
        code = run.proc.exitcode
        if run.reason:
            why = run.reason
        elif code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"the grading process was killed by {name}"
        else:
            why = f"the grading process exited with code {code} without a complete report"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        report, outcome = _crash_outcome(run, spec, options, why, seconds)
        _write_student_files(staging, report, outcome)
    _install(staging, output / run.entry.student)
    outcome.graded_now = True
    return outcome


def _stop(proc: Any) -> None:
    if proc.is_alive():
        with contextlib.suppress(OSError, ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)


def _run_pool(work: list[tuple[SubmissionEntry, dict[str, Any]]], *, jobs: int,
              spec: cfg.AssignmentSpec, options: GradeOptions, output: Path,
              hard_limit: float, on_done: Callable[[StudentOutcome], None]) -> None:
    ctx = _mp_context()
    pending = deque(work)
    running: dict[int, _Running] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                entry, job = pending.popleft()
                proc = ctx.Process(target=_child_main, args=(job,),
                                   name=f"autograder-grade-{entry.student}")
                proc.start()
                now = time.monotonic()
                running[proc.sentinel] = _Running(proc, entry, job, now, now + hard_limit)
            now = time.monotonic()
            wake = min(r.deadline if r.term_sent is None else r.term_sent + TERM_GRACE
                       for r in running.values())
            ready = wait_for(list(running), timeout=max(0.05, min(wake - now, 5.0)))
            for sentinel in ready:
                run = running.pop(sentinel)
                run.proc.join()
                on_done(_finish(run, spec, options, output))
                run.proc.close()
            now = time.monotonic()
            for run in running.values():
                if run.term_sent is None and now >= run.deadline:
                    run.reason = (f"the grading process did not finish within {hard_limit:g} s "
                                  f"and was stopped")
                    run.term_sent = now
                    _stop(run.proc)
                elif run.term_sent is not None and now >= run.term_sent + TERM_GRACE:
                    with contextlib.suppress(OSError, ProcessLookupError):
                        run.proc.kill()
    except BaseException:  # interrupted: stop every grading, keep what was installed
        for run in running.values():
            _stop(run.proc)
        end = time.monotonic() + TERM_GRACE
        for run in running.values():
            run.proc.join(max(0.0, end - time.monotonic()))
            if run.proc.is_alive():
                run.proc.kill()
                run.proc.join(5)
            shutil.rmtree(run.job["staging"], ignore_errors=True)
        raise


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
    _write_atomic(path, buf.getvalue())
    return path


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

    Raises :class:`BatchError` for a bad batch (nothing is graded) and
    :class:`autograder.config.ConfigError` for an unknown assignment; every
    problem of a single submission ends in that student's report instead.
    """
    start = time.monotonic()
    options = options or GradeOptions()
    if audience not in AUDIENCES:
        raise BatchError(f"unknown feedback audience {audience!r} "
                         f"(choose from {', '.join(AUDIENCES)})")
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise BatchError("the number of parallel jobs must be at least 1")
    suite = Path(options.suite_dir).resolve() if options.suite_dir else cfg.suite_dir(assignment)
    spec = cfg.load_tasks(suite / "tasks.toml")
    if options.time_limit is not None and options.time_limit <= 0:
        raise BatchError("the time limit must be positive")
    course_root = cfg.find_course_root(options.course_root)
    options = GradeOptions(**{**asdict(options), "suite_dir": str(suite),
                              "course_root": str(course_root),
                              "data_dir": (str(Path(options.data_dir).resolve())
                                           if options.data_dir else None)})
    out = Path(output if output is not None else default_output(assignment)).resolve()
    found = discover(submissions, assignment, exclude=[out])
    limit = hard_limit if hard_limit is not None else \
        (options.time_limit or spec.time_limit) + HARD_LIMIT_GRACE
    key = _grader_key(spec, suite, course_root, options)
    out.mkdir(parents=True, exist_ok=True)
    staging_root = out / STAGING_DIR
    shutil.rmtree(staging_root, ignore_errors=True)  # leftovers of an interrupted run

    outcomes: dict[str, StudentOutcome] = {}
    work: list[tuple[SubmissionEntry, dict[str, Any]]] = []
    env, cwd = dict(os.environ), os.getcwd()
    for entry in found.entries:
        sha = fingerprint(entry.path)
        folder = out / entry.student
        prev = None if force else _load_outcome(folder)
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
    total = len(found.entries)
    done = 0
    for student, prev in outcomes.items():  # skipped: refresh feedback for this audience
        if prev.audience != audience:
            folder = out / student
            from autograder.feedback import report_from_dict

            report = report_from_dict(json.loads((folder / REPORT_FILE).read_text("utf-8")))
            _write_feedback(folder, report, student, audience)
            prev.audience = audience
            _write_atomic(folder / BATCH_FILE, json.dumps(prev.to_json(), indent=1) + "\n")
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
            _run_pool(work, jobs=min(jobs, len(work)), spec=spec, options=options, output=out,
                      hard_limit=limit, on_done=on_done)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    ordered = [outcomes[e.student] for e in found.entries]
    result = BatchResult(output=out, gradebook_csv=out / GRADEBOOK_CSV, outcomes=ordered,
                         discovery=found, notes=list(found.notes))
    write_gradebook_csv(result.gradebook_csv, spec, ordered)

    target: str | os.PathLike[str] | None
    if gradebook is None or gradebook is True:
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
    result.wall_seconds = time.monotonic() - start
    return result
