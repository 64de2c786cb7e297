"""Grading a whole class: ``autograder grade-all`` / :mod:`autograder.batch`.

Uses the toy assignment of tests/fixtures/toy (a grading takes about a second);
the one test grading Assignment 1 is marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import feedback
from autograder.batch import (
    BatchError,
    GradeOptions,
    discover,
    fingerprint,
    grade_all,
)
from autograder.report import Report, TaskResult
from autograder.report import TestResult as Result

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"
SUITE = TOY / "suite"
REFERENCE = TOY / "source" / "toy"
TOY_OPTIONS = GradeOptions(suite_dir=str(SUITE), course_root=str(TOY))
NASTY = "<script>alert(1)</script> ```x``` | *bold*"


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def toy_submission(dest: Path) -> Path:
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def zip_folder(src: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(src).as_posix())
    return dest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Five toy submissions (folders, a wrapped zip, a broken zip) graded once with -j 2."""
    base = tmp_path_factory.mktemp("class")
    subs = base / "submissions"
    subs.mkdir()
    toy_submission(subs / "alice")  # correct
    bob = toy_submission(subs / "bob")  # visible task raises a nasty message, hidden one wrong
    edit(bob, "mylib/ops.py", "return a + b", f"raise ValueError({NASTY!r})")
    edit(bob, "mylib/ops.py", "return np.maximum(x, 0)", "return x")
    carol = toy_submission(base / "carol-src")  # correct, zipped inside a folder
    zip_folder(carol, subs / "carol.zip", prefix="carol-toy/")
    (subs / "dave.zip").write_bytes(b"this is not a zip file")
    erin = toy_submission(subs / "erin")  # after_due_date task wrong
    edit(erin, "mylib/model.py", 'return x * self.params["k"]', "return x")
    (subs / "notes.txt").write_text("not a submission")
    out = base / "out"
    events = []
    result = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, gradebook=False,
                       progress=events.append)
    return {"subs": subs, "out": out, "result": result, "events": events, "base": base}


def test_class_is_graded_in_parallel(toy_class: dict) -> None:
    result = toy_class["result"]
    by = {o.student: o for o in result.outcomes}
    assert list(by) == ["alice", "bob", "carol", "dave", "erin"]
    assert {s: (o.status, o.score) for s, o in by.items()} == {
        "alice": ("graded", 10), "bob": ("graded", 5), "carol": ("graded", 10),
        "dave": ("submission_problem", 0), "erin": ("graded", 5),
    }
    assert by["bob"].tasks == {"add": 0, "relu": 0, "scaler": 5}
    assert "not a zip file" in by["dave"].message
    assert by["carol"].layout == "zip" and by["alice"].layout == "directory"
    assert result.complete and not result.skipped and len(result.graded) == 5
    assert any("notes.txt" in n for n in result.notes)
    assert [(e.kind, e.done) for e in toy_class["events"]] == [
        ("grading", 0), *(("graded", i) for i in range(1, 6))]
    for o in result.outcomes:
        folder = toy_class["out"] / o.student
        names = {p.name for p in folder.iterdir()}
        assert {"results.json", "report.json", "feedback.md", "feedback.html",
                "batch.json"} <= names
        data = json.loads((folder / "results.json").read_text())
        assert data["score"] == o.score and len(data["tests"]) == 3
        assert o.seconds > 0
    assert not (toy_class["out"] / ".staging").exists()
    timing = by["alice"].timing
    assert timing["tests"] == 5 and timing["grade_s"] > 0
    assert timing.get("worker_calls", 1) >= 1  # measured unless the sandbox changed shape


def test_gradebook_csv(toy_class: dict) -> None:
    with open(toy_class["out"] / "gradebook.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student", "score", "max_score", "add", "relu", "scaler", "status",
                             "seconds", "message"]
    table = {r["student"]: r for r in rows}
    assert list(table) == ["alice", "bob", "carol", "dave", "erin"]
    assert table["bob"]["score"] == "5" and table["bob"]["max_score"] == "10"
    assert (table["bob"]["add"], table["bob"]["relu"], table["bob"]["scaler"]) == ("0", "0", "5")
    assert table["dave"]["status"] == "submission_problem" and "zip" in table["dave"]["message"]
    assert table["alice"]["status"] == "graded" and float(table["alice"]["seconds"]) > 0


def test_student_feedback_escapes_and_hides(toy_class: dict) -> None:
    out = toy_class["out"]
    page = (out / "bob" / "feedback.html").read_text()
    md = (out / "bob" / "feedback.md").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http" not in page.replace('http-equiv="Content-Security-Policy"', "")
    # the visible task's failure is explained, the message inside a fence it cannot close
    assert "test_toy.py::test_add[shape0]" in md and "ValueError" in md
    assert "````text\n" in md  # the message holds ``` so the fence is longer
    # hidden (relu) and after_due_date (scaler) tasks: no score, no details
    assert "relu(x)" not in md and "relu(x)" not in page
    assert md.count(feedback.HIDDEN_NOTE) >= 2
    assert "Score on the tasks shown here: 0 / 2 points" in md
    erin = feedback.report_from_dict(json.loads((out / "erin" / "report.json").read_text()))
    scaler = next(t for t in erin.tasks if t.id == "scaler")
    message = next(t.message for t in scaler.tests if t.outcome == "failed")
    assert message and message not in (out / "erin" / "feedback.md").read_text()
    assert message in feedback.render_markdown(erin, audience="released")
    carol = (out / "carol" / "feedback.md").read_text()
    assert "carol-toy" in carol  # the intake's note about the wrapping folder
    dave = (out / "dave" / "feedback.md").read_text()
    assert "could not be graded" in dave and "not a zip file" in dave

    # the instructor's version of the same report shows everything
    report = feedback.report_from_dict(json.loads((out / "bob" / "report.json").read_text()))
    full = feedback.render_markdown(report, student="bob", audience="instructor")
    assert "relu(x)" in full and "Score: 5 / 10 points" in full and "sandbox:" in full


def test_feedback_never_quotes_the_hidden_suite(toy_class: dict) -> None:
    source_lines = {line.strip() for line in (SUITE / "test_toy.py").read_text().splitlines()}
    source_lines = {s for s in source_lines if len(s) >= 12 and not s.startswith(("#", '"""'))}
    assert len(source_lines) > 10
    for student in ("alice", "bob", "carol", "dave", "erin"):
        folder = toy_class["out"] / student
        report = feedback.report_from_dict(json.loads((folder / "report.json").read_text()))
        texts = [(folder / "feedback.md").read_text(), (folder / "feedback.html").read_text()]
        for audience in feedback.AUDIENCES:
            texts.append(feedback.render_markdown(report, audience=audience))
            texts.append(feedback.render_html(report, audience=audience))
        for text in texts:
            leaked = [s for s in source_lines if s in text]
            assert not leaked, (student, leaked)


def test_resume_skips_unchanged_and_regrades_changes(toy_class: dict, tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(toy_class["subs"], subs)
    shutil.copytree(toy_class["out"], out)
    before = (out / "alice" / "results.json").read_text()

    again = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, gradebook=False)
    assert not again.graded and len(again.skipped) == 5
    assert (out / "alice" / "results.json").read_text() == before

    edit(subs / "bob", "mylib/ops.py", f"raise ValueError({NASTY!r})", "return a + b")
    fixed = grade_all(subs, "toy", output=out, jobs=2, options=TOY_OPTIONS, gradebook=False,
                      audience="instructor")
    assert [o.student for o in fixed.graded] == ["bob"]
    assert {o.student: o.score for o in fixed.outcomes}["bob"] == 7
    # the kept reports' feedback is re-rendered for the new audience, without regrading
    assert "sandbox:" in (out / "alice" / "feedback.md").read_text()
    assert (out / "alice" / "results.json").read_text() == before
    with open(out / "gradebook.csv", newline="") as fh:
        assert {r["student"]: r["score"] for r in csv.DictReader(fh)}["bob"] == "7"

    for gone in ("carol.zip", "dave.zip", "erin"):
        p = subs / gone
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    forced = grade_all(subs, "toy", output=out, jobs=2, force=True, options=TOY_OPTIONS,
                       gradebook=False)
    assert sorted(o.student for o in forced.graded) == ["alice", "bob"]
    assert (out / "alice" / "results.json").read_text() != before  # new execution_time


def test_dead_and_stuck_gradings_do_not_stop_the_others(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(SUITE, suite)
    (suite / "test_grader_trouble.py").write_text(
        "import os, signal, time\n"
        "import pytest\n\n"
        "@pytest.mark.add\n"
        "def test_trouble(submission):\n"
        "    if (submission.root / 'CRASH_GRADER').exists():\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    if (submission.root / 'HANG_GRADER').exists():\n"
        "        time.sleep(120)\n"
    )
    subs = tmp_path / "subs"
    for name in ("ok", "crash", "hang"):
        toy_submission(subs / name)
    (subs / "crash" / "CRASH_GRADER").write_text("")
    (subs / "hang" / "HANG_GRADER").write_text("")
    out = tmp_path / "out"
    options = GradeOptions(suite_dir=str(suite), course_root=str(TOY))
    result = grade_all(subs, "toy", output=out, jobs=3, options=options, gradebook=False,
                       hard_limit=8)
    by = {o.student: o for o in result.outcomes}
    assert by["ok"].status == "graded" and by["ok"].score == 10
    assert by["crash"].status == "crashed" and "SIGKILL" in by["crash"].message
    assert by["hang"].status == "crashed" and "did not finish within 8 s" in by["hang"].message
    assert not result.complete and {o.student for o in result.failed} == {"crash", "hang"}
    for name in ("crash", "hang"):
        data = json.loads((out / name / "results.json").read_text())
        assert data["score"] == 0 and data["extra_data"]["internal_error"] is True
        assert "not your fault" in (out / name / "feedback.md").read_text()
    # a failed grading is retried by the next run; the complete one is kept
    (subs / "crash" / "CRASH_GRADER").unlink()
    (subs / "hang" / "HANG_GRADER").unlink()
    retry = grade_all(subs, "toy", output=out, jobs=2, options=options, gradebook=False)
    assert sorted(o.student for o in retry.graded) == ["crash", "hang"] and retry.complete


def test_discovery_rules(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="not a directory"):
        discover(tmp_path / "missing", "toy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no submissions"):
        discover(tmp_path / "empty", "toy")
    dup = tmp_path / "dup"
    toy_submission(dup / "zoe")
    zip_folder(dup / "zoe", dup / "zoe.zip")
    with pytest.raises(BatchError, match="two submissions for student zoe"):
        discover(dup, "toy")
    # fingerprints: same bytes, same print; compiled files do not count; a change does
    a = toy_submission(tmp_path / "a")
    b = toy_submission(tmp_path / "b")
    assert fingerprint(a) == fingerprint(b)
    (b / "mylib" / "__pycache__").mkdir()
    (b / "mylib" / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"junk")
    assert fingerprint(a) == fingerprint(b)
    (b / "mylib" / "extra.py").write_text("")
    assert fingerprint(a) != fingerprint(b)


@pytest.mark.filterwarnings("ignore:.*not in session")
def test_nbgrader_layout_and_gradebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbgrader.api import Gradebook

    from autograder.nbgrader_gradebook import db_url

    course = tmp_path / "course"
    toy_submission(course / "submitted" / "erin" / "toy")
    frank = toy_submission(course / "submitted" / "frank" / "toy")
    edit(frank, "mylib/ops.py", "return np.maximum(x, 0)", "return x")
    (frank / "timestamp.txt").write_text("2024-03-01 10:00:00.000000 UTC")
    (course / "submitted" / "gina" / "other").mkdir(parents=True)
    # nbgrader runs alembic from PATH when it creates a gradebook
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # the assignment already has a notebook in the gradebook, autograded by nbgrader for frank
    with Gradebook(db_url(course / "gradebook.db"), course_id="cv-course") as gb:
        gb.add_assignment("toy")
        gb.add_notebook("problem1", "toy")
        gb.add_grade_cell("p1", "problem1", "toy", max_score=5, cell_type="code")
        gb.add_student("frank")
        gb.add_submission("toy", "frank")
        grade = gb.find_grade("p1", "problem1", "toy", "frank")
        grade.auto_score, grade.needs_manual_grade = 4.0, False
        gb.db.commit()

    found = discover(course, "toy")
    assert found.layout == "nbgrader" and found.course_dir == course.resolve()
    assert [e.student for e in found.entries] == ["erin", "frank"]
    assert found.entries[1].timestamp.startswith("2024-03-01")
    assert any("gina has no submission of toy" in n for n in found.notes)

    result = grade_all(course / "submitted", "toy", output=tmp_path / "out", jobs=2,
                       options=TOY_OPTIONS)
    assert result.complete and result.nbgrader_recorded == 2
    assert {o.student: o.score for o in result.outcomes} == {"erin": 10, "frank": 7}

    export = tmp_path / "export.csv"
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(export)],
                          cwd=course, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(export, newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert float(rows["erin"]["raw_score"]) == 10 and float(rows["erin"]["max_score"]) == 15
    assert float(rows["frank"]["raw_score"]) == 11  # 7 from the autograder + 4 from nbgrader
    assert rows["frank"]["timestamp"].startswith("2024-03-01 10:00:00")
    with Gradebook(db_url(course / "gradebook.db")) as gb:
        grade = gb.find_grade("relu", "mylib_autograder", "toy", "frank")
        assert grade.auto_score == 0 and grade.max_score == 3 and not grade.needs_manual_grade
        assert gb.find_assignment("toy").course_id == "cv-course"
        assert gb.find_grade("p1", "problem1", "toy", "frank").auto_score == 4  # untouched


def test_cli(toy_class: dict, tmp_path: Path) -> None:
    subs, out = toy_class["subs"], toy_class["out"]
    common = ["--assignment", "toy", "--suite-dir", str(SUITE), "--course-root", str(TOY)]
    ok = cli("grade-all", str(subs), *common, "--output", str(out), "-j", "2", "--no-progress",
             cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "5 students: 0 graded, 5 unchanged, 0 failed" in ok.stdout
    (tmp_path / "empty").mkdir()
    for args, needle in [
        ((str(tmp_path / "missing"), *common), "not a directory"),
        ((str(tmp_path / "empty"), *common), "no submissions"),
        ((str(subs), *common, "-j", "0"), "at least 1"),
        ((str(subs), *common, "--gradebook", "x.db", "--no-gradebook"), "not allowed"),
        ((str(subs), "--assignment", "no_such_assignment"), "unknown assignment"),
        ((str(subs), *common, "--feedback", "everyone"), "invalid choice"),
    ]:
        bad = cli("grade-all", *args, cwd=tmp_path)
        assert bad.returncode == 2, (args, bad.stderr)
        assert needle in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def _report(**kw: object) -> Report:
    tasks = [
        TaskResult(id="shown", title="A | *visible* task", points=2, score=1, tests=[
            Result("t.py::a", "shown", "passed", seed=1),
            Result("t.py::b", "shown", "failed", message="```\n<img src=x onerror=alert(1)>",
                       seed=2),
        ]),
        TaskResult(id="later", title="After the deadline", points=3, score=0,
                   visibility="after_due_date",
                   tests=[Result("t.py::c", "later", "failed", message="secret-later")]),
        TaskResult(id="never", title="Hidden", points=5, score=5, visibility="hidden",
                   tests=[Result("t.py::d", "never", "failed", message="secret-hidden")]),
        TaskResult(id="broken", title="Broken", points=1, score=0,
                   internal_error="fixture exploded",
                   tests=[Result("t.py::e", "broken", "error", message="grader trace",
                                     internal=True)]),
    ]
    return Report(assignment="demo", tasks=tasks, seed=7, score=6, max_score=11, **kw)


def test_feedback_audiences_and_escaping() -> None:
    rep = _report()
    student_md = feedback.render_markdown(rep, student="ann <b>", audience="student")
    assert "ann \\<b>" in student_md and "A \\| \\*visible\\* task" in student_md
    assert "````text\n```\n<img src=x onerror=alert(1)>\n````" in student_md
    assert "secret-later" not in student_md and "secret-hidden" not in student_md
    assert "grader trace" not in student_md and "not your fault" in student_md
    assert "Score on the tasks shown here: 1 / 3 points" in student_md  # visible + broken
    released = feedback.render_markdown(rep, audience="released")
    assert "secret-later" in released and "secret-hidden" not in released
    assert "Score: 6 / 11 points" in released and "5 / 5" in released
    full = feedback.render_html(rep, student="ann <b>", audience="instructor")
    assert "secret-hidden" in full and "grader trace" in full and "fixture exploded" in full
    assert "<img" not in full and "&lt;img src=x onerror=alert(1)&gt;" in full
    assert "ann &lt;b&gt;" in full and "<script" not in full
    with pytest.raises(ValueError, match="audience"):
        feedback.render_markdown(rep, audience="everyone")


def test_benchmark_script_on_the_toy_assignment(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "grade_all.py"), "--assignment", "toy",
         "--count", "3", "--jobs", "1,2", "--build", str(tmp_path / "bench"), "--zip-every", "2",
         "--json", str(tmp_path / "bench.json"), "--no-machine-check"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "submissions/min" in proc.stdout and "overhead" in proc.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [r["jobs"] for r in data["runs"]] == [1, 2]
    for run in data["runs"]:
        assert run["count"] == 3 and run["statuses"] == {"graded": 3}
        assert run["seconds"]["mean"] > 0 and run["throughput_per_min"] > 0


@pytest.mark.slow
def test_assignment1_class(tmp_path: Path, course_data_dir: Path) -> None:
    from coursegen.mutants import build_reference_submission

    subs = tmp_path / "subs"
    subs.mkdir()
    build_reference_submission(REPO / "source" / "assignment1", subs / "ref")
    zip_folder(REPO / "release" / "assignment1", subs / "stubs.zip")
    result = grade_all(subs, "assignment1", output=tmp_path / "out", jobs=2, gradebook=False,
                       options=GradeOptions(data_dir=str(course_data_dir)))
    by = {o.student: o for o in result.outcomes}
    assert result.complete
    assert by["ref"].score == by["ref"].max_score == 100
    assert by["stubs"].score == 0 and by["stubs"].status == "graded"
    md = (tmp_path / "out" / "stubs" / "feedback.md").read_text()
    assert "NotImplementedError" in md and "knn_two_loops" in md


@pytest.mark.parametrize("text", [
    "(correct and fast)", "knn_two_loops: loss {0.5} + 2! # not a heading",
    "*bold* _it_ __x__ `code` [link](http://x) ![img](y) <b>tag</b> a|b ~~del~~ \\ &amp; & x",
    "- a list item", "+ another", "1. ordered", "3) ordered", "# heading", "> quote", "===",
])
def test_markdown_escapes_only_what_markdown_reads(text: str) -> None:
    """Rendered by a CommonMark renderer (mistune, nbconvert's), the text reads as written."""
    import html

    import mistune

    escaped = feedback.md_escape(text)
    rendered = mistune.html(f"- {escaped}\n")
    assert rendered == f"<ul>\n<li>{html.escape(text, quote=False)}</li>\n</ul>\n", (text, escaped)
    if text[0] not in "-+#>=123456789":  # no block syntax at the start: nothing escaped there
        needless = [c for c in "(){}#+!.-" if f"\\{c}" in escaped]
        assert not needless, (text, escaped)
    assert "knn_two_loops" not in text or "knn_two_loops" in escaped  # words keep their "_"
    assert feedback.md_escape("(correct and fast)") == "(correct and fast)"
