"""Confinement of the sandbox worker (autograder/sandbox/jail.py).

The tests that need root and namespaces are skipped elsewhere, with the
reason the grader itself gives (this project's CI runs them).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from leftover_checks import shm_files, sysv_objects

from autograder import runner
from autograder.sandbox import Sandbox, Zygote, isolation_available, uids
from autograder.sandbox.paths import default_hidden_paths

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"

PROBE_LIB = '''
import os, signal, socket, time

def read(path):
    try:
        if os.path.isdir(path):
            return "dir:" + ",".join(sorted(os.listdir(path)))
        with open(path, "rb") as fh:
            return "read:" + fh.read(200).decode("utf-8", "replace")
    except OSError as exc:
        return "error:" + type(exc).__name__

def write(path):
    try:
        with open(path, "w") as fh:
            fh.write("forged")
        return "written"
    except OSError as exc:
        return "error:" + type(exc).__name__

def ids():
    return os.getuid(), os.geteuid(), list(os.getgroups())

def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return "error:" + type(exc).__name__

def fork_bomb(limit=400):
    pids = []
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            pids.append(pid)
    except OSError:
        pass
    return len(pids)

def daemon(stay_in_session=False):
    r, w = os.pipe()
    if os.fork() == 0:
        if not stay_in_session:
            os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            time.sleep(120)
            os._exit(0)
        os._exit(0)
    os.close(w)
    return int(os.read(r, 32))

def fill_shm(mib):
    written = 0
    try:
        with open("/dev/shm/probe-fill", "wb") as fh:
            for _ in range(mib):
                fh.write(b"x" * (1 << 20))
                written += 1
    except OSError:
        pass
    return written

def shm_names():
    return sorted(os.listdir("/dev/shm"))

def sysv_segment(key):
    import ctypes, ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    ident = libc.shmget(key, 1 << 20, 0o1000 | 0o600)
    with open("/proc/sysvipc/shm") as fh:
        return ident, [int(line.split()[0]) for line in fh.readlines()[1:]]

def pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

def hop(seconds=30, beat="../heartbeat"):
    if os.fork():
        return 0
    os.setsid()
    beat = os.path.abspath(beat)
    end = time.time() + seconds
    while time.time() < end:
        try:
            if os.fork():
                os._exit(0)
        except OSError:
            pass
        with open(beat + ".new", "w") as fh:  # the pid changes, this file says it still runs
            fh.write(str(time.time()))
        os.replace(beat + ".new", beat)
        time.sleep(0.002)
    os._exit(0)
'''


@pytest.fixture
def lib_root(tmp_path: Path) -> Path:
    root = tmp_path / "sub"
    (root / "probe").mkdir(parents=True)
    (root / "probe" / "__init__.py").write_text("")
    (root / "probe" / "code.py").write_text(PROBE_LIB)
    for p in (tmp_path, root, root / "probe"):
        os.chmod(p, 0o755)
    return root


def _needs_isolation() -> None:
    ok, note = isolation_available(sys.executable)
    if not ok:
        pytest.skip(f"workers cannot be confined here: {note}")


def _gone(pid: int, wait: float = 5.0) -> bool:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _live_processes_of(uid: int) -> list[int]:
    """Pids of the processes (zombies left out) whose real uid is ``uid``."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid and state != "Z":
                left.append(int(entry))
    return left


def _pids_seen(uid: int, seconds: float) -> set[int]:
    """Every live process of ``uid`` seen in repeated looks during ``seconds``."""
    seen: set[int] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.update(_live_processes_of(uid))
        time.sleep(0.01)
    return seen


def test_confined_worker_sees_no_course_no_grader_no_home(lib_root: Path,
                                                          tmp_path: Path) -> None:
    _needs_isolation()
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    secret = course / "source" / "solution.py"
    secret.write_text("ANSWER = 42\n")
    for p in (course, course / "source"):
        os.chmod(p, 0o755)
    os.chmod(secret, 0o644)
    suites = Path(default_hidden_paths()[0]) / "suites" / "assignment1" / "tasks.toml"
    assert secret.read_text() and suites.read_text()  # readable by the grader
    with Sandbox(lib_root, "probe", hide=[course]) as sb:
        assert sb.isolated, sb.isolation_note
        code = sb.lib.code
        assert code.read(str(secret)).startswith("error:")
        assert not code.read(str(course)).startswith("dir:source")
        assert code.read(str(suites)).startswith("error:")
        assert code.read("/root") in ("dir:", "dir:.pyenv") or code.read("/root").startswith(
            "error:")
        assert code.read(str(lib_root / "probe" / "__init__.py")) == "read:"


def test_confined_worker_runs_as_its_own_uid(lib_root: Path) -> None:
    _needs_isolation()
    with Sandbox(lib_root, "probe") as a, Sandbox(lib_root, "probe") as b:
        (ua, eua, ga), (ub, eub, gb) = a.lib.code.ids(), b.lib.code.ids()
    assert ua == eua != 0 and ub == eub != 0 and ua != ub
    assert ga == [] and gb == []


def test_confined_worker_has_no_network_and_no_shared_tmp(lib_root: Path,
                                                          tmp_path: Path) -> None:
    _needs_isolation()
    results = tmp_path / "results"
    results.mkdir()
    os.chmod(results, 0o755)
    with Sandbox(lib_root, "probe") as sb:
        code = sb.lib.code
        assert code.connect("127.0.0.1", 22).startswith("error:")
        assert code.connect("pypi.org", 443).startswith("error:")
        assert code.write("/tmp/forged-results.json").startswith("error:")
        assert code.write(str(results / "results.json")).startswith("error:")
        assert code.write("own-scratch.txt") == "written"  # its own directory works
    assert not Path("/tmp/forged-results.json").exists()
    assert not (results / "results.json").exists()


def test_fork_bomb_is_bounded_and_cleaned_up(lib_root: Path) -> None:
    _needs_isolation()
    sb = Sandbox(lib_root, "probe", nproc_limit=32)
    try:
        n = sb.lib.code.fork_bomb(400)
        uid = sb.lib.code.ids()[0]
    finally:
        sb.close()
    assert n < 32, f"the worker forked {n} processes with a limit of 32"
    left = _live_processes_of(uid)
    assert not left, f"processes of the worker's uid survived: {left}"


@pytest.mark.parametrize("isolate", [True, False], ids=["confined", "unconfined"])
def test_daemons_do_not_survive_the_worker(lib_root: Path, isolate: bool) -> None:
    if isolate:
        _needs_isolation()
    runner._become_subreaper()
    sb = Sandbox(lib_root, "probe", isolate=isolate)
    try:
        escaped = sb.lib.code.daemon(False)
        stayed = sb.lib.code.daemon(True)
        uid = sb.lib.code.ids()[0]
        if not isolate:  # a confined worker's pids are those of its own PID namespace
            assert not _gone(escaped, 0.2) and not _gone(stayed, 0.2)
        else:
            assert len(_live_processes_of(uid)) >= 3  # the worker and its two daemons
    finally:
        sb.close()
    if isolate:
        assert not _live_processes_of(uid), "a daemon of the worker's uid survived"
        return
    assert _gone(escaped), "a daemon that left the worker's session survived"
    assert _gone(stayed), "a daemon in the worker's session survived"


def test_confined_worker_has_its_own_shm_ipc_and_processes(lib_root: Path) -> None:
    """/dev/shm is a capped tmpfs of its own, SysV segments live in an IPC namespace of
    its own, /proc shows only its PID namespace; all of it is gone with the worker."""
    _needs_isolation()
    key = 0x48431234
    with Sandbox(lib_root, "probe") as sb:
        assert "nothing outlives the submission" in sb.isolation_note, sb.isolation_note
        code = sb.lib.code
        assert code.fill_shm(200) < 100  # the cap, not the host's memory
        assert code.shm_names() == ["probe-fill"]
        ident, inside = code.sysv_segment(key)
        assert ident >= 0 and key in inside
        assert key not in [o.key for o in sysv_objects()]  # not in the grader's namespace
        assert max(code.pids()) < 50  # its own namespace's numbers: a handful of processes
        uid = code.ids()[0]
    assert "probe-fill" not in shm_files()
    assert not _live_processes_of(uid)


def test_a_pid_hopping_leftover_dies_with_its_test_not_with_the_fork_server(
        state_root: Path) -> None:
    """A process that forks and lets its parent exit every few ms (a new pid each time)
    is gone when its test's worker is closed; the fork server stays, alone."""
    _needs_isolation()
    (state_root / "st" / "hopper.py").write_text(PROBE_LIB)
    with Zygote(state_root, "st") as z:
        assert z.pid_namespace
        beat = z._scratch / "work" / "heartbeat"  # the fork server's folder, the hopper's too
        with Sandbox(state_root, "st", zygote=z) as sb:
            sb.lib.hopper.hop(30)
            time.sleep(0.3)
            assert time.time() - float(beat.read_text()) < 0.2, "the hopper never ran"
        time.sleep(0.3)
        assert time.time() - float(beat.read_text()) > 0.25, "the hopper outlived its test"
        assert len(_pids_seen(z.uid, 0.2)) == 1  # the fork server alone
        with Sandbox(state_root, "st", zygote=z) as sb:  # the fork server still serves
            assert sb.lib.code.bump() == 1
        uid = z.uid
    assert not _live_processes_of(uid)


def test_sandbox_uids_are_leased_and_never_shared_with_a_live_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lease table hands out each uid once while held, skips a uid some process
    has (here a real process switched to it), and comes back to a uid only when it is
    free again."""
    if os.geteuid() != 0:
        pytest.skip("switching a process to another uid needs root")
    monkeypatch.setattr(uids, "STATE_DIR", tmp_path / "leases")
    monkeypatch.setattr(uids, "LEASE_COUNT", 3)
    first = uids.LEASE_BASE
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a process that has the next uid, as a leftover of an earlier use would
        os.close(r)
        os.setresuid(first + 1, first + 1, first + 1)
        os.write(w, b"x")
        time.sleep(60)
        os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x"
        a = uids.lease()
        b = uids.lease()
        assert (a, b) == (first, first + 2), "a uid a process has was handed out"
        with pytest.raises(uids.UidLeaseError):
            uids.lease()  # every uid is held or in use
        uids.release(a)
        assert uids.lease() == a and uids.is_leased(a)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(r)
    uids.release(a)
    assert uids.lease() in (first, first + 1)  # free again once its process is gone


def test_unconfined_worker_says_so(lib_root: Path) -> None:
    with Sandbox(lib_root, "probe", isolate=False) as sb:
        assert not sb.isolated
        assert sb.isolation_note


def test_require_isolation_grades_nothing_when_unavailable(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(runner, "isolation_available",
                        lambda python, user=None: (False, "no namespaces in this test"))
    results = tmp_path / "out" / "results.json"
    report = runner.grade(TOY / "source" / "toy", "toy", suite_dir=TOY / "suite",
                          course_root=TOY, results_path=results, require_isolation=True)
    data = json.loads(results.read_text())
    assert report.score == 0 and data["score"] == 0
    assert data["extra_data"]["internal_error"] is True
    assert "isolation was required" in data["output"]
    assert len(data["tests"]) == 3


# --------------------------------------------------------------------------- fork server

STATE_LIB = '''
import os, signal, time
import numpy as np
COUNT = [0]

def bump():
    COUNT[0] += 1
    return COUNT[0]

def draw():
    return float(np.random.rand())

def kill_parent():
    os.kill(os.getppid(), signal.SIGKILL)
    return os.getppid()

def leave_daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(120)
        os._exit(0)
    return 0

def my_pid():
    return os.getpid()

def grader_modules():
    import sys
    return sorted(m for m in sys.modules if m.split(".")[0] in ("autograder", "coursegen"))

def read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError as exc:
        return "error:" + type(exc).__name__
'''


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    root = tmp_path / "sub"
    (root / "st").mkdir(parents=True)
    (root / "st" / "__init__.py").write_text("")
    (root / "st" / "code.py").write_text(STATE_LIB)
    for p in (tmp_path, root, root / "st"):
        os.chmod(p, 0o755)
    return root


@pytest.mark.parametrize("isolate", [None, False], ids=["default", "unconfined"])
def test_forked_workers_share_no_state_and_get_their_own_seed(state_root: Path,
                                                             isolate: bool | None) -> None:
    with Zygote(state_root, "st", isolate=isolate) as z:
        draws = []
        for seed in (1, 2, 1):
            with Sandbox(state_root, "st", seed=seed, zygote=z) as sb:
                assert sb.lib.code.bump() == 1  # a fresh import in every worker
                draws.append(sb.lib.code.draw())
                assert sb.startup_s < 0.5
        assert draws[0] == draws[2] != draws[1]
        assert z.alive


def test_a_worker_that_kills_its_fork_server_costs_only_its_test(state_root: Path,
                                                                 tmp_path: Path) -> None:
    from autograder.runner import grade

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "tasks.toml").write_text(
        '[assignment]\nname = "st"\nlibrary = "st"\nrequired = ["st/code.py"]\n'
        'timeout = 10\ntime_limit = 60\n'
        '[tasks.bump]\ntitle = "bump"\npoints = 1\n'
        '[tasks.killer]\ntitle = "killer"\npoints = 1\n')
    (suite / "test_st.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.killer\ndef test_killer(student):\n"
        "    student.lib.code.kill_parent()\n    student.lib.code.leave_daemon()\n"
        "    assert False, 'never passes'\n\n"
        "@pytest.mark.bump\n@pytest.mark.parametrize('i', range(3))\n"
        "def test_bump(student, i):\n    assert student.lib.code.bump() == 1\n")
    course = tmp_path / "course"
    (course / "source" / "st").mkdir(parents=True)
    shutil.copytree(state_root / "st", course / "source" / "st" / "st")
    report = grade(state_root, "st", suite_dir=suite, course_root=course)
    scores = {t.id: t.score for t in report.tasks}
    assert scores == {"bump": 1, "killer": 0}, [t.tests for t in report.tasks]
    assert not report.internal_errors


@pytest.mark.parametrize("forked", [False, True], ids=["fresh", "forked"])
def test_workers_never_import_the_grader(state_root: Path, forked: bool) -> None:
    if forked:
        with Zygote(state_root, "st") as z, Sandbox(state_root, "st", zygote=z) as sb:
            assert sb.lib.code.grader_modules() == []
    else:
        with Sandbox(state_root, "st") as sb:
            assert sb.lib.code.grader_modules() == []


def test_a_hidden_folder_inside_a_kept_one_stays_hidden(state_root: Path, tmp_path: Path) -> None:
    _needs_isolation()
    venv = tmp_path / "venv"
    suites = venv / "site-packages" / "grader" / "suites"
    suites.mkdir(parents=True)
    (suites / "test_hidden.py").write_text("EXPECTED = 42\n")
    (venv / "site-packages" / "ok.txt").write_text("fine\n")
    for p in (tmp_path, venv, venv / "site-packages", venv / "site-packages" / "grader", suites):
        os.chmod(p, 0o755)
    with Sandbox(state_root, "st", keep=[venv], hide=[tmp_path, suites]) as sb:
        assert sb.lib.code.read(str(venv / "site-packages" / "ok.txt")) == "fine\n"
        assert sb.lib.code.read(str(suites / "test_hidden.py")).startswith("error:")
