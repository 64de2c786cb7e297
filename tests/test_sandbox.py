"""Tests of the pickle-free protocol and the sandboxed worker."""

from __future__ import annotations

import ast
import json
import math
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.sandbox import (
    Ref,
    RemoteObject,
    Sandbox,
    StudentError,
    WorkerDied,
    protocol,
)
from autograder.sandbox.protocol import Handle, NotPlain, ProtocolError, decode, encode

AUTOGRADER = Path(__file__).resolve().parents[1] / "autograder"

# --------------------------------------------------------------------------- protocol

DTYPES = st.sampled_from(["?", "i1", "<i4", ">i8", "u1", "<u2", "<f4", ">f8", "<c8", "<c16"])
arrays = DTYPES.flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.binary(max_size=20),
    st.builds(np.float64, st.floats()), st.builds(np.int32, st.integers(-(2**31), 2**31 - 1)),
    st.builds(np.bool_, st.booleans()),
)
plain = st.recursive(
    st.one_of(scalars, arrays),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)


def same(a: object, b: object) -> bool:
    """Deep equality that also checks types, dtypes and NaN positions."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and (a == b or (a != a and b != b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=150, deadline=None)
@given(plain)
def test_protocol_round_trip(value: object) -> None:
    assert same(decode(encode(value)), value)


def test_round_trip_refs_handles_and_non_contiguous() -> None:
    arr = np.arange(12.0).reshape(3, 4)[:, ::2]
    out = decode(encode({"a": arr, "r": Ref(3), "h": Handle(4, "Model")}))
    assert np.array_equal(out["a"], arr) and out["a"].flags.writeable
    assert out["r"] == Ref(3) and out["h"] == Handle(4, "Model")


def _frame(header: object, buffers: list[bytes]) -> bytes:
    h = json.dumps(header).encode()
    parts = [protocol.MAGIC, struct.pack(">Q", len(h)), h, struct.pack(">I", len(buffers))]
    for b in buffers:
        parts += [struct.pack(">Q", len(b)), b]
    return b"".join(parts)


@pytest.mark.parametrize(
    ("header", "buffers", "needle"),
    [
        ({"$a": [0, "|O8", [1]]}, [b"\0" * 8], "dtype"),
        ({"$a": [0, "V8", [1]]}, [b"\0" * 8], "dtype"),
        ({"$a": [0, "[('a', 'O')]", [1]]}, [b"\0" * 8], "dtype"),
        ({"$a": [0, "<f8", [3]]}, [b"\0" * 16], "needs 24"),
        ({"$a": [0, "<f8", [-1]]}, [b""], "shape"),
        ({"$a": [5, "<f8", [1]]}, [b"\0" * 8], "buffer index"),
        ({"$s": [0, "<i4"]}, [b"\0" * 8], "size"),
        ({"$x": 1}, [], "unknown tag"),
        ({"a": 1, "b": 2}, [], "malformed"),
        ({"$f": "1e999"}, [], "bad float"),
    ],
)
def test_decoder_rejects_bad_values(header: object, buffers: list[bytes], needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        decode(_frame(header, buffers))


def test_decoder_rejects_framing_problems() -> None:
    good = encode([1, 2])
    with pytest.raises(ProtocolError, match="magic"):
        decode(b"XXXX" + good[4:])
    with pytest.raises(ProtocolError, match="truncated"):
        decode(good[:-1])
    with pytest.raises(ProtocolError, match="trailing"):
        decode(good + b"\0")
    with pytest.raises(ProtocolError, match="limit"):
        decode(encode(np.zeros(1000)), max_total=1000)
    huge = protocol.MAGIC + struct.pack(">Q", 2**62)
    with pytest.raises(ProtocolError, match="too large"):
        decode(huge)
    nan_json = protocol.MAGIC + struct.pack(">Q", 3) + b"NaN" + struct.pack(">I", 0)
    with pytest.raises(ProtocolError, match="NaN"):
        decode(nan_json)
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ProtocolError, match="deep"):
        decode(_frame(deep, []))


def test_encoder_refuses_non_plain_values() -> None:
    for bad in (object(), np.array([object()]), {1: 2}, np.array(["s"]), print):
        with pytest.raises(NotPlain):
            encode(bad)
    with pytest.raises(NotPlain, match="deeper"):
        deep: list = []
        deep.append(deep)
        encode(deep)


def test_encoder_hook_turns_objects_into_handles() -> None:
    obj = object()
    out = decode(encode([1, obj], hook=lambda o: Handle(7, type(o).__name__)))
    assert out == [1, Handle(7, "object")]


def test_no_pickle_anywhere_in_autograder() -> None:
    forbidden = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
                 "copyreg", "joblib"}
    offenders = []
    for path in AUTOGRADER.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in forbidden:
                    offenders.append(f"{path}:{node.lineno} imports {name}")
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle" and not (
                    isinstance(node.value, ast.Constant) and node.value.value is False):
                offenders.append(f"{path}:{node.lineno} uses allow_pickle")
    assert offenders == []
    # the protocol (copied next to the worker) imports only stdlib basics + numpy
    tree = ast.parse((AUTOGRADER / "sandbox" / "protocol.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("eval", "exec", "compile", "__import__", "getattr")
    allowed = {"__future__", "json", "math", "os", "re", "select", "struct", "time",
               "dataclasses", "typing", "collections.abc", "numpy"}
    assert imported <= allowed


# --------------------------------------------------------------------------- worker

STUDENT_LIB = '''
import os, sys, time
import numpy as np

def add(a, b):
    return a + b

def fail(x):
    helper = {}
    return helper[x]

def leave(code):
    sys.exit(code)

def hard_exit():
    os._exit(3)

def spin():
    while True:
        pass

def flood(n):
    chunk = "x" * 1_000_000
    for _ in range(n):
        print(chunk)
    return "done"

def hog():
    return np.ones(2**31)

def env():
    return dict(os.environ)

def whoami():
    return os.getuid(), os.getcwd()

def fake_clock():
    time.perf_counter = lambda: 0.0
    time.monotonic = lambda: 0.0
    time.sleep(0.25)
    return 1

def spawn():
    import subprocess
    return subprocess.Popen(["sleep", "60"]).pid

class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ.get("HOME", "/tmp") + "/pwned",))

def evil():
    return Evil()

def mixed():
    return (np.arange(3), Evil(), {"k": [Evil()]})

class Model:
    def __init__(self, n):
        self.n = n
        self.params = {"W": np.ones((2, n))}
    def forward(self, x):
        return self.params["W"] @ x

def identity(x):
    return x

def inplace(x):
    x += 1
    return x
'''


@pytest.fixture
def lib_root(tmp_path: Path) -> Path:
    root = tmp_path / "sub"
    (root / "stud").mkdir(parents=True)
    (root / "stud" / "__init__.py").write_text("")
    (root / "stud" / "code.py").write_text(STUDENT_LIB)
    os.chmod(tmp_path, 0o755)
    return root


@pytest.fixture
def sandbox(lib_root: Path):
    with Sandbox(lib_root, "stud", timeout=20) as sb:
        yield sb


def test_plain_calls_refs_and_objects(sandbox: Sandbox) -> None:
    out = sandbox.lib.code.add(np.arange(3), 1)
    assert np.array_equal(out, [1, 2, 3])
    ref = sandbox.put(np.ones(4))
    assert isinstance(ref, Ref)
    assert np.array_equal(sandbox.lib.code.add(ref, ref), 2 * np.ones(4))
    model = sandbox.lib.code.Model(3)
    assert isinstance(model, RemoteObject) and model.type_name == "Model"
    assert np.array_equal(model.forward(np.ones(3)), [3.0, 3.0])
    model.params.set({"W": np.zeros((2, 3))})
    assert np.array_equal(model.params.get()["W"], np.zeros((2, 3)))
    assert model.n.get() == 3
    # a remote object passed back as an argument is resolved in the worker
    same_obj = sandbox.lib.code.identity(model)
    assert isinstance(same_obj, RemoteObject) and same_obj.n.get() == 3
    # arrays arrive writable in the worker
    assert np.array_equal(sandbox.lib.code.inplace(np.zeros(2)), [1.0, 1.0])
    assert sandbox.ping() == "pong"


def test_student_exception_has_student_frame(sandbox: Sandbox) -> None:
    with pytest.raises(StudentError) as info:
        sandbox.lib.code.fail("missing")
    err = info.value
    assert err.type_name == "KeyError"
    assert err.frames and err.frames[-1].startswith("stud/code.py:")
    assert "worker" not in " ".join(err.frames)
    assert str(err).startswith("your code raised KeyError: 'missing' at stud/code.py:")
    with pytest.raises(StudentError, match="AttributeError"):
        sandbox.lib.code.nope()
    with pytest.raises(StudentError, match="ModuleNotFoundError|AttributeError"):
        sandbox.lib.missing_module.f()
    assert sandbox.ping() == "pong"


def test_sys_exit_is_an_error_not_a_death(sandbox: Sandbox) -> None:
    with pytest.raises(StudentError, match="SystemExit"):
        sandbox.lib.code.leave(4)
    assert sandbox.ping() == "pong"


def test_os_exit_kills_the_worker(sandbox: Sandbox) -> None:
    with pytest.raises(WorkerDied, match="exited with code 3"):
        sandbox.lib.code.hard_exit()
    with pytest.raises(WorkerDied):  # stays dead
        sandbox.ping()


def test_infinite_loop_times_out(lib_root: Path) -> None:
    with Sandbox(lib_root, "stud", timeout=1) as sb:
        sb.ping()
        t0 = time.monotonic()
        with pytest.raises(WorkerDied, match="timed out after 1 s"):
            sb.lib.code.spin()
        assert time.monotonic() - t0 < 5
        assert not sb.alive


def test_print_flood_is_capped_and_not_shown(sandbox: Sandbox, capfd: pytest.CaptureFixture) -> None:
    assert sandbox.lib.code.flood(40) == "done"
    out, err = capfd.readouterr()
    assert "xxxx" not in out and "xxxx" not in err
    assert sandbox.log_path is not None
    assert sandbox.log_path.stat().st_size <= 8 * 1024 * 1024 + 1
    assert sandbox.output_tail(10) == "x" * 10


def test_memory_bomb_hits_the_limit(lib_root: Path) -> None:
    with Sandbox(lib_root, "stud", timeout=20, memory_limit_mb=512) as sb:
        with pytest.raises(StudentError, match="MemoryError.*memory limit is 512 MB"):
            sb.lib.code.hog()
        assert sb.ping() == "pong"


def test_malicious_reduce_stays_in_the_worker(sandbox: Sandbox, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    obj = sandbox.lib.code.evil()
    assert isinstance(obj, RemoteObject) and obj.type_name == "Evil"
    arr, evil, nested = sandbox.lib.code.mixed()
    assert np.array_equal(arr, [0, 1, 2])
    assert isinstance(evil, RemoteObject) and isinstance(nested["k"][0], RemoteObject)
    assert not (tmp_path / "pwned").exists()
    assert not list(Path(sandbox._scratch or tmp_path).rglob("pwned"))


def test_environment_is_scrubbed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # the worker was started before this variable existed; a new one must not see it either
    monkeypatch.setenv("AG_SECRET_TOKEN", "hunter2")
    with Sandbox(sandbox.submission_root, "stud") as sb:
        env = sb.lib.code.env()
        uid, cwd = sb.lib.code.whoami()
    assert "AG_SECRET_TOKEN" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert not cwd.startswith(str(sandbox.submission_root))
    if sb.isolated:
        assert uid != 0
    else:
        assert sb.isolation_note


def _host_pid(sb: Sandbox, pid: int) -> int:
    """The grader's number for ``pid`` as the worker sees it (a confined worker has a
    PID namespace of its own: found by its uid and the last field of ``NSpid``)."""
    if not sb.isolated:
        return pid
    uid = sb.info()["uid"]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            lines = Path(f"/proc/{entry}/status").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1:] for line in lines if ":" in line}
        if int(fields["Uid"][0]) == uid and int(fields["NSpid"][-1]) == pid:
            return int(entry)
    raise AssertionError(f"no process of uid {uid} is {pid} in its namespace")


def test_close_kills_child_processes(lib_root: Path) -> None:
    sb = Sandbox(lib_root, "stud")
    pid = _host_pid(sb, sb.lib.code.spawn())
    assert os.path.exists(f"/proc/{pid}")
    sb.close()
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the student's child process survived close()")
