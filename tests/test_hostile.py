"""A corpus of hostile submissions: each earns exactly what its honest part deserves.

Every case is data, a folder ``tests/fixtures/hostile/<case>/`` holding only the
files that differ from a correct submission, plus ``case.toml`` (the attack in
one line, the exact points per task, and what else to check; the keys are
listed in ``tests/fixtures/hostile/README.md``). For each case the test builds
the submission, grades it like the real grader, and checks:

- the per-task scores are exactly the expected ones;
- the report is complete: ``results.json`` parses, lists every task of
  ``tasks.toml`` with its points and visibility, its totals add up, it keeps
  the seed in ``extra_data`` only (never in the student's text), says
  whether the run was isolated, records no internal grader error, and is
  the grader's own (no forged file, even after waiting);
- the grader is untouched: its ``numpy``, ``builtins``, ``pytest`` and
  ``autograder`` functions are the same objects as before, it imported nothing
  from the submission, and its output was not flooded;
- nothing the submission started is still running;
- the case's own checks (messages, leaked text, marker files, time, memory).

Cases that only confinement can defeat (``needs_isolation``) are skipped when
the report says the worker was not isolated. The Assignment 1 cases are slow
(a full grading each).
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import tracemalloc
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from leftover_checks import marked_ipc, marked_shm, remove_marked

from autograder import config as cfg
from autograder.runner import grade

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOSTILE = HERE / "fixtures" / "hostile"
KIT = HOSTILE / "_kit"
TOY = HERE / "fixtures" / "toy"
ASSIGNMENTS: dict[str, dict[str, Path]] = {
    "toy": {"suite": TOY / "suite", "course_root": TOY, "reference": TOY / "source" / "toy"},
    "assignment1": {
        "suite": REPO / "autograder" / "suites" / "assignment1",
        "course_root": REPO,
        "reference": REPO / "source" / "assignment1",
    },
}
SEED = 4242
A1_TIME_LIMIT = 300.0  # seconds for a whole Assignment 1 grading (tasks.toml says 900)
MARK = "# HOSTILE CORPUS"
PROCESS_MARK = b"hostile-corpus"
FORGED = "forged-by-hostile-corpus"
ZIP_KINDS = ("empty", "dotdot", "absolute", "symlink", "bomb")
MAX_GRADER_OUTPUT = 64 * 1024
MAX_REPORT_BYTES = 200_000

# The items of the issue, and the cases that cover them.
REQUIRED = {
    "numpy/torch checker monkeypatching": ["patch_numpy_torch", "a1_allclose_sign_slip"],
    "builtins monkeypatching": ["patch_builtins"],
    "pytest monkeypatching": ["patch_pytest", "conftest_injection"],
    "test runner patching": ["patch_runner"],
    "hidden-test reading": ["read_hidden_suite"],
    "reference reading": ["read_reference"],
    "importing the reference from the grader's files": ["import_reference", "a1_import_reference"],
    "forged results": ["forge_and_exit", "daemon_overwrites_results", "a1_forge_exit_in_optim"],
    "exit during import": ["exit_during_import", "a1_forge_exit_in_optim"],
    "os._exit mid-test": ["forge_and_exit"],
    "infinite loop": ["infinite_loop"],
    "memory bomb": ["memory_bomb"],
    "fork bomb": ["fork_bomb"],
    "returned object whose unpickling runs code": ["unpickle_payload"],
    "output flood": ["flood_output"],
    "missing files": ["missing_module"],
    "notebook instead of a module": ["notebook_only", "notebook_instead_of_module",
                                     "submission_is_notebook"],
    "empty zip": ["empty_zip"],
    "zip with paths outside its root": ["zip_outside_root", "zip_absolute_path", "zip_symlink"],
    "leftovers (/dev/shm, SysV IPC, pid-hopping and signal-proof processes)": [
        "leftover_shm", "leftover_sysv", "leftover_forker", "leftover_sleeper"],
}


# ----------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One hostile submission, as described by its ``case.toml``."""

    name: str
    path: Path
    description: str
    expect: dict[str, float]
    others_full: bool = False
    assignment: str = "toy"
    needs_isolation: bool = False
    submission_problem: bool = False
    problem_mentions: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    kit: list[str] = field(default_factory=list)
    edit: list[dict[str, str]] = field(default_factory=list)
    append: list[dict[str, str]] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    zip: str | None = None
    single_file: str | None = None
    timeout: float | None = None
    time_limit: float | None = None
    memory_limit_mb: int | None = None
    cli: bool = False
    messages: dict[str, str] = field(default_factory=dict)
    must_not_contain: list[str] = field(default_factory=list)
    report_max_bytes: int | None = None
    wait_after: float = 0.0
    accomplice_port: int | None = None
    unpickle_marker: str | None = None
    must_not_exist: list[str] = field(default_factory=list)
    max_seconds: float | None = None
    grader_max_rss_mb: int | None = None
    bait: bool = False


def load_case(path: Path) -> Case:
    """Parse ``path/case.toml``; unknown keys are an error (typos must not pass silently)."""
    with open(path / "case.toml", "rb") as fh:
        data = tomllib.load(fh)
    known = {f.name for f in fields(Case)} - {"name", "path", "others_full"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path.name}/case.toml: unknown keys {unknown}")
    expect = dict(data.pop("expect", {}))
    others = expect.pop("others", None)
    if others not in (None, "full"):
        raise ValueError(f"{path.name}/case.toml: [expect] others must be \"full\"")
    return Case(name=path.name, path=path, expect={k: float(v) for k, v in expect.items()},
                others_full=others == "full", **data)


CASES = [load_case(p) for p in sorted(HOSTILE.iterdir()) if (p / "case.toml").is_file()]
ALL = [pytest.param(c, id=c.name) for c in CASES]
GRADED = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.assignment != "toy" else [])
          for c in CASES]


def spec_of(case: Case) -> cfg.AssignmentSpec:
    return cfg.load_tasks(ASSIGNMENTS[case.assignment]["suite"] / "tasks.toml")


def expected_scores(case: Case, spec: cfg.AssignmentSpec) -> dict[str, float]:
    out = {}
    for tid, task in spec.tasks.items():
        if tid in case.expect:
            out[tid] = case.expect[tid]
        elif case.others_full:
            out[tid] = task.points
        else:
            raise ValueError(f"{case.name}: no expected score for task {tid}")
    return out


# ------------------------------------------------------------------ building submissions


def _replace_once(path: Path, find: str, replace: str, case: str) -> None:
    text = path.read_text(encoding="utf-8")
    count = text.count(find)
    assert count == 1, f"{case}: {find!r} occurs {count} times in {path.name} (expected once)"
    path.write_text(text.replace(find, replace), encoding="utf-8")


def build_submission(case: Case, spec: cfg.AssignmentSpec, tmp_path: Path) -> Path:
    """The case's submission (a folder, a zip or a single file) under ``tmp_path``."""
    reference = ASSIGNMENTS[case.assignment]["reference"]
    sub = tmp_path / "submission"
    if case.assignment == "toy":
        shutil.copytree(reference, sub, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        from coursegen.mutants import build_reference_submission

        build_reference_submission(reference, sub)
    for rel in case.delete:
        target = sub / rel
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    for src in sorted(case.path.rglob("*")):
        if src.is_file() and src.name != "case.toml" and "__pycache__" not in src.parts:
            dest = sub / src.relative_to(case.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    for name in case.kit:
        shutil.copyfile(KIT / f"{name}.py", sub / spec.library / f"_hostile_{name}.py")
    for e in case.edit:
        _replace_once(sub / e["file"], e["find"], e["replace"], case.name)
    for a in case.append:
        with open(sub / a["file"], "a", encoding="utf-8") as fh:
            fh.write(a["code"])
    for rel, target in case.symlinks.items():
        link = sub / rel
        link.unlink(missing_ok=True)
        link.symlink_to(target.replace("@REFERENCE", str(reference)))
    if case.single_file:
        single = tmp_path / case.single_file
        shutil.copyfile(case.path / case.single_file, single)
        return single
    if case.zip:
        return make_zip(case.zip, sub, tmp_path / "submission.zip", reference)
    return sub


def make_zip(kind: str, sub: Path, archive: Path, reference: Path) -> Path:
    """Zip ``sub`` with the hostile twist ``kind`` (see ZIP_KINDS)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        if kind == "empty":
            return archive
        for path in sorted(p for p in sub.rglob("*") if p.is_file()):
            rel = path.relative_to(sub).as_posix()
            if kind == "symlink" and rel.endswith("/ops.py"):
                info = zipfile.ZipInfo(rel)
                info.create_system = 3  # unix: external_attr holds the mode
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, str(reference / rel))
                continue
            zf.write(path, rel)
        if kind == "dotdot":
            zf.writestr("../../hostile-corpus-escaped.py", "# HOSTILE CORPUS: escaped\n")
        elif kind == "absolute":
            zf.writestr(zipfile.ZipInfo("/tmp/hostile-corpus-absolute.py"),
                        "# HOSTILE CORPUS: absolute\n")
        elif kind == "bomb":
            zeros = bytes(45 * 1024 * 1024)
            for i in range(5):
                zf.writestr(f"mylib/data/blob{i}.bin", zeros, compresslevel=1)
    return archive


def plant_bait(case: Case, spec: cfg.AssignmentSpec) -> Path:
    """A world-readable copy of the hidden suite and the reference in the shared temp dir.

    As an unpacked autograder bundle or an instructor's scratch copy would be.
    A confined worker must not see it.
    """
    paths = ASSIGNMENTS[case.assignment]
    bait = Path(tempfile.mkdtemp(prefix="hostile-corpus-bait-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(paths["suite"], bait / "suite", ignore=ignore)
    shutil.copytree(paths["reference"] / spec.library,
                    bait / "source" / spec.name / spec.library, ignore=ignore)
    for path in [bait, *bait.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return bait


# ------------------------------------------------------------ watching the grader


def grader_state() -> dict[str, int]:
    """Identities of what a hostile submission would like to patch in the grader."""
    import _pytest.outcomes
    import _pytest.python
    import _pytest.reports
    import _pytest.runner

    import autograder.checks
    import autograder.plugin
    import autograder.report
    import autograder.runner

    watched: dict[str, Any] = {
        "pytest.main": pytest.main, "pytest.fail": pytest.fail, "pytest.skip": pytest.skip,
        "pytest.approx": pytest.approx, "_pytest.outcomes.fail": _pytest.outcomes.fail,
        "_pytest.python.Function.runtest": _pytest.python.Function.runtest,
        "_pytest.runner.call_and_report": _pytest.runner.call_and_report,
        "_pytest.runner.pytest_runtest_call": _pytest.runner.pytest_runtest_call,
        "_pytest.reports.TestReport.from_item_and_call":
            vars(_pytest.reports.TestReport)["from_item_and_call"],
        "autograder.checks.assert_close": autograder.checks.assert_close,
        "autograder.checks.assert_gradient": autograder.checks.assert_gradient,
        "autograder.checks.rel_error": autograder.checks.rel_error,
        "autograder.runner.aggregate": autograder.runner.aggregate,
        "autograder.runner.write_results_json": autograder.runner.write_results_json,
        "autograder.report.write_results_json": autograder.report.write_results_json,
        "autograder.report.gradescope_results": autograder.report.gradescope_results,
        "autograder.plugin.describe_exception": autograder.plugin.describe_exception,
        "os._exit": os._exit, "sys.exit": sys.exit, "json.dumps": json.dumps,
    }
    for name in ("allclose", "isclose", "array_equal", "array_equiv"):
        watched[f"numpy.{name}"] = getattr(np, name)
    for name in ("assert_allclose", "assert_array_almost_equal", "assert_almost_equal",
                 "assert_array_equal", "assert_equal"):
        watched[f"numpy.testing.{name}"] = getattr(np.testing, name)
    state = {name: id(obj) for name, obj in watched.items()}
    state.update({f"builtins.{k}": id(v) for k, v in vars(builtins).items() if k != "_"})
    state["sys.modules['torch']"] = id(sys.modules.get("torch"))
    return state


def foreign_modules(before: set[str], roots: list[str]) -> list[str]:
    """Modules of this process loaded from the submission (or new ones with its names)."""
    bad = []
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if isinstance(file, str) and any(os.path.abspath(file).startswith(r) for r in roots):
            bad.append(f"{name} ({file})")
        elif name not in before and name.split(".")[0] in {
                "mylib", "cs231n", "conftest", "sitecustomize", "usercustomize", "torch"}:
            bad.append(name)
    return bad


def hostile_processes() -> list[int]:
    """Live (not zombie) processes carrying the corpus's mark in their command line."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if PROCESS_MARK in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def kill_processes(pids: list[int]) -> None:
    """SIGKILL these processes (started by a hostile case) and reap those adopted by us."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class Accomplice:
    """A server on 127.0.0.1 that answers relu(x) to whoever asks (the cheater's friend)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    conn.settimeout(5)
                    request = json.loads(conn.makefile("rb").readline())
                    answer = np.maximum(np.asarray(request["data"], dtype=float), 0).tolist()
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except (OSError, ValueError, KeyError):
                    pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)


# ------------------------------------------------------------------------- grading


@dataclass
class Outcome:
    """What one grading produced."""

    report: Any  # autograder.report.Report, or None for a CLI run
    results: Path
    seconds: float
    rss_mb: float | None = None
    grader_output: str = ""
    exit_code: int | None = None


def run_grading(case: Case, spec: cfg.AssignmentSpec, sub: Path, results: Path,
                data_dir: Path | None, tmp_path: Path) -> Outcome:
    paths = ASSIGNMENTS[case.assignment]
    time_limit = case.time_limit or (A1_TIME_LIMIT if case.assignment != "toy" else None)
    start = time.monotonic()
    if not case.cli:
        kwargs: dict[str, Any] = {"seed": SEED, "timeout": case.timeout, "time_limit": time_limit}
        if case.memory_limit_mb is not None:
            kwargs["memory_limit_mb"] = case.memory_limit_mb
        if case.grader_max_rss_mb is not None:  # what the grader itself allocates
            tracemalloc.start()
        try:
            report = grade(sub, spec.name, suite_dir=paths["suite"],
                           course_root=paths["course_root"], results_path=results,
                           data_dir=data_dir, **kwargs)
        finally:
            peak_mb = None
            if tracemalloc.is_tracing():
                peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        return Outcome(report, results, time.monotonic() - start, peak_mb)
    cmd = [sys.executable, "-m", "autograder", "grade", str(sub), "--assignment", spec.name,
           "--results", str(results), "--seed", str(SEED), "--suite-dir", str(paths["suite"]),
           "--course-root", str(paths["course_root"]), "-q"]
    for flag, value in (("--timeout", case.timeout), ("--time-limit", time_limit),
                        ("--memory-limit", case.memory_limit_mb), ("--data-dir", data_dir)):
        if value is not None:
            cmd += [flag, str(value)]
    env = {k: v for k, v in os.environ.items() if k != cfg.COURSE_ROOT_ENV}
    log = tmp_path / "grader-output.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = start + 600
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    return Outcome(None, results, time.monotonic() - start, usage.ru_maxrss / 1024,
                   f"exit code {proc.returncode}\n{text}", proc.returncode)


def isolation_of(outcome: Outcome, data: dict[str, Any] | None) -> tuple[bool, str]:
    if outcome.report is not None:
        return bool(outcome.report.isolated), str(outcome.report.isolation_note)
    if data is not None:
        return bool(data["extra_data"]["isolated"]), data["output"]
    from autograder.sandbox import isolation_available

    return isolation_available(sys.executable)


# -------------------------------------------------------------------------- checks


def check_complete(data: dict[str, Any], text: str, spec: cfg.AssignmentSpec) -> None:
    """results.json is complete, consistent and the grader's own."""
    assert FORGED not in text, "results.json was forged by the submission"
    tests = data["tests"]
    assert [t["name"].split(":", 1)[0] for t in tests] == list(spec.tasks), "tasks missing"
    for t, task in zip(tests, spec.tasks.values(), strict=True):
        assert t["name"] == f"{task.id}: {task.title}"
        assert t["max_score"] == task.points
        assert 0 <= t["score"] <= task.points
        assert t["visibility"] == task.visibility
        assert t["status"] == ("passed" if t["score"] >= t["max_score"] else "failed")
        assert t["output"].strip(), f"the report says nothing about task {task.id}"
    assert data["score"] == pytest.approx(sum(t["score"] for t in tests), abs=1e-6)
    extra = data["extra_data"]
    assert extra["max_score"] == spec.max_score
    # the seed is the instructor's (extra_data), never in what the student reads
    assert extra["seed"] == SEED and "seed" not in data["output"]
    assert not any("seed" in t["output"] for t in tests)
    assert isinstance(extra["isolated"], bool)
    if not extra["isolated"]:
        assert "not isolated" in data["output"].lower()
    assert extra["internal_error"] is False, "internal grader error:\n" + data["output"]
    assert len(text) <= MAX_REPORT_BYTES


def task_outputs(data: dict[str, Any]) -> dict[str, str]:
    return {t["name"].split(":", 1)[0]: t["output"] for t in data["tests"]}


def check_scores(case: Case, spec: cfg.AssignmentSpec, data: dict[str, Any]) -> None:
    want = expected_scores(case, spec)
    got = {t["name"].split(":", 1)[0]: t["score"] for t in data["tests"]}
    wrong = [t for t in want if abs(got[t] - want[t]) > 1e-6]
    outputs = task_outputs(data)
    assert not wrong, f"{case.name} ({case.description}):\n" + "\n".join(
        f"--- {t}: got {got[t]:g}, expected {want[t]:g}\n{outputs[t][:1500]}" for t in wrong
    ) + f"\n--- report:\n{data['output']}"


def check_case_specifics(case: Case, data: dict[str, Any], text: str) -> None:
    outputs = task_outputs(data)
    if case.submission_problem:
        assert "could not be graded" in data["output"], data["output"]
        for word in case.problem_mentions:
            assert word in data["output"], f"{word!r} not in:\n{data['output']}"
        for tid, out in outputs.items():
            assert "not graded" in out, f"{tid}: {out}"
    else:
        assert "could not be graded" not in data["output"], data["output"]
    for tid, needle in case.messages.items():
        failing = [ln for ln in outputs[tid].splitlines() if ln.startswith("FAIL")]
        assert failing, f"{tid}: no failing test reported:\n{outputs[tid]}"
        for line in failing:
            assert needle.lower() in line.lower(), f"{tid}: {needle!r} not in {line!r}"
    for needle in case.must_not_contain:
        assert needle not in text, f"the report contains {needle!r}:\n{text[:3000]}"
    if case.report_max_bytes is not None:
        assert len(text.encode()) <= case.report_max_bytes, f"report of {len(text)} bytes"


# --------------------------------------------------------------------------- tests


def test_corpus_covers_the_issue() -> None:
    names = {c.name for c in CASES}
    missing = {item: [n for n in cases if n not in names] for item, cases in REQUIRED.items()}
    assert not {k: v for k, v in missing.items() if v}


@pytest.mark.parametrize("case", ALL)
def test_case_is_well_formed(case: Case) -> None:
    spec = spec_of(case)
    assert case.description.strip() and "\n" not in case.description
    assert case.assignment in ASSIGNMENTS
    assert set(case.expect) <= set(spec.tasks), f"unknown tasks {set(case.expect) - set(spec.tasks)}"
    for tid, points in case.expect.items():
        assert 0 <= points <= spec.tasks[tid].points, f"{tid}: {points} of {spec.tasks[tid].points}"
    expected_scores(case, spec)  # every task has an expectation
    assert set(case.messages) <= set(spec.tasks)
    assert all((KIT / f"{name}.py").is_file() for name in case.kit)
    assert case.zip in (None, *ZIP_KINDS)
    if case.submission_problem:
        assert all(v == 0 for v in expected_scores(case, spec).values())
    if case.grader_max_rss_mb is not None:  # measured with tracemalloc around grade()
        assert not case.cli, "the grader's own allocations are measured in process"
    for path in case.path.rglob("*.py"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(MARK), f"{path.relative_to(HOSTILE)} does not start with {MARK!r}"
    for a in case.append:
        assert MARK in a["code"]


@pytest.mark.parametrize("case", ALL)
def test_case_builds(case: Case, tmp_path: Path) -> None:
    """The overlay, edits and appends still apply to the reference; the code compiles."""
    built = build_submission(case, spec_of(case), tmp_path)
    if case.zip:
        assert zipfile.is_zipfile(built)
    elif case.single_file:
        assert built.is_file()
    else:
        for path in built.rglob("*.py"):
            if not path.is_symlink():
                compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("case", GRADED)
def test_hostile_submission(case: Case, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                            request: pytest.FixtureRequest) -> None:
    spec = spec_of(case)
    data_dir = request.getfixturevalue("course_data_dir") if case.assignment != "toy" else None
    sub = build_submission(case, spec, tmp_path)
    results = tmp_path / "autograder" / "results" / "results.json"  # Gradescope's layout
    results.parent.mkdir(parents=True)
    markers = [p.replace("{tmp}", tempfile.gettempdir()) for p in case.must_not_exist]
    if case.unpickle_marker:
        markers.append(case.unpickle_marker)
    for marker in markers:  # left by an earlier, failed run: ours to remove
        Path(marker).unlink(missing_ok=True)
    state_before = grader_state()
    modules_before = set(sys.modules)
    accomplice = None
    if case.accomplice_port is not None:
        try:
            accomplice = Accomplice(case.accomplice_port)
        except OSError as exc:
            pytest.skip(f"port {case.accomplice_port} is busy: {exc}")
    bait = plant_bait(case, spec) if case.bait else None
    elsewhere = set(hostile_processes())  # another run's, not this submission's
    try:
        outcome = run_grading(case, spec, sub, results, data_dir, tmp_path)
        if case.wait_after:
            time.sleep(case.wait_after)  # give a late writer its chance
        survivors = [pid for pid in hostile_processes() if pid not in elsewhere]
        leftovers = [*marked_shm(), *marked_ipc()]  # files and SysV objects it left
    finally:
        if accomplice is not None:
            accomplice.close()
        if bait is not None:
            shutil.rmtree(bait, ignore_errors=True)
        kill_processes([pid for pid in hostile_processes() if pid not in elsewhere])
        remove_marked()
    out, err = capfd.readouterr()

    text = results.read_text(encoding="utf-8") if results.is_file() else None
    data = json.loads(text) if text is not None else None
    trusted = data if text is not None and FORGED not in text else None
    isolated, note = isolation_of(outcome, trusted)
    if case.needs_isolation and not isolated:
        pytest.skip(f"not isolated: only a confined worker defeats this ({note.strip()[-300:]})")

    assert data is not None and text is not None, (
        f"no results.json was written\n{outcome.grader_output[-3000:]}")
    check_complete(data, text, spec)
    check_scores(case, spec, data)
    check_case_specifics(case, data, text)
    if case.cli:
        assert outcome.exit_code == 0, outcome.grader_output[-3000:]
    if outcome.report is not None:
        assert data["score"] == outcome.report.score
        assert [t["score"] for t in data["tests"]] == [t.score for t in outcome.report.tasks]
        assert bool(outcome.report.submission_problem) == case.submission_problem

    changed = {k for k, v in grader_state().items() if state_before.get(k) != v}
    changed |= set(state_before) - set(grader_state())
    assert not changed, f"the grader process was modified: {sorted(changed)}"
    roots = [str(tmp_path), os.path.join(tempfile.gettempdir(), "autograder-")]
    assert not foreign_modules(modules_before, roots), "the grader imported submission code"
    assert len(out) + len(err) <= MAX_GRADER_OUTPUT, f"the grader printed {len(out) + len(err)} chars"
    assert len(outcome.grader_output) <= MAX_GRADER_OUTPUT

    assert not survivors, f"processes started by the submission survived: {survivors}"
    assert not leftovers, f"the submission left these behind: {leftovers}"
    for marker in markers:
        assert not os.path.exists(marker), f"{marker} was created"
    if accomplice is not None:
        assert accomplice.connections == 0, "the submission reached the network"
    if case.max_seconds is not None:
        assert outcome.seconds <= case.max_seconds, f"grading took {outcome.seconds:.1f} s"
    if case.grader_max_rss_mb is not None:
        peak = outcome.rss_mb
        assert peak is not None
        assert peak <= case.grader_max_rss_mb, (
            f"the grader's peak memory was {peak:.0f} MB (limit {case.grader_max_rss_mb} MB)")
