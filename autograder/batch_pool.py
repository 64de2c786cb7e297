"""The grading pool of a batch: one process per submission, at most ``jobs`` at a time.

Each submission is graded by :func:`autograder.runner.grade` in a process of
its own (the runner runs pytest in-process, so a process is never reused).
Processes are forked from a multiprocessing fork server that has already
imported the grader and probed the sandbox (:mod:`autograder.batch_warm`). A
grading process that dies, or that outlives its hard limit, is replaced by a
zero report saying the grader failed (status ``crashed``); the other
submissions go on. An interrupted pool stops every grading and keeps what
was installed.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder import data
from autograder.batch_discovery import SubmissionEntry
from autograder.batch_store import (
    BATCH_FILE,
    StudentOutcome,
    install,
    load_outcome,
    status_of,
    write_atomic,
    write_student_files,
)
from autograder.options import GradeOptions
from autograder.report import Report

__all__ = ["HARD_LIMIT_GRACE", "TERM_GRACE", "run_pool"]

HARD_LIMIT_GRACE = 300.0  # seconds a grading process may run past the time limit
TERM_GRACE = 15.0  # seconds between SIGTERM and SIGKILL for a process being stopped


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
        report = grade(job["path"], job["assignment"], results_path=None, quiet=True,
                       **options.grade_kwargs())
    except KeyboardInterrupt:
        if not _STOP_REQUESTED:
            raise
    if _STOP_REQUESTED:
        os._exit(143)  # stopped: write nothing, the next run grades this student again
    status, message = status_of(report)
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
    write_student_files(staging, report, outcome)



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
        loaded = load_outcome(staging)
        if loaded is not None and loaded.student == run.entry.student \
                and loaded.sha256 == run.job["sha256"]:
            outcome = loaded
            outcome.seconds = seconds
            write_atomic(staging / BATCH_FILE, json.dumps(outcome.to_json(), indent=1) + "\n")
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
        write_student_files(staging, report, outcome)
    install(staging, output / run.entry.student)
    outcome.graded_now = True
    return outcome


def _stop(proc: Any) -> None:
    if proc.is_alive():
        with contextlib.suppress(OSError, ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)


def run_pool(work: list[tuple[SubmissionEntry, dict[str, Any]]], *, jobs: int,
             spec: cfg.AssignmentSpec, options: GradeOptions, output: Path,
             hard_limit: float, on_done: Callable[[StudentOutcome], None]) -> None:
    """Grade every ``(entry, job)`` of ``work`` into ``output``; ``on_done`` gets each
    student's outcome as soon as their folder is installed."""
    # the warm fork server (started on first use) preloads only the declared data sets
    os.environ[data.WARM_ENV] = ",".join(data.declared_datasets(spec))
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
