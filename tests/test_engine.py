"""End-to-end tests of the grading engine on the toy assignment in tests/fixtures/toy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import checks, config
from autograder.report import write_results_json
from autograder.runner import NOT_SELECTED, grade
from autograder.sandbox import isolation_available

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
SUITE = TOY / "suite"
REFERENCE = TOY / "source" / "toy"
REPO = Path(__file__).resolve().parents[1]


def run_grade(sub: Path, tmp_path: Path, **kw: object):
    results = tmp_path / "out" / "results.json"
    report = grade(sub, "toy", suite_dir=SUITE, course_root=TOY, results_path=results, **kw)
    return report, json.loads(results.read_text())


def scores(data: dict) -> dict[str, float]:
    return {t["name"].split(":")[0]: t["score"] for t in data["tests"]}


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    dest = tmp_path / "submission"
    shutil.copytree(REFERENCE, dest)
    return dest


def check_gradescope(data: dict, max_total: float = 10) -> None:
    assert isinstance(data["score"], float)
    assert data["extra_data"]["max_score"] == max_total
    assert {"score", "execution_time", "output", "tests", "stdout_visibility"} <= set(data)
    for t in data["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output", "visibility",
                          "extra_data"}
        assert isinstance(t["extra_data"]["execution_time"], float)
        assert 0 <= t["extra_data"]["execution_time"] <= data["execution_time"] * 4 + 1
        assert t["visibility"] in config.VISIBILITIES
        assert t["status"] == ("passed" if t["score"] == t["max_score"] else "failed")
        assert 0 <= t["score"] <= t["max_score"]
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-9
    # the base seed is instructor-only: in extra_data, never in what the student reads
    assert isinstance(data["extra_data"]["seed"], int)
    assert "seed" not in data["output"]
    assert not any("seed" in t["output"] for t in data["tests"])


def test_reference_submission_scores_full(submission: Path, tmp_path: Path) -> None:
    report, data = run_grade(submission, tmp_path, seed=5)
    assert report.score == report.max_score == 10
    check_gradescope(data)
    assert scores(data) == {"add": 2, "relu": 3, "scaler": 5}
    assert [t["visibility"] for t in data["tests"]] == ["visible", "hidden", "after_due_date"]
    assert "PASS test_toy.py::test_add[shape0]\n" in data["tests"][0]["output"]
    assert data["extra_data"]["seed"] == 5 and report.seed == 5
    isolated, _ = isolation_available(sys.executable)
    assert data["extra_data"]["isolated"] is isolated
    assert ("sandbox: isolated" if isolated else "sandbox: NOT isolated") in data["output"]
    assert not report.internal_errors
    # each task's time: what its tests took (Gradescope's spec puts it in extra_data)
    for test, task in zip(data["tests"], report.tasks, strict=True):
        assert task.tests and all(t.duration > 0 for t in task.tests), task.id
        assert test["extra_data"]["execution_time"] == round(sum(t.duration for t in task.tests),
                                                             3) > 0


def test_stub_scores_zero_with_complete_report(submission: Path, tmp_path: Path) -> None:
    edit(submission, "mylib/ops.py", "return a + b", 'raise NotImplementedError("add: todo")')
    edit(submission, "mylib/ops.py", "return np.maximum(x, 0)",
         'raise NotImplementedError("relu: todo")')
    edit(submission, "mylib/model.py", 'return x * self.params["k"]',
         'raise NotImplementedError("scaler: todo")')
    report, data = run_grade(submission, tmp_path)
    assert report.score == 0
    check_gradescope(data)
    for t in data["tests"]:
        assert t["score"] == 0
        assert "your code raised NotImplementedError" in t["output"]
        assert "mylib/" in t["output"]  # the student's own frame
        assert "assert_close" not in t["output"]  # no hidden-test source
    assert not report.internal_errors


def test_wrong_solution_loses_exactly_its_task(submission: Path, tmp_path: Path) -> None:
    edit(submission, "mylib/ops.py", "return np.maximum(x, 0)", "return np.abs(x)")
    report, data = run_grade(submission, tmp_path)
    assert scores(data) == {"add": 2, "relu": 0, "scaler": 5}
    relu = data["tests"][1]["output"]
    assert "FAIL test_toy.py::test_relu" in relu and "relu(x)" in relu and "worst" in relu


def test_half_wrong_task_gets_partial_credit(submission: Path, tmp_path: Path) -> None:
    edit(submission, "mylib/ops.py", "return a + b", "return (a + b) if a.ndim == 1 else a")
    _, data = run_grade(submission, tmp_path)
    assert scores(data) == {"add": 1.0, "relu": 3, "scaler": 5}


def test_zip_with_wrapping_folder(submission: Path, tmp_path: Path) -> None:
    archive = tmp_path / "hw.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in submission.rglob("*"):
            zf.write(path, Path("my-homework") / path.relative_to(submission))
        zf.writestr("__MACOSX/my-homework/._junk", "junk")
    report, data = run_grade(archive, tmp_path)
    assert report.score == 10
    assert "my-homework" in data["output"]


def test_zip_with_dotdot_member_gives_zero_report(submission: Path, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in submission.rglob("*.py"):
            zf.write(path, path.relative_to(submission))
        zf.writestr("../escaped.txt", "gotcha")
    report, data = run_grade(archive, tmp_path)
    assert report.score == 0 and data["score"] == 0
    assert "'..'" in data["output"] and len(data["tests"]) == 3
    assert all("not graded" in t["output"] for t in data["tests"])
    assert not (tmp_path / "escaped.txt").exists()


def test_missing_required_file(submission: Path, tmp_path: Path) -> None:
    (submission / "mylib" / "model.py").unlink()
    report, data = run_grade(submission, tmp_path)
    assert report.score == 0
    assert "mylib/model.py" in data["output"]


def test_time_budget_exhausted(submission: Path, tmp_path: Path) -> None:
    report, _ = run_grade(submission, tmp_path, time_limit=0.001)
    assert report.score == 0
    messages = {t.message for task in report.tasks for t in task.tests}
    assert messages == {"submission time budget exhausted"}


def test_infinite_loop_fails_only_its_task(submission: Path, tmp_path: Path) -> None:
    edit(submission, "mylib/ops.py", "return np.maximum(x, 0)", "while True:\n        pass")
    report, data = run_grade(submission, tmp_path, timeout=1)
    assert scores(data) == {"add": 2, "relu": 0, "scaler": 5}
    assert "timed out after 1 s" in data["tests"][1]["output"]


def test_suite_problems_are_loud_internal_errors(submission: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(SUITE, suite)
    text = (suite / "test_toy.py").read_text()
    (suite / "test_toy.py").write_text(
        text.replace("@pytest.mark.relu\n", "")
        + "\n\n@pytest.mark.scaler\ndef test_broken(student):\n    return {}['x']\n"
    )
    report = grade(submission, "toy", suite_dir=suite, course_root=TOY)
    tasks = {t.id: t for t in report.tasks}
    assert tasks["relu"].internal_error == "no tests were collected for this task"
    assert tasks["relu"].score == 0
    assert any("no task marker" in e for e in report.internal_errors)
    broken = [t for t in tasks["scaler"].tests if t.name.endswith("test_broken")]
    assert broken[0].internal and broken[0].message.startswith("internal grader error: KeyError")
    assert tasks["scaler"].score == 2.5


def test_results_json_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         submission: Path) -> None:
    report, _ = run_grade(submission, tmp_path)
    target = tmp_path / "out" / "results.json"
    before = target.read_text()

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    report.score = 1.0
    with pytest.raises(OSError):
        write_results_json(report, target)
    monkeypatch.undo()
    assert target.read_text() == before  # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]  # no temp left
    write_results_json(report, target)
    assert json.loads(target.read_text())["score"] == 1.0


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_exit_codes(submission: Path, tmp_path: Path) -> None:
    ok = cli("grade", str(submission), "--assignment", "toy", "--suite-dir", str(SUITE),
             "--course-root", str(TOY), "--seed", "3", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "total: 10 / 10" in ok.stdout
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 10

    for args, needle in [
        (("grade", str(submission), "--assignment", "no_such_assignment"), "unknown assignment"),
        (("grade", str(tmp_path / "missing"), "--assignment", "toy", "--suite-dir", str(SUITE)),
         "does not exist"),
        (("grade",), "required"),
    ]:
        bad = cli(*args, cwd=tmp_path)
        assert bad.returncode == 2
        assert needle in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1

    # a course root without the reference: a complete report saying so, exit 0
    empty = tmp_path / "empty_root"
    empty.mkdir()
    res = tmp_path / "internal.json"
    broken = cli("grade", str(submission), "--assignment", "toy", "--suite-dir", str(SUITE),
                 "--course-root", str(empty), "--results", str(res), "-q", cwd=tmp_path)
    assert broken.returncode == 0
    assert "the grader itself failed" in broken.stderr and "Traceback" not in broken.stderr
    data = json.loads(res.read_text())
    assert data["score"] == 0 and data["extra_data"]["internal_error"] is True
    assert "internal grader error" in data["tests"][0]["output"]

    # a results path that cannot be written: refused before grading, exit 2, one line
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    unwritable = cli("grade", str(submission), "--assignment", "toy", "--suite-dir", str(SUITE),
                     "--results", str(blocker / "results.json"), cwd=tmp_path)
    assert unwritable.returncode == 2
    assert unwritable.stderr.startswith(f"autograder: error: --results {blocker / 'results.json'}"
                                        f" cannot be written: {blocker} is not a folder")
    assert len(unwritable.stderr.strip().splitlines()) == 1 and unwritable.stdout == ""

    listing = cli("tasks", "--assignment", "toy", "--suite-dir", str(SUITE), cwd=tmp_path)
    assert listing.returncode == 0 and "scaler" in listing.stdout and "10" in listing.stdout


def test_tasks_toml_validation(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.toml"
    bad.write_text('[assignment]\nname="x"\nlibrary="lib"\n[tasks.a]\ntitle="A"\npoints=1\n'
                   'visibility="sometimes"\n')
    with pytest.raises(config.ConfigError, match="visibility"):
        config.load_tasks(bad)
    bad.write_text('[assignment]\nname="x"\nlibrary="lib"\n')
    with pytest.raises(config.ConfigError, match="tasks"):
        config.load_tasks(bad)
    spec = config.load_tasks(SUITE / "tasks.toml")
    assert spec.max_score == 10 and spec.task_timeout("scaler") == 15
    assert spec.task_timeout("add") == 20


def test_checks_messages() -> None:
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    checks.assert_close(expected + 1e-12, expected, name="out")
    with pytest.raises(AssertionError, match=r"out: 1 of 4 values differ .*index \(1, 0\).*"
                                             r"got 3\.5, expected 3.*rtol=1e-07"):
        checks.assert_close(np.array([[1.0, 2.0], [3.5, 4.0]]), expected, name="out")
    with pytest.raises(AssertionError, match=r"expected shape \(2, 2\), got shape \(4,\)"):
        checks.assert_close(expected.ravel(), expected, name="out")
    with pytest.raises(AssertionError, match=r"expected an array of shape \(2, 2\), got None"):
        checks.assert_close(None, expected, name="out")
    with pytest.raises(AssertionError, match="non-finite"):
        checks.assert_close(np.array([[np.nan, 2], [3, 4]]), expected, name="out")
    with pytest.raises(AssertionError, match="dtype"):
        checks.assert_close(np.array([["a", "b"], ["c", "d"]]), expected, name="out")
    x = np.random.default_rng(0).standard_normal((3, 4))
    num = checks.numerical_gradient(lambda v: float(np.sum(v**2)), x)
    assert checks.rel_error(num, 2 * x) < 1e-8
    df = np.ones((3, 4)) * 2
    num2 = checks.numerical_gradient(lambda v: v**2, x, df)
    assert checks.rel_error(num2, 4 * x) < 1e-8
    checks.assert_gradient(2 * x, lambda v: float(np.sum(v**2)), x, name="dx")
    with pytest.raises(AssertionError, match="dx: gradient check failed.*worst at index"):
        checks.assert_gradient(-2 * x, lambda v: float(np.sum(v**2)), x, name="dx")
    assert checks.time_call(sum, [1, 2, 3], repeat=3) >= 0
    checks.assert_faster(0.01, 1.0, at_least=50, name="dists")
    with pytest.raises(AssertionError, match=r"speed-up of 10x; at least 50x"):
        checks.assert_faster(0.1, 1.0, at_least=50, name="dists")


def test_repo_assignment_tasks_parse() -> None:
    spec = config.load_tasks(REPO / "autograder" / "suites" / "assignment1" / "tasks.toml")
    assert spec.library == "cs231n" and spec.tasks


def test_same_submission_same_report_twice(submission: Path, tmp_path: Path) -> None:
    # relu is right only by chance: it depends on numpy's global generator,
    # which the worker seeds from the per-test seed recorded in the report
    edit(submission, "mylib/ops.py", "return np.maximum(x, 0)",
         "return np.maximum(x, 0) if np.random.rand() < 0.5 else x")
    edit(submission, "mylib/ops.py", "return a + b", "return (a + b) if a.ndim == 1 else a")
    first = run_grade(submission, tmp_path / "one", seed=11)[1]
    second = run_grade(submission, tmp_path / "two", seed=11)[1]
    other = run_grade(submission, tmp_path / "three", seed=12)[1]
    assert [(t["score"], t["output"]) for t in first["tests"]] == \
        [(t["score"], t["output"]) for t in second["tests"]]
    assert first["extra_data"]["test_seeds"] == second["extra_data"]["test_seeds"]
    assert first["extra_data"]["test_seeds"] != other["extra_data"]["test_seeds"]
    assert first["tests"][0]["output"] != other["tests"][0]["output"]  # other inputs


def test_selected_tasks_only(submission: Path, tmp_path: Path) -> None:
    edit(submission, "mylib/ops.py", "return a + b", "return a - b")
    report, data = run_grade(submission, tmp_path, tasks=["relu", "add"])
    assert scores(data) == {"add": 0, "relu": 3, "scaler": 0}
    scaler = data["tests"][2]
    assert NOT_SELECTED in scaler["output"] and "FAIL" not in scaler["output"]
    assert not report.internal_errors and not data["extra_data"]["internal_error"]
    with pytest.raises(config.ConfigError, match="unknown task"):
        run_grade(submission, tmp_path, tasks=["nope"])
