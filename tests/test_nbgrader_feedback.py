"""nbgrader's own path, end to end: autograde grades the student's modules, feedback hides hidden tests.

Autograde puts the instructor's grade cells, hidden tests included, back into
the submission and executes it; ``generate_feedback`` renders the result for
the student. ``nbgrader_config.py`` installs ``HideHiddenTests`` so that
neither the hidden tests' source nor a traceback quoting it reaches the HTML.
"""

from __future__ import annotations

import re
import runpy
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from nbgrader.converters import GenerateFeedback
from traitlets.config import Config

from coursegen.modules import module_files, transform_source
from coursegen.nbgrader_fixes import HideHiddenTests

if TYPE_CHECKING:
    from conftest import NbgraderCourse

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "assignment1"
NOTEBOOK = "knn.ipynb"  # has a hidden-test region; the only notebook submitted, so the only one executed
CHECK = "knn_check_no_loops"  # the grade cell with the hidden tests
MODULE = Path("cs231n") / "classifiers" / "k_nearest_neighbor.py"

# Appended to a correct k_nearest_neighbor.py: the visible check of CHECK still
# passes, the hidden part fails on an assert, so its traceback quotes hidden lines.
STUDENT_BUG = '''

# alice: cache the distance matrix ("it's slow otherwise"); wrong for any other data
_cache: dict = {}
_compute = KNearestNeighbor.compute_distances_no_loops


def _cached(self, X):
    return _cache.setdefault("dists", _compute(self, X))


KNearestNeighbor.compute_distances_no_loops = _cached
'''

# For the unit tests of the preprocessor: a grade cell's metadata, a hidden-test line.
GRADE = {"grade": True, "grade_id": "check", "locked": True, "points": 1, "schema_version": 3, "solution": False}
SECRET = "assert secret_helper(result) == 42"

_MARKER = re.compile(r"###\s*(BEGIN|END) HIDDEN TESTS")


def _hidden_test_lines() -> set[str]:
    """Stripped lines inside a hidden-test region of any source notebook.

    Trivial lines (no letter or digit, like a lone bracket) and lines that also
    occur outside every hidden region of the source notebooks are left out.
    """
    inside: set[str] = set()
    outside: set[str] = set()
    for path in sorted((REPO / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            depth = 0
            for line in cell.source.splitlines():
                marker = _MARKER.search(line)
                if marker:
                    depth = depth + 1 if marker.group(1) == "BEGIN" else max(depth - 1, 0)
                elif line.strip():
                    (inside if depth else outside).add(line.strip())
    return {line for line in inside - outside if any(ch.isalnum() for ch in line)}


class _Text(HTMLParser):
    """The text a browser shows: tags dropped, entities decoded, style and script skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return "".join(parser.parts)


def _graded_cell(path: Path, grade_id: str) -> tuple[str, list[dict]]:
    """``(source, outputs)`` of one grade cell of a notebook."""
    cell = next(
        c for c in nbformat.read(path, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )
    return cell.source, cell.get("outputs", [])


def test_the_source_has_hidden_tests_to_hide() -> None:
    hidden = _hidden_test_lines()
    assert hidden, "no hidden-test region in any source notebook: the feedback test checks nothing"
    knn = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert any("BEGIN HIDDEN TESTS" in c.source for c in knn.cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == CHECK)


def test_feedback_runs_hide_hidden_tests_before_nbgraders_preprocessors() -> None:
    config = Config()
    runpy.run_path(str(REPO / "nbgrader_config.py"), init_globals={"get_config": lambda: config})
    defaults = GenerateFeedback.class_traits()["preprocessors"].default()
    assert config.GenerateFeedback.preprocessors == [HideHiddenTests, *defaults]


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_hide_hidden_tests_strips_sources_and_tracebacks_of_hidden_cells() -> None:
    check = nbformat.v4.new_code_cell(
        "assert result > 0, 'visible check'\n"
        "if True:\n"
        "    ### BEGIN HIDDEN TESTS\n"
        f"    {SECRET}, 'the answer'\n"
        "    ### END HIDDEN TESTS\n"
        "print('done')",
        metadata={"nbgrader": GRADE},
        outputs=[nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="the answer",
            traceback=["\x1b[31m----\x1b[39m", "Cell In[3], line 4\n----> 4 \x1b[38;5;28;01massert\x1b[39;00m secret_helper(result) == 42, 'the answer'"],
        )],
    )
    nb, _ = HideHiddenTests().preprocess(_notebook(check), {})
    cell = nb.cells[0]
    assert cell.source == "assert result > 0, 'visible check'\nif True:\n    # (hidden tests: not shown)\nprint('done')"
    [error] = cell.outputs
    assert error.ename == "AssertionError" and error.evalue == "the answer"
    assert error.traceback[-1] == "AssertionError: the answer"
    assert not any("secret_helper" in entry for entry in error.traceback)


def test_hide_hidden_tests_redacts_quotes_in_any_output() -> None:
    check = nbformat.v4.new_code_cell(f"### BEGIN HIDDEN TESTS\n{SECRET}\nx = 1\n### END HIDDEN TESTS", metadata={"nbgrader": GRADE})
    student = nbformat.v4.new_code_cell("print(_ih)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"before\n  {SECRET}\nafter x = 1\n"),
        nbformat.v4.new_output("display_data", data={
            "text/html": "<pre>assert secret_helper(result) == 42</pre>\n<p>kept</p>".replace("==", "&#61;&#61;"),
            "text/plain": "kept",
        }),
        nbformat.v4.new_output("error", ename="ValueError", evalue=SECRET, traceback=[f"ValueError: \x1b[1m{SECRET}\x1b[0m"]),
    ])
    nb, _ = HideHiddenTests().preprocess(_notebook(check, student), {})
    stream, display, error = nb.cells[1].outputs
    note = HideHiddenTests().redaction
    # x = 1 is too short to search for (it would hide innocent output).
    assert stream.text == f"before\n{note}\nafter x = 1\n"
    assert display.data["text/html"] == f"{note}\n<p>kept</p>" and display.data["text/plain"] == "kept"
    assert error.evalue == note and error.traceback == [note]
    assert nb.cells[0].source == "# (hidden tests: not shown)"


def test_hide_hidden_tests_fails_closed_on_broken_markers() -> None:
    unclosed = nbformat.v4.new_code_cell(f"a = 1\n### BEGIN HIDDEN TESTS\n{SECRET}\nb = 2")
    nested = nbformat.v4.new_markdown_cell(
        "text\n### BEGIN HIDDEN TESTS\none\n### BEGIN HIDDEN TESTS\ntwo\n### END HIDDEN TESTS\nthree\n### END HIDDEN TESTS\nend"
    )
    nb, _ = HideHiddenTests().preprocess(_notebook(unclosed, nested), {})  # not grade cells: no error either
    assert nb.cells[0].source == "a = 1\n# (hidden tests: not shown)"
    assert nb.cells[1].source == "text\nend"


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_and_autograde_keeps_student_modules(
    nbgrader_course: NbgraderCourse, data_env: dict[str, str]
) -> None:
    course = nbgrader_course.root
    proc = nbgrader_course.generate(ASSIGNMENT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    submitted = nbgrader_course.submit(ASSIGNMENT, "alice")
    for notebook in submitted.glob("*.ipynb"):
        if notebook.name != NOTEBOOK:
            notebook.unlink()  # not submitted: autograde skips it (keeps the test to one execution)
    reference = (REPO / "source" / ASSIGNMENT / MODULE).read_text()
    (submitted / MODULE).write_text(transform_source(reference, mode="solution") + STUDENT_BUG)
    students = {p.relative_to(submitted): p.read_text() for p in module_files(submitted)}

    proc = nbgrader_course.nbgrader("autograde", ASSIGNMENT, "--student", "alice", "--force",
                                    env=data_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    autograded = course / "autograded" / "alice" / ASSIGNMENT
    replaced = [str(rel) for rel, text in students.items() if (autograded / rel).read_text() != text]
    assert not replaced, f"autograde replaced the student's modules {replaced}"

    # The leak this guards against is there: the executed notebook has the hidden
    # tests in its source, and the failed assert's traceback quotes them.
    hidden = _hidden_test_lines()
    source, outputs = _graded_cell(autograded / NOTEBOOK, CHECK)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors] == ["AssertionError"], "the student's module did not fail the hidden tests"
    traceback = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", "\n".join(errors[0]["traceback"]))
    assert any(line in source for line in hidden) and any(line in traceback for line in hidden)

    proc = nbgrader_course.nbgrader("generate_feedback", ASSIGNMENT, "--student", "alice", "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    feedback = course / "feedback" / "alice" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
    assert feedback.is_file(), f"no feedback written: {sorted(p.name for p in feedback.parent.glob('*'))}"
    text = _html_text(feedback)
    leaks = sorted(line for line in hidden if line in text)
    assert not leaks, "hidden-test lines in the student's feedback:\n" + "\n".join(leaks)
    assert "HIDDEN TESTS" not in text
    # Still readable: the failure and its message (written for the student) are shown.
    assert f"AssertionError: {errors[0]['evalue']}" in text
