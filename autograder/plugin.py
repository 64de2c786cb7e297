"""The pytest plugin that runs a hidden suite against one submission.

It registers one marker per task of ``tasks.toml``, checks that every test
carries exactly one, provides the fixtures the suites use (``student``,
``reference``, ``seed``, ``rng``, ``secret_rng``, ``dataset``, ``cifar``,
``submission``) and records each test's outcome with a student-readable message
(never the hidden test's source or pytest's traceback).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder import builds, disclosure, extensions
from autograder.config import DEFAULT_MEMORY_LIMIT_MB, AssignmentSpec
from autograder.data import DataUse
from autograder.reference import ReferenceResults, load_reference
from autograder.report import TestResult
from autograder.sandbox import (
    MalformedReply,
    Sandbox,
    StudentError,
    WorkerDied,
    Zygote,
    isolation_available,
)
from autograder.submission import Submission
from autograder.values import StudentValueError

BUDGET_MESSAGE = "submission time budget exhausted"
PLUGIN_KEY = pytest.StashKey["GraderPlugin"]()
#: the ``user_properties`` key under which the ``note`` fixture stores a test's notes
NOTE_PROPERTY = "autograder_note"


class BudgetExhausted(Exception):
    """The submission's overall time limit ran out before this test started."""


@dataclass
class RunContext:
    """Everything a run of the plugin needs to know."""

    spec: AssignmentSpec
    submission: Submission
    course_root: Path
    seed: int = 0
    deadline: float = float("inf")  # time.monotonic() value
    data_dir: Path | None = None
    timeout: float | None = None  # overrides every task's timeout when set
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB
    sandbox_user: str | None = None
    python: str | None = None
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    hide: tuple[Path, ...] = ()  # more paths workers must not see (the suite's folder)
    use_zygote: bool = True  # fork workers from a per-submission fork server
    cache_dir: Path | None = None  # on-disk memo of reference results (None: memory only)


def derive_seed(base_seed: int, item: pytest.Item, purpose: str = "") -> int:
    """Stable 32-bit seed from the base seed, the test's file + name and ``purpose``."""
    key = (f"{purpose}:" if purpose else "") + \
        f"{base_seed}:{Path(str(item.path)).name}::{item.name}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


def _display_name(item: pytest.Item) -> str:
    return f"{Path(str(item.path)).name}::{item.name}"


def describe_exception(exc: BaseException) -> tuple[str, bool]:
    """Student-readable message for a test failure and whether it is internal.

    Whatever the student's code or its values can cause (its exceptions, a dead
    or misbehaving worker, a returned value an accessor of
    :mod:`autograder.values` refuses, a failed check) is the student's failed
    test; any other exception is a bug of the grader or the suite, reported as
    an internal grader error.
    """
    if isinstance(exc, StudentError):
        return exc.describe(), False
    if isinstance(exc, StudentValueError):  # a returned value of the wrong kind/shape/dtype
        return str(exc)[:2000], False
    if isinstance(exc, MalformedReply):
        return exc.reason, False
    if isinstance(exc, WorkerDied):
        if exc.internal:
            return f"the grader failed to start a worker: {exc.reason}", True
        return f"your code's worker process died: {exc.reason}", False
    if isinstance(exc, BudgetExhausted):
        return BUDGET_MESSAGE, False
    if isinstance(exc, builds.BuildFailed):
        return str(exc)[:4000], False
    if isinstance(exc, pytest.fail.Exception):
        return str(exc.msg or "failed"), False
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        return (text or "a check failed")[:2000], False
    try:
        text = str(exc)
    except Exception:
        text = "?"
    return f"internal grader error: {type(exc).__name__}: {text}"[:2000], True




class GraderPlugin:
    """pytest plugin object; pass it as ``pytest.main(..., plugins=[plugin])``."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.results: dict[str, TestResult] = {}
        self.order: list[str] = []
        self.internal_errors: list[str] = []
        self.item_task: dict[str, str | None] = {}
        self.data = DataUse()  # the data sets the run used, their sources and fingerprint
        self.isolated: bool | None = None
        self.isolation_note = ""
        self._zygote: Zygote | None = None
        self._zygote_failures = 0
        self.student_s = 0.0  # time spent waiting on workers (student code)
        self.workers_s = 0.0  # time spent starting and stopping workers
        self.reference_results = ReferenceResults(
            ctx.spec.name, ctx.course_root / "source" / ctx.spec.name / ctx.spec.library,
            ctx.cache_dir, ctx.spec.student_library)
        self.build_spec = ctx.spec.build
        self.ext = builds.ExtensionBuild(self.build_spec)  # the grader's record of the build

    # -- workers ---------------------------------------------------------------
    def zygote(self, ext_dir: str | None = None) -> Zygote | None:
        """The submission's fork server (``ext_dir``: the compiled package), started on
        first use and replaced when it died; ``None`` after three failures (then every
        worker starts as a new process)."""
        if not self.ctx.use_zygote or self._zygote_failures >= 3:
            return None
        if self._zygote is not None and self._zygote.alive:
            return self._zygote
        self.close_zygote()
        try:
            self._zygote = Zygote(
                self.ctx.submission.root, self.ctx.spec.library,
                memory_limit_mb=self.ctx.memory_limit_mb, sandbox_user=self.ctx.sandbox_user,
                python=self.ctx.python, hide=[self.ctx.course_root, *self.ctx.hide],
                preload=self.ctx.spec.preload, ext_dir=ext_dir)
        except WorkerDied:
            self._zygote_failures += 1
            self._zygote = None
        return self._zygote

    def close_zygote(self) -> None:
        """Stop the fork server and everything its workers left behind."""
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def extension_folder(self, task: str | None) -> str | None:
        """The compiled package's folder, built before any student code runs (see
        :class:`autograder.builds.ExtensionBuild`, which raises ``BuildFailed``)."""
        return self.ext.folder(task, self.ctx.submission.root, self.ctx.spec.library,
                               self.ctx.deadline, memory_limit_mb=self.ctx.memory_limit_mb,
                               sandbox_user=self.ctx.sandbox_user, python=self.ctx.python,
                               hide=[self.ctx.course_root, *self.ctx.hide])

    def zygote_failed(self) -> None:
        """The fork server could not fork a worker: count it and stop it (see :meth:`zygote`)."""
        self._zygote_failures += 1
        self.close_zygote()

    def worker_started(self, sandbox: Sandbox) -> None:
        """Record a started worker's confinement: the run is isolated only if every worker is."""
        if self.isolated is None or not sandbox.isolated:
            self.isolated = sandbox.isolated
            self.isolation_note = sandbox.isolation_note

    def worker_closed(self, sandbox: Sandbox, *, student: bool) -> None:
        """Add a closed worker's times (``student``: its requests ran the student's code)."""
        if student:
            self.student_s += sandbox.busy_s
        self.workers_s += sandbox.startup_s + sandbox.close_s

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close_zygote()
        self.ext.remove()
        disclosure.clear()  # outside a run, checks show expected values again

    # -- configuration and collection ----------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[PLUGIN_KEY] = self
        for task in self.ctx.spec.tasks.values():
            config.addinivalue_line("markers", f"{task.id}: {task.title}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = str(report.longrepr).strip().splitlines()
            last = next((ln for ln in reversed(lines) if ln.strip()), "collection failed")
            self.internal_errors.append(f"could not collect {report.nodeid}: {last.strip()}"[:500])

    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        keep = []
        for item in items:
            marks = sorted({m.name for m in item.iter_markers() if m.name in self.ctx.spec.tasks})
            name = _display_name(item)
            if len(marks) == 1:
                self.item_task[item.nodeid] = marks[0]
                keep.append(item)
                continue
            why = "no task marker" if not marks else f"several task markers {marks}"
            msg = f"test {name} has {why} (each test needs exactly one)"
            self.internal_errors.append(msg)
            for task in marks or [None]:
                self._record(TestResult(name=name, task=task, outcome="error",
                                        message=f"internal grader error: {msg}", internal=True),
                             key=f"{item.nodeid}#{task}")
        items[:] = keep

    # -- running -------------------------------------------------------------
    def _record(self, result: TestResult, key: str) -> None:
        if key not in self.results:
            self.order.append(key)
            self.results[key] = result
        else:
            old = self.results[key]
            if old.outcome == "passed" and result.outcome != "passed":
                self.results[key] = result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        seed = derive_seed(self.ctx.seed, item)
        random.seed(seed)
        np.random.seed(seed)
        disclosure.set_visibility(self.ctx.spec.tasks, self.item_task.get(item.nodeid))
        if time.monotonic() >= self.ctx.deadline:
            raise BudgetExhausted(BUDGET_MESSAGE)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        rep = outcome.get_result()
        task = self.item_task.get(item.nodeid)
        base = dict(name=_display_name(item), task=task, seed=derive_seed(self.ctx.seed, item),
                    note="; ".join(str(v) for k, v in item.user_properties if k == NOTE_PROPERTY))
        if rep.when == "call" and rep.passed:
            self._record(TestResult(outcome="passed", duration=rep.duration, **base),
                         item.nodeid)
            return
        if rep.passed:
            return
        if rep.skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else "skipped"
            message = reason.removeprefix("Skipped: ") if isinstance(reason, str) else "skipped"
            self._record(TestResult(outcome="skipped", message=message, **base), item.nodeid)
            return
        exc = call.excinfo.value if call.excinfo is not None else None
        if exc is None:
            message, internal = "failed", False
        else:
            message, internal = describe_exception(exc)
        kind = "failed" if rep.when == "call" else "error"
        self._record(TestResult(outcome=kind, message=message, duration=rep.duration,
                                internal=internal, **base), item.nodeid)
        rep.longrepr = message  # keep the hidden test's source and traceback out of any output

    # -- results ---------------------------------------------------------------
    def ordered_results(self) -> list[TestResult]:
        """All recorded test results in collection/run order."""
        return [self.results[k] for k in self.order]

    def mark_isolation(self) -> None:
        """Fill in isolation info when no worker was started during the run."""
        if self.isolated is None:
            ok, note = isolation_available(self.ctx.python or sys.executable,
                                           self.ctx.sandbox_user)
            self.isolated, self.isolation_note = ok, note


def _plugin(request: pytest.FixtureRequest) -> GraderPlugin:
    return request.config.stash[PLUGIN_KEY]


# -- fixtures (this module is registered as a plugin next to GraderPlugin) ---------
@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """Per-test seed derived from the run's base seed and the test id."""
    plugin = _plugin(request)
    return derive_seed(plugin.ctx.seed, request.node)

@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``note(text)``: a line this test reports with its result, on a pass too.

    For what the student should see whatever the outcome (a measured accuracy,
    the threshold in force); it goes to ``results.json`` and the feedback.
    """
    def add(text: str) -> None:
        request.node.user_properties.append((NOTE_PROPERTY, str(text)))
    return add


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` for this test."""
    return np.random.default_rng(seed)

@pytest.fixture
def secret_rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A stream the worker cannot reproduce, for what it must not predict (threat model)."""
    return np.random.default_rng(derive_seed(_plugin(request).ctx.seed, request.node, "secret"))

@pytest.fixture
def submission(request: pytest.FixtureRequest) -> Submission:
    """The prepared submission (``root``, ``original``, ``kind``, ``notes``)."""
    plugin = _plugin(request)
    return plugin.ctx.submission

def _worker_options(plugin: GraderPlugin, task: str | None, seed: int) -> dict[str, Any]:
    """Sandbox settings of a worker for ``task``: its timeout within the run's budget, limits."""
    timeout = plugin.ctx.timeout or plugin.ctx.spec.task_timeout(task or "")
    remaining = plugin.ctx.deadline - time.monotonic()
    if remaining <= 0:
        raise BudgetExhausted(BUDGET_MESSAGE)
    return dict(
        seed=seed, timeout=max(0.1, min(timeout, remaining)),
        memory_limit_mb=plugin.ctx.memory_limit_mb, sandbox_user=plugin.ctx.sandbox_user,
        python=plugin.ctx.python, hide=[plugin.ctx.course_root, *plugin.ctx.hide],
    )


@pytest.fixture
def student(request: pytest.FixtureRequest, seed: int) -> Iterator[Sandbox]:
    """A fresh sandboxed worker bound to the student's library for this test."""
    plugin = _plugin(request)
    task = plugin.item_task.get(request.node.nodeid)
    kwargs = _worker_options(plugin, task, seed)
    kwargs["ext_dir"] = ext_dir = plugin.extension_folder(task)  # before any student code
    zygote = plugin.zygote(ext_dir)
    try:
        sandbox = Sandbox(plugin.ctx.submission.root, plugin.ctx.spec.library, zygote=zygote,
                          **kwargs)
    except WorkerDied:
        if zygote is None:
            raise
        plugin.zygote_failed()  # start this worker afresh
        sandbox = Sandbox(plugin.ctx.submission.root, plugin.ctx.spec.library, **kwargs)
    plugin.worker_started(sandbox)
    try:
        yield sandbox
    finally:
        sandbox.close()
        plugin.worker_closed(sandbox, student=True)

@pytest.fixture
def grader_worker(request: pytest.FixtureRequest, seed: int) -> Iterator[Any]:
    """``grader_worker(files, package) -> Sandbox``: a worker that holds NO student code.

    ``files`` maps paths under a fresh folder (``"<package>/__init__.py"``...) to the
    grader's files to copy there (an engine module, a submitted data file); the worker
    imports ``package`` from it, confined like ``student``: grader code runs on
    submitted DATA (a model described as data) outside the grader's process.
    """
    plugin = _plugin(request)
    task = plugin.item_task.get(request.node.nodeid)
    opened: list[Sandbox] = []

    def start(files: dict[str, Path], package: str) -> Sandbox:
        root = Path(tempfile.mkdtemp(prefix="grader-worker-", dir=plugin.ctx.scratch))
        os.chmod(root, 0o755)
        for rel, src in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.chmod((root / rel).parent, 0o755)  # whatever the umask: the worker's uid reads it
            shutil.copyfile(src, root / rel)
            os.chmod(root / rel, 0o644)
        sandbox = Sandbox(root, package, **_worker_options(plugin, task, seed))
        opened.append(sandbox)
        return sandbox

    try:
        yield start
    finally:
        for sandbox in opened:
            sandbox.close()
            plugin.worker_closed(sandbox, student=False)


@pytest.fixture(scope="session")
def reference(request: pytest.FixtureRequest) -> types.ModuleType:
    """The instructor's reference library, loaded under a private name."""
    plugin = _plugin(request)
    if plugin.build_spec is not None:  # trusted code: compiled in place when missing or stale
        pkg = plugin.ctx.course_root / "source" / plugin.ctx.spec.name / plugin.ctx.spec.library
        extensions.ensure_reference_built(pkg, plugin.ctx.spec.library, plugin.build_spec.sources)
    return load_reference(plugin.ctx.course_root, plugin.ctx.spec.name, plugin.ctx.spec.library,
                          plugin.ctx.spec.student_library)

@pytest.fixture
def reference_memo(request: pytest.FixtureRequest, seed: int) -> Any:
    """``reference_memo(compute, **key)``: the reference's result for this test, remembered.

    For expensive reference computations (training the reference to compare
    accuracies): the result depends only on the reference library, the test,
    its seed, the data and ``key``, so it is computed once and reused for
    every submission graded with the same seed. ``compute`` returns a dict of
    numbers.
    """
    plugin = _plugin(request)

    def memo(compute: Any, **key: Any) -> dict[str, Any]:
        parts = json.dumps(key, sort_keys=True, default=str)
        name = f"{request.node.nodeid}|{seed}|{plugin.data.fingerprint}|{parts}"
        return plugin.reference_results.get(name, compute)

    return memo


@pytest.fixture(scope="session")
def dataset(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """``dataset(name)``: the registered data set ``name`` (:mod:`coursedata.registry`;
    ``cifar10`` is the CS231n splits, read-only), from the run's data directory or a
    stand-in generated in the official format; the report names each one's source."""
    plugin = _plugin(request)

    def get(name: str) -> Any:
        loaded = plugin.data.load(name, plugin.ctx.data_dir, plugin.ctx.scratch)
        return dict(loaded) if isinstance(loaded, dict) else loaded

    return get


@pytest.fixture(scope="session")
def cifar(dataset: Callable[[str], Any]) -> dict[str, np.ndarray]:
    """``dataset("cifar10")``: preprocessed CIFAR-10 splits (kept for the existing suites)."""
    return dataset("cifar10")
