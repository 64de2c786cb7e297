"""Grade one submission: intake, run the hidden suite in-process, aggregate, report."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from autograder import config as cfg
from autograder.checks import NOT_GRADABLE
from autograder.config import AssignmentSpec
from autograder.plugin import GraderPlugin, RunContext
from autograder.report import Report, TaskResult, TestResult, write_results_json
from autograder.sandbox import isolation_available
from autograder.submission import Submission, SubmissionProblem, prepare_submission

__all__ = ["NOT_SELECTED", "aggregate", "grade", "internal_error_report"]

NOT_SELECTED = "not graded in this run (only some tasks were selected)"


def _empty_tasks(spec: AssignmentSpec) -> list[TaskResult]:
    return [TaskResult(id=t.id, title=t.title, points=t.points, visibility=t.visibility)
            for t in spec.tasks.values()]


def aggregate(spec: AssignmentSpec, results: list[TestResult],
              selected: Sequence[str] | None = None) -> list[TaskResult]:
    """Per-task scores: points * passed / (passed + failed + error), rounded to 2 decimals.

    Tasks outside ``selected`` (when given) score 0 with the note
    :data:`NOT_SELECTED` instead of an internal error.
    """
    tasks = _empty_tasks(spec)
    for task in tasks:
        if selected is not None and task.id not in selected:
            task.not_graded = NOT_SELECTED
            continue
        task.tests = [r for r in results if r.task == task.id]
        counted = [r for r in task.tests if r.outcome in ("passed", "failed", "error")]
        internal = [r for r in task.tests if r.internal]
        not_gradable = [r for r in task.tests
                        if r.outcome == "skipped" and r.message.startswith(NOT_GRADABLE)]
        if not task.tests:
            task.internal_error = "no tests were collected for this task"
        elif not counted and not_gradable:
            task.not_graded = not_gradable[0].message
        elif not counted:
            task.internal_error = "every test of this task was skipped"
        elif internal:
            task.internal_error = f"{len(internal)} test(s) failed inside the grader itself"
        if counted:
            passed = sum(r.outcome == "passed" for r in counted)
            task.score = round(task.points * passed / len(counted), 2)
    return tasks


def internal_error_report(spec: AssignmentSpec, seed: int, message: str,
                          start: float | None = None) -> Report:
    """A complete zero report saying the grader itself failed."""
    tasks = _empty_tasks(spec)
    for t in tasks:
        t.internal_error = message
    rep = Report(assignment=spec.name, tasks=tasks, seed=seed, score=0.0,
                 max_score=spec.max_score, internal_errors=[message])
    if start is not None:
        rep.execution_time = time.monotonic() - start
    return rep


def grade(
    submission_path: str | os.PathLike[str],
    assignment: str,
    *,
    results_path: str | os.PathLike[str] | None = None,
    seed: int | None = cfg.DEFAULT_SEED,
    course_root: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    time_limit: float | None = None,
    memory_limit_mb: int | None = cfg.DEFAULT_MEMORY_LIMIT_MB,
    sandbox_user: str | None = None,
    suite_dir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    tasks: Sequence[str] | None = None,
    require_isolation: bool = False,
    quiet: bool = True,
) -> Report:
    """Grade ``submission_path`` (directory or zip) for ``assignment``.

    ``suite_dir`` defaults to ``autograder/suites/<assignment>/``. ``tasks``
    restricts the run to those task ids (the others are reported as not
    graded); the default grades every task. ``seed`` is the base seed of the
    per-test seeds; ``None`` (the default) draws a fresh secret one
    (:func:`autograder.config.draw_seed`), recorded in the report. With
    ``require_isolation``, a run
    where workers cannot be confined (see
    :func:`autograder.sandbox.isolation_available`) grades nothing and reports
    an internal error instead. Raises
    :class:`autograder.config.ConfigError` when the assignment's ``tasks.toml``
    cannot be read or ``tasks`` names an unknown task; every other problem (a bad submission, an
    error in the suite or the grader) still yields a complete :class:`Report`,
    written to ``results_path`` when given.
    """
    start = time.monotonic()
    seed = cfg.draw_seed() if seed is None else int(seed)
    suite = Path(suite_dir) if suite_dir is not None else cfg.suite_dir(assignment)
    spec = cfg.load_tasks(suite / "tasks.toml")
    selected = None if tasks is None else tuple(tasks)
    if selected is not None:
        unknown = [t for t in selected if t not in spec.tasks]
        if unknown or not selected:
            raise cfg.ConfigError(
                f"unknown task(s) {', '.join(unknown) or '(none given)'}; known: "
                f"{', '.join(spec.tasks)}")
    if time_limit is not None:
        spec = AssignmentSpec(**{**spec.__dict__, "time_limit": float(time_limit)})
    _become_subreaper()
    python = python or sys.executable
    # Whether workers can be confined here: decided once for the run (the report's note).
    confined, note = isolation_available(python, sandbox_user)
    if require_isolation and not confined:
        report = internal_error_report(
            spec, seed, f"isolation was required but is not available: {note}", start)
        report.isolation_note = note
        if results_path is not None:
            write_results_json(report, results_path)
        return report
    work = Path(tempfile.mkdtemp(prefix="autograder-"))
    os.chmod(work, 0o711)
    try:
        try:
            report = _grade(submission_path, spec, suite, work, start, seed=seed,
                            course_root=course_root, data_dir=data_dir, timeout=timeout,
                            memory_limit_mb=memory_limit_mb, sandbox_user=sandbox_user,
                            python=python, selected=selected, quiet=quiet,
                            isolation=(confined, note))
        except Exception as exc:  # the grader itself failed: still a complete report
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            report = internal_error_report(spec, seed, detail[:1000], start)
            if not quiet:
                traceback.print_exc()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.execution_time = time.monotonic() - start
    if results_path is not None:
        write_results_json(report, results_path)
    return report


def _grade(submission_path: str | os.PathLike[str], spec: AssignmentSpec, suite: Path,
           work: Path, start: float, *, seed: int,
           course_root: str | os.PathLike[str] | None,
           data_dir: str | os.PathLike[str] | None, timeout: float | None,
           memory_limit_mb: int | None, sandbox_user: str | None, python: str | None,
           selected: tuple[str, ...] | None, quiet: bool,
           isolation: tuple[bool, str]) -> Report:
    try:
        sub: Submission = prepare_submission(submission_path, work / "submission", spec)
    except SubmissionProblem as problem:
        ok, note = isolation
        tasks = _empty_tasks(spec)
        return Report(assignment=spec.name, tasks=tasks, seed=seed, score=0.0,
                      max_score=spec.max_score, submission_problem=problem.message,
                      isolated=ok, isolation_note=note)
    root = cfg.find_course_root(course_root)
    confined = isolation[0]
    ctx = RunContext(
        spec=spec, submission=sub, course_root=root, seed=seed,
        deadline=start + spec.time_limit,
        data_dir=Path(data_dir) if data_dir is not None else None,
        timeout=timeout, memory_limit_mb=memory_limit_mb, sandbox_user=sandbox_user,
        python=python, scratch=work, hide=(suite,),
        cache_dir=cfg.default_cache_dir(confined),
    )
    plugin = GraderPlugin(ctx)
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n")
    args = [
        str(suite), "-c", str(ini), "--rootdir", str(suite), "--confcutdir", str(suite),
        "-p", "no:cacheprovider", "-p", "no:randomly", "--strict-markers",
        "--import-mode=importlib", "--assert=plain", "-q", "--no-header", "--tb=no",
        "-o", "console_output_style=classic", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]
    if selected is not None:
        args += ["-m", " or ".join(selected)]
    sink = io.StringIO()
    try:
        if quiet:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = _run_pytest(args, plugin)
        else:
            code = _run_pytest(args, plugin)
    finally:
        plugin.close_zygote()  # every worker and what it started is gone before the report
    plugin.mark_isolation()
    results = plugin.ordered_results()
    tasks = aggregate(spec, results, selected)
    internal = list(plugin.internal_errors)
    if int(code) in (3, 4):  # pytest internal error / usage error
        internal.append(f"pytest could not run the suite (exit code {int(code)})")
    score = round(sum(t.score for t in tasks), 2)
    notes = [f"note: {n}" for n in sub.notes]
    return Report(
        assignment=spec.name, tasks=tasks, seed=seed, score=score, max_score=spec.max_score,
        data_source=plugin.data.summary, data_sources=dict(plugin.data.sources),
        isolated=bool(plugin.isolated),
        isolation_note=plugin.isolation_note, internal_errors=internal, notes=notes,
        student_seconds=plugin.student_s, worker_seconds=plugin.workers_s,
    )


def _become_subreaper() -> None:
    """Adopt orphans of the workers (daemons), so that clean-up can find and reap them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # not Linux: nothing to adopt
        pass


def _forget_suite_modules(suite: Path) -> None:
    """Drop modules imported from ``suite`` so a later run re-imports them fresh."""
    base = str(suite.resolve())
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if isinstance(file, str) and os.path.abspath(file).startswith(base + os.sep):
            del sys.modules[name]


def _run_pytest(args: list[str], plugin: GraderPlugin) -> int:
    import pytest

    from autograder import plugin as fixtures_module

    suite = Path(args[0])
    _forget_suite_modules(suite)
    try:
        return int(pytest.main(args, plugins=[plugin, fixtures_module]))
    finally:
        _forget_suite_modules(suite)
