"""Student faults are student failures; grader bugs stay internal errors.

Whatever a student's value or a student's frame can cause (a wrong type, a
wrong shape, NaN, an object of a class named ``Tensor``, a ragged list that
numpy cannot read, a malformed reply written straight on the grader's pipe) is
a failed test of that student with a clear message, never an "internal grader
error"; and a real bug of a suite is still reported as one.

Three layers: the decoder (every malformed frame raises ``ProtocolError`` and
nothing else, before allocating anything a frame merely claims), the typed
accessors of :mod:`autograder.values` (they refuse with
``StudentValueError`` and never crash), and end-to-end gradings of Assignment 1
submissions that are the reference with one function replaced (each must get
exactly the points of its honest part and a complete report).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder.checks import assert_close
from autograder.plugin import describe_exception
from autograder.runner import grade
from autograder.sandbox import MalformedReply, RemoteObject, StudentError
from autograder.sandbox.protocol import (
    MAGIC,
    MAX_TOTAL_BYTES,
    Handle,
    ProtocolError,
    decode,
    decode_parts,
    encode,
)
from autograder.values import (
    StudentValueError,
    as_array,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_object,
    as_tuple,
    describe,
)

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"
FUZZ_SEED = 20261207
SEED = 77


# --------------------------------------------------------------------------- frames


def frame(header: Any, buffers: list[bytes] = (), *, raw_header: bytes | None = None) -> bytes:
    """One message with a header of our choosing (``raw_header``: bytes as they are)."""
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    parts = [MAGIC, struct.pack(">Q", len(head)), head, struct.pack(">I", len(buffers))]
    for buf in buffers:
        parts += [struct.pack(">Q", len(buf)), buf]
    return b"".join(parts)


def reply(value_tree: Any, buffers: list[bytes] = ()) -> bytes:
    return frame({"$d": {"status": "ok", "value": value_tree}}, buffers)


MALFORMED = {
    "huge_shape_no_data": reply({"$a": [0, "<f8", [100_000, 100_000, 100_000]]}, [b""]),
    "empty_array_absurd_dims": reply({"$a": [0, "<f8", [0, 2**62, 2**62]]}, [b""]),
    "empty_array_dim_beyond_int64": reply({"$a": [0, "<f8", [0, 2**64]]}, [b""]),
    "shape_data_disagree": reply({"$a": [0, "<f8", [3]]}, [b"\0" * 16]),
    "negative_dim": reply({"$a": [0, "<f8", [-1]]}, [b""]),
    "bool_dim": reply({"$a": [0, "<f8", [True]]}, [b"\0" * 8]),
    "too_many_dims": reply({"$a": [0, "<f8", [1] * 40]}, [b"\0" * 8]),
    "object_dtype": reply({"$a": [0, "|O8", [1]]}, [b"\0" * 8]),
    "string_dtype": reply({"$a": [0, "<U2", [1]]}, [b"\0" * 8]),
    "void_dtype": reply({"$a": [0, "|V8", [1]]}, [b"\0" * 8]),
    "odd_float_size": reply({"$a": [0, "<f3", [1]]}, [b"\0" * 3]),
    "dtype_not_a_string": reply({"$a": [0, 8, [1]]}, [b"\0" * 8]),
    "buffer_index_out_of_range": reply({"$a": [5, "<f8", [1]]}, [b"\0" * 8]),
    "buffer_index_not_int": reply({"$b": "0"}, [b"x"]),
    "scalar_wrong_size": reply({"$s": [0, "<f8"]}, [b"\0" * 3]),
    "array_body_not_a_list": reply({"$a": {"x": 1}}),
    "unknown_tag": reply({"$x": 1}),
    "two_keys": reply({"a": 1, "b": 2}),
    "bad_float_tag": reply({"$f": "big"}),
    "bad_handle": reply({"$h": ["1", "Tensor"]}),
    "bad_tuple": reply({"$t": {"a": 1}}),
    "too_deep": reply(json.loads("[" * 100 + "]" * 100)),
    "json_deeper_than_the_interpreter": frame(None, raw_header=b"[" * 200_000 + b"]" * 200_000),
    "nan_constant": frame(None, raw_header=b'{"$d": {"status": "ok", "value": NaN}}'),
    "not_json": frame(None, raw_header=b"{status: ok"),
    "not_utf8": frame(None, raw_header=b"\xff\xfe\xfd"),
    "int_too_long": frame(None, raw_header=b"1" * 5000),
    "bad_magic": b"XXXX" + reply(1)[4:],
    "truncated": reply({"$a": [0, "<f8", [4]]}, [b"\0" * 32])[:-5],
    "header_claims_too_much": MAGIC + struct.pack(">Q", 2**60),
    "buffer_claims_too_much": frame(1)[:-4] + struct.pack(">I", 1) + struct.pack(">Q", 2**62),
    "too_many_buffers": frame(1)[:-4] + struct.pack(">I", 2**31),
    "trailing_bytes": reply(1) + b"more",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_every_malformed_frame_is_a_protocol_error(name: str) -> None:
    with pytest.raises(ProtocolError):
        decode(MALFORMED[name])


def test_decoder_raises_only_protocol_errors_on_mutated_frames() -> None:
    """Random byte flips, cuts and header edits of valid replies: a value or ProtocolError."""
    rnd = random.Random(FUZZ_SEED)
    values = [
        {"status": "ok", "value": (np.arange(6.0).reshape(2, 3), {"cache": [1, 2.5, None]})},
        {"status": "ok", "value": [np.float32(1.5), np.zeros((0, 4)), b"bytes", (True, "s")]},
        {"status": "ok", "value": Handle(3, "Tensor")},
    ]
    frames = [encode(v) for v in values]
    others = 0
    for i in range(3000):
        data = bytearray(rnd.choice(frames))
        op = i % 3
        if op == 0:
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif op == 1:
            del data[rnd.randrange(len(data)):]
        else:  # rewrite a number of the header (a shape, an index, a length)
            text = bytes(data)
            digits = [j for j in range(16, len(text)) if chr(text[j]).isdigit()]
            if digits:
                j = rnd.choice(digits)
                data[j:j + 1] = str(rnd.choice([0, 9, 2**40, 2**63, 10**30])).encode()
                hlen = struct.unpack(">Q", bytes(data[4:12]))[0]
                data[4:12] = struct.pack(">Q", hlen + len(data) - len(text))
        try:
            decode(bytes(data))
        except ProtocolError:
            pass
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            others += 1
            raise AssertionError(f"mutation {i} (seed {FUZZ_SEED}) raised "
                                 f"{type(exc).__name__}: {exc}") from exc
    assert others == 0


def test_decoder_callbacks_keep_their_own_errors() -> None:
    """Errors of the handle factory / reference resolver are not disguised as malformed frames."""
    header = json.dumps({"$r": 4}).encode()

    def resolver(ref: Any) -> Any:
        raise LookupError(f"unknown reference {ref.id}")

    with pytest.raises(LookupError, match="unknown reference 4"):
        decode_parts(header, [], ref_resolver=resolver)


def test_absurd_empty_shapes_are_refused_before_numpy_sees_them() -> None:
    ok = decode(reply({"$a": [0, "<f8", [0, 1000]]}, [b""]))["value"]
    assert ok.shape == (0, 1000)
    limit_dim = MAX_TOTAL_BYTES // 8 + 1
    with pytest.raises(ProtocolError, match="absurdly large"):
        decode(reply({"$a": [0, "<f8", [0, limit_dim]]}, [b""]))


# ------------------------------------------------------------------------ accessors


class _NoSandbox:
    """A stand-in for the sandbox a RemoteObject would call (never called here)."""


def remote(type_name: str = "Tensor") -> RemoteObject:
    return RemoteObject(_NoSandbox(), Handle(7, type_name))  # type: ignore[arg-type]


LIE = "internal grader error: KeyError"  # a class name a student might choose
REFUSED = [
    # (accessor, kwargs, value, text the message must contain)
    (as_tuple, {"length": 2}, 7, "expected a tuple of 2 items, got the int 7"),
    (as_tuple, {"length": 2}, (1, 2, 3), "got a tuple of 3 items"),
    (as_tuple, {"length": 2}, remote(LIE), "not plain data"),
    (as_tuple, {"length": 3}, "abc", "got a str of 3 characters"),
    (as_list, {}, 7, "expected a list, got the int 7"),
    (as_list, {"length": 300}, [0.5] * 299, "a list of 300 items, got a list of 299 items"),
    (as_list, {"min_length": 1}, [], "at least 1 item"),
    (as_dict, {}, [1], "expected a dict, got a list of 1 item"),
    (as_dict, {"keys": ["W1", "b1"]}, {"W1": 1}, "keys ['W1', 'b1'], got a dict with keys ['W1']"),
    (as_dict, {"required": ["t"]}, {"m": 1}, "the key(s) ['t']"),
    (as_float, {}, "1.0", "expected a number, got a str"),
    (as_float, {}, np.zeros(2), "expected a number, got an array of shape (2,)"),
    (as_float, {}, True, "expected a number, got the bool True"),
    (as_float, {}, 1 + 2j, "expected a number"),
    (as_float, {"finite": True}, float("nan"), "a finite number, got nan"),
    (as_int, {}, 2.5, "expected an integer, got 2.5"),
    (as_int, {"low": 0, "high": 9}, 10, "between 0 and 9, got 10"),
    (as_int, {}, remote(), "not plain data"),
    (as_array, {"shape": (2, 3)}, np.zeros((3, 2)), "shape (2, 3), got shape (3, 2)"),
    (as_array, {"shape": (2, None)}, np.zeros(2), "shape (2, any), got shape (2,)"),
    (as_array, {"shape": (2,)}, 7, "got the int 7"),
    (as_array, {}, [[1.0, 2.0], [3.0]], "not a rectangular array of numbers"),
    (as_array, {}, [1.0, "x"], "of numbers, got a list of 2 items"),
    (as_array, {}, {"a": 1}, "got a dict with keys ['a']"),
    (as_array, {}, None, "got None"),
    (as_array, {}, remote(LIE), "not plain data"),
    (as_array, {}, [remote()], "of numbers, got a list of 1 item"),
    (as_array, {}, np.array([1 + 1j]), "real numbers, got an array of dtype complex128"),
    (as_array, {"dtype": "int"}, np.array([0.0, 1.5]), "non-integral value 1.5 at index (1,)"),
    (as_array, {"dtype": "int"}, np.array([np.nan]), "non-integral value nan"),
    (as_array, {"dtype": "bool"}, np.array([1]), "booleans, got an array of dtype int64"),
    (as_array, {"finite": True}, np.array([[1.0, np.inf]]), "finite numbers, got inf at index (0, 1)"),
    (as_object, {"what": "a torch.Tensor"}, np.zeros(3), "expected a torch.Tensor, got an array"),
    (as_object, {}, {"a": 1}, "expected an object, got a dict"),
]


@pytest.mark.parametrize("accessor,kwargs,value,needle", REFUSED,
                         ids=[f"{r[0].__name__}-{i}" for i, r in enumerate(REFUSED)])
def test_accessors_refuse_with_a_clear_message(accessor, kwargs, value, needle) -> None:
    with pytest.raises(StudentValueError) as info:
        accessor(value, name="my_function's return value", **kwargs)
    text = str(info.value)
    assert text.startswith("my_function's return value: expected "), text
    assert needle in text, f"{needle!r} not in {text!r}"
    assert LIE not in text, "a class name chosen by the student reached the message"
    message, internal = describe_exception(info.value)
    assert message == text and internal is False


def test_assert_close_never_shows_a_remote_class_name() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close(remote(LIE), np.zeros(3), name="out")
    assert "not plain data" in str(info.value) and LIE not in str(info.value)


def test_accessors_return_what_they_promise() -> None:
    out = as_array([[1, 2], [3, 4]], name="x", shape=(2, None))
    assert out.dtype == np.float64 and out.shape == (2, 2)
    assert as_array(np.array([0.0, 2.0]), name="y", dtype="int").tolist() == [0, 2]
    kept = as_array(np.ones(3, np.float32), name="w", dtype="number")
    assert kept.dtype == np.float32
    assert as_float(np.float32(2.5), name="loss") == 2.5 and as_float(np.array(3), name="l") == 3.0
    assert as_int(np.int64(4), name="t") == 4 and as_int(5.0, name="t") == 5
    assert as_tuple([1, 2], name="pair", length=2) == (1, 2)
    assert as_list((1, 2), name="history", length=2) == [1, 2]
    assert as_dict({"a": 1}, name="grads", keys={"a"}) == {"a": 1}
    obj = remote()
    assert as_object(obj, name="model") is obj


def _random_plain(rnd: random.Random, depth: int = 0) -> Any:
    """Any value the decoder can give back (plain data and opaque handles)."""
    kind = rnd.randrange(12 if depth < 3 else 7)
    simple = [None, True, rnd.randint(-5, 5), rnd.random(), float("nan"), "s",
              np.zeros(rnd.choice([(0,), (2,), (2, 3), ()]))]
    if kind < 7:
        return simple[kind]
    if kind == 7:
        return remote()
    if kind == 8:
        return [_random_plain(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    if kind == 9:
        return tuple(_random_plain(rnd, depth + 1) for _ in range(rnd.randint(0, 3)))
    if kind == 10:
        return {f"k{i}": _random_plain(rnd, depth + 1) for i in range(rnd.randint(0, 3))}
    return np.float32(rnd.random())


def test_accessors_never_crash_on_any_plain_value() -> None:
    rnd = random.Random(FUZZ_SEED)
    calls = [
        lambda v: as_array(v, name="v", shape=(2, None), finite=True),
        lambda v: as_array(v, name="v", dtype="int"),
        lambda v: as_array(v, name="v", dtype="bool"),
        lambda v: as_float(v, name="v", finite=True),
        lambda v: as_int(v, name="v", low=0),
        lambda v: as_tuple(v, name="v", length=2),
        lambda v: as_list(v, name="v", min_length=1),
        lambda v: as_dict(v, name="v", keys=["k0"]),
        lambda v: as_object(v, name="v"),
        describe,
    ]
    for i in range(2000):
        value = _random_plain(rnd)
        for call in calls:
            try:
                call(value)
            except StudentValueError:
                pass
            except Exception as exc:
                raise AssertionError(f"value {i} (seed {FUZZ_SEED}) {value!r}: "
                                     f"{type(exc).__name__}: {exc}") from exc


def test_plugin_sorts_student_faults_from_grader_bugs() -> None:
    assert describe_exception(MalformedReply("bad magic")) == (
        "your code sent the grader a malformed reply (bad magic); the worker was stopped", False)
    assert describe_exception(StudentError("ValueError", "no"))[1] is False
    message, internal = describe_exception(KeyError("W1"))
    assert internal and message.startswith("internal grader error: KeyError")


# ---------------------------------------------------------------- whole gradings

A1_SUITE = REPO / "autograder" / "suites" / "assignment1"

_REPLY_PIPE = '''
import fcntl as _fcntl
import json as _json
import os as _os
import struct as _struct
import time as _time


def _hostile_reply_pipe():
    for name in _os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            target = _os.readlink(f"/proc/self/fd/{fd}")
            flags = _fcntl.fcntl(fd, _fcntl.F_GETFL)
        except OSError:
            continue
        if target.startswith("pipe:") and flags & _os.O_ACCMODE == _os.O_WRONLY:
            return fd
    return None


def _hostile_forge(shape):
    header = _json.dumps({"$d": {"status": "ok", "value": {"$a": [0, "<f8", shape]}}}).encode()
    frame = (b"AGP\\x01" + _struct.pack(">Q", len(header)) + header + _struct.pack(">I", 1)
             + _struct.pack(">Q", 0))
    _os.write(_hostile_reply_pipe(), frame)
    _time.sleep(30)  # the grader has stopped listening long before
'''

# (case, module, code appended to it, tasks graded -> points expected, message of the failures)
A1_CASES = [
    ("wrong_type", "cs231n/layers.py",
     "def svm_loss(x, y):\n    return 7\n",
     {"svm_loss": 0, "softmax_loss": 4},
     "svm_loss's return value (loss, dx): expected a tuple of 2 items, got the int 7"),
    ("wrong_shape", "cs231n/layers.py",
     "_honest_softmax_loss = softmax_loss\n\n\n"
     "def softmax_loss(x, y):\n    loss, dx = _honest_softmax_loss(x, y)\n    return loss, dx[:, :-1]\n",
     {"softmax_loss": 0, "svm_loss": 4}, "shape"),
    ("nan_in_output", "cs231n/layers.py",
     "_honest_affine_forward = affine_forward\n\n\n"
     "def affine_forward(x, w, b):\n    out, cache = _honest_affine_forward(x, w, b)\n"
     "    out = out.copy()\n    out[0, 0] = float('nan')\n    return out, cache\n",
     {"affine_forward": 0, "affine_backward": 6}, "nan"),
    ("class_named_tensor", "cs231n/classifiers/linear_classifier.py",
     "class Tensor:\n    shape = (7,)\n\n    def __len__(self):\n        return 7\n\n\n"
     "LinearClassifier.predict = lambda self, X: Tensor()\n",
     {"linear_predict": 0, "svm_loss": 4},
     "return value: expected an array of shape"),
    ("ragged_list", "cs231n/classifiers/k_nearest_neighbor.py",
     "KNearestNeighbor.compute_distances_one_loop = lambda self, X: [[1.0, 2.0], [3.0]]\n",
     {"knn_one_loop": 0, "knn_two_loops": 4}, "not a rectangular array of numbers"),
    ("malformed_frame_huge_shape", "cs231n/classifiers/k_nearest_neighbor.py",
     _REPLY_PIPE + "\nKNearestNeighbor.compute_distances_two_loops = "
     "lambda self, X: _hostile_forge([100000, 100000, 100000])\n",
     {"knn_two_loops": 0, "knn_one_loop": 4}, "malformed reply"),
    ("malformed_frame_empty_absurd_shape", "cs231n/classifiers/k_nearest_neighbor.py",
     _REPLY_PIPE + "\nKNearestNeighbor.compute_distances_two_loops = "
     "lambda self, X: _hostile_forge([0, 2 ** 62, 2 ** 62])\n",
     {"knn_two_loops": 0, "knn_one_loop": 4}, "malformed reply"),
]


@pytest.fixture(scope="module")
def a1_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from coursegen.mutants import build_reference_submission

    dest = tmp_path_factory.mktemp("a1") / "reference"
    build_reference_submission(REPO / "source" / "assignment1", dest)
    return dest


def _failures(task_output: str) -> list[str]:
    return [ln for ln in task_output.splitlines() if ln.startswith("FAIL")]


@pytest.mark.slow
@pytest.mark.parametrize("case", A1_CASES, ids=[c[0] for c in A1_CASES])
def test_hostile_value_fails_only_its_own_task(case, a1_reference: Path, tmp_path: Path) -> None:
    name, module, code, expected, needle = case
    sub = tmp_path / "submission"
    shutil.copytree(a1_reference, sub)
    with open(sub / module, "a", encoding="utf-8") as fh:
        fh.write("\n\n# student fault: " + name + "\n" + textwrap.dedent(code))
    results = tmp_path / "results.json"
    report = grade(sub, "assignment1", suite_dir=A1_SUITE, course_root=REPO, seed=SEED,
                   results_path=results, tasks=list(expected), timeout=20)
    data = json.loads(results.read_text())
    outputs = {t["name"].split(":", 1)[0]: t["output"] for t in data["tests"]}
    got = {t["name"].split(":", 1)[0]: t["score"] for t in data["tests"] if
           t["name"].split(":", 1)[0] in expected}
    assert got == expected, f"{name}: scores {got}, expected {expected}\n{data['output']}"
    assert not report.internal_errors and data["extra_data"]["internal_error"] is False, \
        data["output"]
    assert all(t.internal_error is None for t in report.tasks), data["output"]
    failed = [tid for tid, pts in expected.items() if pts == 0]
    for tid in failed:
        lines = _failures(outputs[tid])
        assert lines, f"{name}: no failing test reported for {tid}:\n{outputs[tid]}"
        for line in lines:
            assert needle.lower() in line.lower(), f"{name}: {needle!r} not in {line!r}"
            assert "internal grader error" not in line.lower(), line
    assert math.isclose(data["score"], sum(expected.values()))


def test_a_suite_bug_is_still_an_internal_error(tmp_path: Path) -> None:
    """A test that fails on the grader's own data (KeyError) is the grader's fault."""
    suite = tmp_path / "suite"
    shutil.copytree(TOY / "suite", suite)
    with open(suite / "test_toy.py", "a", encoding="utf-8") as fh:
        fh.write(textwrap.dedent('''

            @pytest.mark.add
            def test_suite_bug(student, reference):
                from autograder.values import as_array
                expected = {"sum": reference.ops.add(SHAPES[0], SHAPES[0])}
                got = as_array(student.lib.ops.add(1.0, 2.0), name="add(1, 2)", shape=())
                assert_close(got, expected["total"], name="sum")  # KeyError: a bug of the suite
            '''))
    sub = tmp_path / "submission"
    shutil.copytree(TOY / "source" / "toy", sub)
    results = tmp_path / "results.json"
    report = grade(sub, "toy", suite_dir=suite, course_root=TOY, seed=SEED, results_path=results)
    data = json.loads(results.read_text())
    assert data["extra_data"]["internal_error"] is True, data["output"]
    add = next(t for t in report.tasks if t.id == "add")
    assert add.internal_error and "failed inside the grader" in add.internal_error
    bug = next(r for r in add.tests if "test_suite_bug" in r.name)
    assert bug.internal and bug.message.startswith("internal grader error: KeyError"), bug.message
    others = {t.id: t.score for t in report.tasks if t.id != "add"}
    assert others == {"relu": 3, "scaler": 5}, others
