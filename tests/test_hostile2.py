"""Second hostile corpus, intake and feedback part (issue 9, items 7 and 8).

Trees a student can submit that no honest one does (deep folder chains,
file/folder clashes, over-long names and paths, FIFOs, sockets, device files)
are built in ``tmp_path`` at test time; each must give a "submission problem"
report with exactly the message below, 0 points and no internal error, and a
class with such folders among good ones must still be graded. Then the
per-run secret seed (random, recorded instructor-side only, replayable) and
the redaction of expected values in hidden tasks' messages.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import stat
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autograder import checks, disclosure, feedback, tree
from autograder.batch import GradeOptions, grade_all
from autograder.runner import grade

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"
SUITE = TOY / "suite"
REFERENCE = TOY / "source" / "toy"
TOY_OPTIONS = GradeOptions(suite_dir=str(SUITE), course_root=str(TOY))
CHAIN = 1000  # folder levels of the deep-chain cases (the example)
NOT_ORDINARY = "; submit only ordinary files and folders"


def toy_submission(dest: Path) -> Path:
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def chain(top: Path, levels: int, name: str = "d") -> Path:
    """``top/name/name/...`` ``levels`` deep, made one level at a time (no recursion)."""
    top.mkdir(parents=True, exist_ok=True)
    path = top
    for _ in range(levels):
        path = path / name
        path.mkdir()
    return path


def remove_tree(top: Path) -> None:
    """Delete ``top`` without recursion (this Python's shutil.rmtree and os.walk recurse, and
    the deep chains here are deeper than the recursion limit: pytest's own clean-up of old
    temporary folders would die on them)."""
    stack = [str(top)]
    while stack:
        path = stack[-1]
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            stack.pop()
            continue
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                os.unlink(e.path)
        if subdirs:
            stack.extend(subdirs)
        else:
            os.rmdir(path)
            stack.pop()


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path):
    """Every test's temporary folder is removed iteratively when it ends."""
    yield
    remove_tree(tmp_path)


def long_path_parts() -> list[str]:
    return [c * 200 for c in "pqrstu"]  # 6 names of 200 bytes: 1206 bytes with slashes


def shown(text: str) -> str:
    """How a long path appears in a message: its start and its end."""
    return text if len(text) <= 200 else text[:120] + "..." + text[-60:]


# -- directory submissions: builder -> the exact problem --------------------------------
def dir_deep_chain(sub: Path) -> str:
    chain(sub / "deep", CHAIN)
    return "the submission has folders nested more than 32 levels deep: deep" + "/d" * 32


def dir_fifo(sub: Path) -> str:
    os.mkfifo(sub / "mylib" / "pipe")
    return "the submission contains a named pipe (FIFO): mylib/pipe" + NOT_ORDINARY


def dir_socket(sub: Path) -> str:
    path = sub / "mylib" / "sock"
    if len(str(path)) > 100:
        pytest.skip("temporary folder too deep for a Unix socket path")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return "the submission contains a socket: mylib/sock" + NOT_ORDINARY


def dir_device(sub: Path) -> str:
    try:
        os.mknod(sub / "mylib" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot make device files here (needs root with CAP_MKNOD)")
    return "the submission contains a device file: mylib/null" + NOT_ORDINARY


def dir_long_path(sub: Path) -> str:
    path = sub
    for part in long_path_parts():
        path = path / part
        path.mkdir()
    (path / "x.py").write_text("")
    rel = "/".join(long_path_parts())  # the first path over the limit: the 6th folder
    return f"the submission has a path longer than 1024 bytes: {shown(rel)}"


DIR_CASES: dict[str, Callable[[Path], str]] = {
    "deep_chain": dir_deep_chain, "fifo": dir_fifo, "socket": dir_socket,
    "device": dir_device, "long_path": dir_long_path,
}


# -- zip submissions: members -> the exact problem ---------------------------------------
def write_zip(dest: Path, members: list[tuple[str, bytes | None]], base: Path) -> Path:
    """The toy reference's files plus ``members`` (``None``: a folder entry)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of one case
        with zipfile.ZipFile(dest, "w") as zf:
            for path in sorted(base.rglob("*.py")):
                zf.write(path, path.relative_to(base).as_posix())
            for name, data in members:
                if data is None:
                    zf.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
                else:
                    zf.writestr(name, data)
    return dest


DEEP_MEMBER = "d/" * CHAIN + "x.py"
LONG_NAME = "n" * 300
ZIP_CASES: dict[str, tuple[list[tuple[str, bytes | None]], str]] = {
    "deep_chain": ([(DEEP_MEMBER, b"")],
                   "the submission has folders nested more than 32 levels deep: "
                   + shown(DEEP_MEMBER)),
    "file_then_folder": ([("mylib/extra", b"a file"), ("mylib/extra/x.py", b"")],
                         "the zip file holds both a file and a folder named 'mylib/extra'; "
                         "rename one of them"),
    "folder_then_file": ([("mylib/extra/", None), ("mylib/extra", b"a file")],
                         "the zip file holds both a file and a folder named 'mylib/extra'; "
                         "rename one of them"),
    "clash_with_library_file": ([("mylib/ops.py/inner.py", b"")],
                                "the zip file holds both a file and a folder named "
                                "'mylib/ops.py'; rename one of them"),
    "duplicate_file": ([("mylib/ops.py", b"x = 1\n")],
                       "the zip file holds two files named 'mylib/ops.py'"),
    "long_name": ([(f"mylib/{LONG_NAME}.py", b"")],
                  "the submission has a file or folder name longer than 255 bytes: "
                  + shown(LONG_NAME + ".py")),
    "long_path": ([("/".join(long_path_parts()) + "/x.py", b"")],
                  "the submission has a path longer than 1024 bytes: "
                  + shown("/".join(long_path_parts()) + "/x.py")),
}


def check_problem_report(report, results: Path, problem: str) -> None:
    """A complete zero report whose only finding is ``problem``."""
    assert report.submission_problem == problem
    assert report.score == 0 and report.max_score == 10
    assert [(t.id, t.score, t.tests, t.internal_error) for t in report.tasks] == \
        [("add", 0.0, [], None), ("relu", 0.0, [], None), ("scaler", 0.0, [], None)]
    assert not report.internal_errors
    data = json.loads(results.read_text())
    assert data["score"] == 0
    assert f"Your submission could not be graded: {problem}" in data["output"]
    assert not data["extra_data"]["internal_error"]
    assert all(t["output"] == f"not graded: {problem}" for t in data["tests"])


@pytest.mark.parametrize("case", sorted(DIR_CASES))
def test_hostile_directory_tree(case: str, tmp_path: Path) -> None:
    sub = toy_submission(tmp_path / "sub")
    problem = DIR_CASES[case](sub)
    results = tmp_path / "results.json"
    report = grade(sub, "toy", suite_dir=SUITE, course_root=TOY, results_path=results)
    check_problem_report(report, results, problem)
    assert tree.fingerprint(sub) == tree.fingerprint(sub)  # stable, never raises


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_hostile_zip_tree(case: str, tmp_path: Path) -> None:
    members, problem = ZIP_CASES[case]
    archive = write_zip(tmp_path / "sub.zip", members, REFERENCE)
    results = tmp_path / "results.json"
    report = grade(archive, "toy", suite_dir=SUITE, course_root=TOY, results_path=results)
    check_problem_report(report, results, problem)


def test_zip_name_flagged_utf8_but_not(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "sub.zip", [("mylib/AB.py", b"x = 1\n")], REFERENCE)
    data = bytearray(archive.read_bytes().replace(b"mylib/AB.py", b"mylib/\xff\xfe.py"))
    at = data.rfind(b"PK\x01\x02", 0, data.find(b"mylib/\xff\xfe.py", data.find(b"PK\x01\x02")))
    flags = struct.unpack_from("<H", data, at + 8)[0]
    struct.pack_into("<H", data, at + 8, flags | 0x800)  # "the name is UTF-8"
    archive.write_bytes(bytes(data))
    results = tmp_path / "results.json"
    report = grade(archive, "toy", suite_dir=SUITE, course_root=TOY, results_path=results)
    check_problem_report(report, results, "the submission is not a valid zip file ('utf-8' "
                         "codec can't decode byte 0xff in position 6: invalid start byte)")


def test_submission_that_is_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "sub.zip")  # opening it would block the grader forever
    results = tmp_path / "results.json"
    report = grade(tmp_path / "sub.zip", "toy", suite_dir=SUITE, course_root=TOY,
                   results_path=results)
    check_problem_report(report, results, "the submission sub.zip is not a zip file or a "
                                          "directory")


def test_walks_are_iterative(tmp_path: Path) -> None:
    # deeper than the interpreter's recursion limit: a recursive walk would die here
    levels = sys.getrecursionlimit() + 50
    chain(tmp_path / "t", levels)
    with pytest.raises(tree.TreeProblem, match="nested more than 32 levels"):
        list(tree.walk(tmp_path / "t"))
    a, b = tree.fingerprint(tmp_path / "t"), tree.fingerprint(tmp_path / "t")
    assert a == b and re.fullmatch(r"[0-9a-f]{64}", a)
    # the same rule for every caller: ignored entries do not change a fingerprint
    good = toy_submission(tmp_path / "good")
    before = tree.fingerprint(good)
    (good / "mylib" / "__pycache__").mkdir()
    (good / "mylib" / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"x")
    (good / "mylib" / "._ops.py").write_bytes(b"apple double")
    (good / ".DS_Store").write_bytes(b"x")
    assert tree.fingerprint(good) == before
    os.mkfifo(good / "mylib" / "pipe")  # refused by the intake: a fingerprint of its own
    assert tree.fingerprint(good) != before


def test_grade_all_with_poisoned_folders(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    toy_submission(subs / "alice")
    toy_submission(subs / "bob")
    expected = {"deep": dir_deep_chain(toy_submission(subs / "deep")),
                "fifo": dir_fifo(toy_submission(subs / "fifo"))}
    clash, problem = ZIP_CASES["clash_with_library_file"]
    write_zip(subs / "clash.zip", clash, REFERENCE)
    expected["clash"] = problem
    (subs / "loop").symlink_to("loop")  # a link to itself: neither a folder nor a zip
    os.mkfifo(subs / "pipe.zip")  # never opened (reading a FIFO would block forever)
    out = tmp_path / "grades"

    result = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, gradebook=False)
    status = {o.student: (o.status, o.score, o.message) for o in result.outcomes}
    assert status == {
        "alice": ("graded", 10.0, ""), "bob": ("graded", 10.0, ""),
        **{s: ("submission_problem", 0.0, m) for s, m in expected.items()},
    }
    assert result.complete
    assert {"ignored loop: not a folder or a .zip file",
            "ignored pipe.zip: not a folder or a .zip file"} <= set(result.notes)
    with open(out / "gradebook.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == ["alice", "bob", "clash", "deep", "fifo"]
    assert rows["deep"]["status"] == "submission_problem" and rows["deep"]["score"] == "0"
    assert not (out / ".staging").exists()

    # every student has a secret seed of their own, recorded instructor-side
    seeds = {}
    for o in result.outcomes:
        batch = json.loads((out / o.student / "batch.json").read_text())
        report = json.loads((out / o.student / "report.json").read_text())
        assert batch["seed"] == report["seed"] == o.seed and isinstance(o.seed, int)
        results = json.loads((out / o.student / "results.json").read_text())
        assert results["extra_data"]["seed"] == o.seed
        visible = results["output"] + "".join(t["output"] for t in results["tests"])
        visible += (out / o.student / "feedback.md").read_text()  # --feedback student
        assert "seed" not in visible and str(o.seed) not in visible
        seeds[o.student] = o.seed
    assert len(set(seeds.values())) == len(seeds)

    # a re-run skips every unchanged student although it would draw other seeds
    again = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, gradebook=False)
    assert again.graded == [] and {o.student: o.seed for o in again.outcomes} == seeds
    assert not (out / ".staging").exists()
    # an explicit seed regrades whoever was graded with another one, and then sticks
    fixed = GradeOptions(**{**TOY_OPTIONS.__dict__, "seed": seeds["alice"]})
    replay = grade_all(subs, "toy", output=out, jobs=2, options=fixed, gradebook=False)
    assert sorted(o.student for o in replay.graded) == ["bob", "clash", "deep", "fifo"]
    assert {o.seed for o in replay.outcomes} == {seeds["alice"]}
    assert grade_all(subs, "toy", output=out, jobs=2, options=fixed,
                     gradebook=False).graded == []


def test_secret_seed_random_and_replayable(tmp_path: Path) -> None:
    sub = toy_submission(tmp_path / "sub")
    ops = sub / "mylib" / "ops.py"
    text = ops.read_text()  # relu right only by chance: the worker's RNG decides
    assert text.count("return np.maximum(x, 0)") == 1
    ops.write_text(text.replace("return np.maximum(x, 0)",
                                "return np.maximum(x, 0) if np.random.rand() < 0.5 else x"))
    first = grade(sub, "toy", suite_dir=SUITE, course_root=TOY)
    second = grade(sub, "toy", suite_dir=SUITE, course_root=TOY)
    assert first.seed != second.seed  # drawn afresh: 63 random bits
    replay = grade(sub, "toy", suite_dir=SUITE, course_root=TOY, seed=first.seed)

    def outcome(report) -> list[tuple]:
        return [(t.name, t.seed, t.outcome, t.message) for task in report.tasks
                for t in task.tests]

    assert outcome(replay) == outcome(first) and replay.score == first.score
    assert outcome(second) != outcome(first)  # other per-test seeds
    md = feedback.render_markdown(first, audience="student")
    assert "seed" not in md and str(first.seed) not in md
    assert str(first.seed) in feedback.render_markdown(first, audience="instructor")


def test_secret_stream_is_not_the_test_seed() -> None:
    from types import SimpleNamespace

    from autograder.plugin import derive_seed

    item = SimpleNamespace(path=Path("/suite/test_x.py"), name="test_y[0]")
    seeds = {derive_seed(base, item, p) for base in (1, 2) for p in ("", "secret")}
    assert len(seeds) == 4  # four streams: per base seed, the test's and the secret one
    assert derive_seed(1, item, "secret") == derive_seed(1, item, "secret")


# suites whose evaluation model holds no student code may draw rows from the test's seed
NO_STUDENT_CODE_IN_EVALUATION = {"assignment2/test_pytorch.py"}


def test_evaluation_rows_come_from_the_secret_stream() -> None:
    import ast

    calls = []
    for path in sorted((REPO / "autograder" / "suites").glob("*/test_*.py")):
        rel = path.relative_to(REPO / "autograder" / "suites").as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "held_out":
                source = ast.unparse(node.args[1]) if len(node.args) > 1 else "?"
                calls.append((rel, node.lineno, source))
    assert len(calls) >= 3, calls  # A1's two accuracy tests and A2's fc_net at least
    wrong = [c for c in calls if c[2] != "secret_rng" and c[0] not in
             NO_STUDENT_CODE_IN_EVALUATION]
    assert not wrong, f"evaluation rows drawn from a stream the worker can know: {wrong}"


# -- what a failing check tells about a hidden task --------------------------------------
def test_hidden_messages_show_no_expected_values() -> None:
    got, want = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.6875]])
    with pytest.raises(AssertionError) as shown_info:
        checks.assert_close(got, want, name="out")
    assert "expected 4.6875" in str(shown_info.value)  # visible: the value may be shown
    with disclosure.withheld(), pytest.raises(AssertionError) as hidden_info:
        checks.assert_close(got, want, name="out")
    assert str(hidden_info.value) == (
        "out: 1 of 4 values differ (shape (2, 2)); worst at index (1, 1): relative error "
        "at least 1e-01 > tolerance rtol=1e-07, atol=0")
    with disclosure.withheld(), pytest.raises(AssertionError) as nan_info:
        checks.assert_close(np.array([np.nan, 1.0]), np.array([-1.0703125, 1.0]), name="y")
    assert str(nan_info.value) == "y: got a non-finite value nan at index (0,)"
    x = np.array([1.5, -2.25])
    with disclosure.withheld(), pytest.raises(AssertionError) as grad_info:
        checks.assert_gradient(np.array([3.0, 0.0]), lambda v: float(np.sum(v ** 2)), x,
                               name="dx")
    assert str(grad_info.value) == ("dx: gradient check failed (shape (2,)); worst at index "
                                    "(1,): relative error at least 1e+00 > tolerance 1e-06")
    assert disclosure.expected_shown()  # the block restored the default


def test_hidden_task_feedback_end_to_end(tmp_path: Path) -> None:
    sub = toy_submission(tmp_path / "sub")
    ops = sub / "mylib" / "ops.py"
    text = ops.read_text()
    ops.write_text(text.replace("return a + b", "return a + b + 0.5")
                   .replace("return np.maximum(x, 0)", "return np.maximum(x, 0) + 0.5"))
    report = grade(sub, "toy", suite_dir=SUITE, course_root=TOY, seed=3)
    messages = {t.id: [m.message for m in t.tests if m.outcome == "failed"]
                for t in report.tasks}
    assert messages["add"] and messages["relu"] and not report.internal_errors
    assert all(re.search(r", expected -?\d", m) for m in messages["add"])  # visible task
    for m in messages["relu"]:  # hidden task: where and how much, not what
        assert m.startswith("relu(x): ") and "worst at index" in m, m
        assert "expected" not in m and "relative error at least" in m, m
    assert disclosure.expected_shown()  # the plugin reset the state after each test
