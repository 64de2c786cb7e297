"""Timed calls of the student's code cannot be told apart from checked calls, get fresh
inputs, have every result checked, and work moved out of the timed call is still charged.

The student library below spies on (and in some tests patches) the worker's own
request loop, as a determined student can: the code runs in the worker process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.checks import assert_close, expect_reference
from autograder.sandbox import Sandbox

STUDENT_LIB = r'''
import gc
import os
import time

import numpy as np

LOG = []
SEEN = {}
CALLS = [0]


def _worker():
    return next(o for o in gc.get_objects()
                if type(o).__name__ == "Worker" and hasattr(o, "handle"))


def _shape(value):
    if isinstance(value, np.ndarray):
        return ["array", value.dtype.str, list(value.shape)]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_shape(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", sorted(value)]
    return type(value).__name__


def spy():
    """From now on, log what the worker receives (op, keys, shapes of what is put)."""
    worker = _worker()
    original = type(worker).handle

    def handle(self, req):
        op = req.get("op")
        detail = {"put": lambda: _shape(req.get("value")), "call": lambda: req.get("target"),
                  "get": lambda: len(req.get("release", []))}.get(op, lambda: None)()
        LOG.append([op, sorted(req), detail])
        return original(self, req)

    worker.handle = handle.__get__(worker)


def log():
    return [list(entry) for entry in LOG]


def clear():
    LOG.clear()


def burn(seconds):
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        pass


def work_in(step, seconds):
    """Patch the worker: burn CPU while arguments arrive ("put") or the result leaves ("get")."""
    worker = _worker()
    original = type(worker).handle

    def handle(self, req):
        if req.get("op") == step:
            burn(seconds)
        return original(self, req)

    worker.handle = handle.__get__(worker)


def work_in_child(seconds):
    """Patch the worker: while arguments arrive, a child process burns CPU (waited for)."""
    worker = _worker()
    original = type(worker).handle

    def handle(self, req):
        if req.get("op") == "put":
            pid = os.fork()
            if pid == 0:
                burn(seconds)
                os._exit(0)
            os.waitpid(pid, 0)
        return original(self, req)

    worker.handle = handle.__get__(worker)


def double(x):
    return 2 * x


def remembers(x):
    """Answers from memory when it has seen these bytes (or this object) before."""
    key = x.tobytes()
    if key in SEEN:
        return SEEN[key]
    SEEN[key] = 2 * x
    return SEEN[key]


def garbage_when_repeated(x):
    CALLS[0] += 1
    return 2 * x if CALLS[0] <= 2 else np.zeros_like(x)


def fake_clock(x):
    time.perf_counter = lambda: 0.0
    time.monotonic = lambda: 0.0
    time.sleep(0.25)
    return 2 * x
'''


@pytest.fixture
def sandbox(tmp_path: Path):
    root = tmp_path / "sub"
    (root / "stud").mkdir(parents=True)
    (root / "stud" / "__init__.py").write_text("")
    (root / "stud" / "code.py").write_text(STUDENT_LIB)
    os.chmod(tmp_path, 0o755)
    with Sandbox(root, "stud", timeout=20) as sb:
        yield sb


def _vector(rng: np.random.Generator) -> tuple:
    return (rng.standard_normal(2000),)


CHECK_DOUBLE = expect_reference(lambda x: 2 * x, names="out")


def test_the_worker_sees_the_same_requests_for_timed_and_checked_calls(sandbox: Sandbox) -> None:
    code = sandbox.lib.code
    code.spy()
    code.clear()
    out = code.double(np.ones(2000))  # an ordinary, checked call
    assert_close(out, 2 * np.ones(2000), name="out")
    checked = code.log()
    code.clear()
    sandbox.timeit(code.double, _vector, CHECK_DOUBLE, rng=np.random.default_rng(1), repeat=2,
                   warmup=1)
    timed = code.log()
    # after the clear() call's last request: the call of double, then the log() call's first two
    one_call = checked[1:4]
    assert [e[0] for e in one_call] == ["put", "call", "get"] and len(checked) == 6, checked
    assert one_call[0][2] == ["list", [["list", [["array", "<f8", [2000]]]], ["dict", []]]]
    assert timed[1:4] == timed[4:7] == timed[7:10] == one_call, (checked, timed)
    assert len(timed) == 12, timed


def test_timeit_gives_fresh_inputs_and_refuses_repeated_ones(sandbox: Sandbox) -> None:
    code = sandbox.lib.code
    seen: list[bytes] = []

    def recording(x):
        seen.append(x.tobytes())
        assert_close(x, x, name="x")

    def check(result, x):
        recording(x)
        CHECK_DOUBLE(result, x)

    timing = sandbox.timeit(code.remembers, _vector, check, rng=np.random.default_rng(2),
                            repeat=4, warmup=1)
    assert len(seen) == 5 and len(set(seen)) == 5
    assert timing.checked == 5 and len(timing.times) == 4
    same = np.ones(2000)
    with pytest.raises(ValueError, match="fresh inputs"):
        sandbox.timeit(code.double, lambda rng: (same,), CHECK_DOUBLE,
                       rng=np.random.default_rng(3), repeat=2, warmup=0)


def test_every_timed_result_is_checked(sandbox: Sandbox) -> None:
    with pytest.raises(AssertionError,
                       match=r"^code.garbage_when_repeated: call 3 of 4 of the speed test returned"):
        sandbox.timeit(sandbox.lib.code.garbage_when_repeated, _vector, CHECK_DOUBLE,
                       rng=np.random.default_rng(4), repeat=3, warmup=1)


def test_timeit_uses_the_graders_clock(sandbox: Sandbox) -> None:
    timing = sandbox.timeit(sandbox.lib.code.fake_clock, _vector, CHECK_DOUBLE,
                            rng=np.random.default_rng(5), repeat=2, warmup=1)
    assert timing.best >= 0.24 and len(timing.times) == 2
    fast = sandbox.timeit(sandbox.lib.code.double, _vector, CHECK_DOUBLE,
                          rng=np.random.default_rng(6), repeat=3, warmup=1)
    assert fast.best < 0.2
    # the transfers were charged in the worker's CPU time (Linux /proc and CPU clocks)
    assert fast.cpu_steps == 2 * 4 and fast.wall_steps == 0, fast


def test_transfers_of_a_forked_worker_are_charged_in_its_cpu_time(tmp_path: Path) -> None:
    # A confined fork server is process 1 of a PID namespace: the worker's pid it
    # reports is the namespace's number, so the stopwatch must find the host's.
    from autograder.sandbox import Zygote

    root = tmp_path / "sub"
    (root / "stud").mkdir(parents=True)
    (root / "stud" / "__init__.py").write_text("")
    (root / "stud" / "code.py").write_text(STUDENT_LIB)
    os.chmod(tmp_path, 0o755)
    with Zygote(root, "stud") as z, Sandbox(root, "stud", zygote=z, timeout=20) as sb:
        fast = sb.timeit(sb.lib.code.double, _vector, CHECK_DOUBLE, rng=np.random.default_rng(7),
                         repeat=3, warmup=1)
    assert fast.cpu_steps == 2 * 4 and fast.wall_steps == 0, fast


@pytest.mark.parametrize("step", ["put", "get"])
def test_work_moved_into_the_transfers_is_charged(sandbox: Sandbox, step: str) -> None:
    code = sandbox.lib.code
    before = sandbox.timeit(code.double, _vector, CHECK_DOUBLE, rng=np.random.default_rng(7),
                            repeat=2, warmup=1)
    code.work_in(step, 0.15)
    after = sandbox.timeit(code.double, _vector, CHECK_DOUBLE, rng=np.random.default_rng(8),
                           repeat=2, warmup=1)
    assert before.best < 0.1, before.times
    assert after.best >= 0.14, f"{step}: {after.times}"


def test_work_in_a_child_process_during_a_transfer_is_charged(sandbox: Sandbox) -> None:
    code = sandbox.lib.code
    code.work_in_child(0.15)
    t0 = time.perf_counter()
    after = sandbox.timeit(code.double, _vector, CHECK_DOUBLE, rng=np.random.default_rng(9),
                           repeat=2, warmup=1)
    assert after.best >= 0.1, after
    assert time.perf_counter() - t0 < 10
