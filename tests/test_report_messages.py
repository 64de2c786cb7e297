"""What the report says: each thing once, and what a passing test measured.

Identical failure messages (a compiler error seen by every test of the tasks
that use the extension; an untouched stub's ``NotImplementedError`` in every
test of its task) are said once in ``results.json`` and in the feedback, with
the tests they apply to; a task of the same visibility that repeats a message
already shown cites it. A test can attach a note to its result with the
``note`` fixture; it reaches ``results.json`` and the feedback on a pass too.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from autograder.feedback import render_html, render_markdown
from autograder.report import Report, TaskResult, gradescope_results
from autograder.report import TestResult as Result  # not a pytest test class
from autograder.runner import grade

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"
SEED = 11

COMPILER = ("the Cython extension did not compile: cs231n/im2col_cython.pyx:12:4: "
            "undeclared name not builtin: np\n" + "\n".join(f"  line {i} of the compiler output"
                                                           for i in range(40)))
STUB = "NotImplementedError: conv_forward_naive: implement it in cs231n/layers.py"


def _report() -> Report:
    """Two tasks failing on one compiler message (8 tests), one stub task (5 tests)."""
    def tests(task: str, n: int, message: str) -> list[Result]:
        return [Result(name=f"test_{task}[{i}]", task=task, outcome="failed", message=message,
                           seed=100 + i) for i in range(n)]
    tasks = [TaskResult(id="im2col", title="im2col", points=2, tests=tests("im2col", 3, COMPILER)),
             TaskResult(id="fast_conv", title="fast conv", points=2,
                        tests=tests("fast_conv", 5, COMPILER)),
             TaskResult(id="conv_naive", title="naive conv", points=4,
                        tests=[*tests("conv_naive", 5, STUB),
                               Result(name="test_conv_naive_ok", task="conv_naive",
                                          outcome="passed", seed=7)])]
    return Report(assignment="assignment2", tasks=tasks, seed=SEED, max_score=8)


def test_results_json_says_each_message_once() -> None:
    data = gradescope_results(_report())
    everything = json.dumps(data)
    whole = json.dumps(COMPILER)[1:-1]  # as it appears inside the JSON text
    assert everything.count(whole) == 1, "the compiler message is repeated"
    assert everything.count(json.dumps(STUB)[1:-1]) == 1, "the stub message is repeated"
    outputs = {t["name"].split(":")[0]: t["output"] for t in data["tests"]}
    assert "the same failure in 3 tests" in outputs["im2col"], outputs["im2col"]
    assert all(f"test_im2col[{i}]" in outputs["im2col"] for i in range(3))
    assert "seed" not in json.dumps([t["output"] for t in data["tests"]]), "seeds are secret"
    fast = outputs["fast_conv"]
    assert "the same failure in 5 tests" in fast and "in full under task im2col" in fast, fast
    assert "did not compile" in fast, "the citation names the failure"
    naive = outputs["conv_naive"].splitlines()
    assert [ln.startswith("FAIL") for ln in naive].count(True) == 1, naive
    assert "PASS test_conv_naive_ok" in naive, naive


def test_feedback_says_each_message_once() -> None:
    report = _report()
    for text in (render_markdown(report, audience="instructor"),
                 render_html(report, audience="instructor")):
        first_line = COMPILER.splitlines()[1]
        assert text.count(first_line) == 1, "the compiler's output is repeated"
        assert text.count("conv_forward_naive: implement it") == 1, "the stub message is repeated"
        assert "the same failure in 5 tests" in text and "the same failure in 3 tests" in text
        assert "shown there in full" in text and "under task im2col" in text


def test_a_message_is_not_cited_across_visibilities() -> None:
    """A hidden task's text is never what a visible task points to (nor the reverse)."""
    report = _report()
    report.tasks[0].visibility = "hidden"
    outputs = {t["name"].split(":")[0]: t["output"] for t in gradescope_results(report)["tests"]}
    assert COMPILER in outputs["im2col"] and COMPILER in outputs["fast_conv"]
    student = render_markdown(report, audience="student")
    assert "under task im2col" not in student and COMPILER.splitlines()[1] in student


def test_a_passing_test_reports_its_note(tmp_path: Path) -> None:
    """The ``note`` fixture: shown on a pass and on a failure, in results.json and feedback."""
    suite = tmp_path / "suite"
    shutil.copytree(TOY / "suite", suite)
    with open(suite / "test_toy.py", "a", encoding="utf-8") as fh:
        fh.write(textwrap.dedent('''

            @pytest.mark.add
            def test_add_measured(student, reference, note):
                got = float(student.lib.ops.add(1.0, 2.0))
                note(f"measured sum {got:.1f}; required 3.0")
                assert got == 3.0, "the sum is wrong"
            '''))
    sub = tmp_path / "submission"
    shutil.copytree(TOY / "source" / "toy", sub)
    results = tmp_path / "results.json"
    report = grade(sub, "toy", suite_dir=suite, course_root=TOY, seed=SEED, results_path=results,
                   tasks=["add"])
    add = json.loads(results.read_text())["tests"][0]
    assert add["score"] == add["max_score"], add["output"]
    assert "PASS test_toy.py::test_add_measured" in add["output"]
    assert "measured sum 3.0; required 3.0" in add["output"], add["output"]
    assert "passed (measured sum 3.0; required 3.0)" in render_html(report)
    assert "measured sum 3.0" in render_markdown(report)

    with open(sub / "mylib" / "ops.py", "a", encoding="utf-8") as fh:  # now it fails: the note stays
        fh.write("\n\ndef add(a, b):\n    return a + b + 1\n")
    grade(sub, "toy", suite_dir=suite, course_root=TOY, seed=SEED, results_path=results,
          tasks=["add"])
    add = json.loads(results.read_text())["tests"][0]
    line = next(ln for ln in add["output"].splitlines() if "test_add_measured" in ln)
    assert line.startswith("FAIL") and "the sum is wrong" in line, line
    assert "(measured sum 4.0; required 3.0)" in add["output"], add["output"]
