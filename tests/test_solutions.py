"""The executed solutions (``solutions/<assignment>/``) and the notebook marker stripping."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from autograder import library
from autograder.config import available_assignments, load_assignment
from coursegen.modules import transform_tree
from coursegen.notebooks import (
    CellMarkerError,
    code_sources,
    solution_cell_source,
    solution_notebook,
)
from coursegen.solutions import IGNORE as SOLUTIONS_IGNORE
from coursegen.solutions import SolutionsError, build_solutions

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = available_assignments()
NOTEBOOKS = [(a, p.name) for a in ASSIGNMENTS for p in sorted((REPO / "source" / a).glob("*.ipynb"))]
REBUILD = "run `make solutions` (python -m coursegen.solutions {a}) and commit solutions/{a}"


# --------------------------------------------------------------------------- cell stripping


def test_solution_cell_keeps_code_and_drops_markers_and_hidden_tests() -> None:
    src = (
        "x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\nassert y == 2\n"
        "### BEGIN HIDDEN TESTS\nassert secret()\n### END HIDDEN TESTS"
    )
    assert solution_cell_source(src) == "x = 1\ny = x + 1\nassert y == 2"


def test_solution_cell_keeps_indented_solution_and_markdown_answers() -> None:
    src = "for i in range(3):\n    ### BEGIN SOLUTION\n    total += i\n    ### END SOLUTION\n"
    assert solution_cell_source(src) == "for i in range(3):\n    total += i"
    md = "**Your answer:**\n\n### BEGIN SOLUTION\nBecause of the kink.\n### END SOLUTION"
    assert solution_cell_source(md) == "**Your answer:**\n\nBecause of the kink."
    assert solution_cell_source("no markers here\n") == "no markers here"


@pytest.mark.parametrize(
    "src, line",
    [
        ("### BEGIN SOLUTION\nx = 1\n", 1),
        ("x = 1\n### END SOLUTION\n", 2),
        ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n", 2),
        ("### BEGIN HIDDEN TESTS\nx\n### END SOLUTION\n", 3),
        ("x = 1  ### BEGIN SOLUTION\n", 1),
    ],
)
def test_malformed_cell_markers_are_refused_with_their_line(src: str, line: int) -> None:
    with pytest.raises(CellMarkerError) as info:
        solution_cell_source(src, where="nb[cell 3]")
    assert info.value.line == line and str(info.value).startswith(f"nb[cell 3]:{line}:")


# --------------------------------------------------------------------------- the master copies


@pytest.mark.parametrize(("assignment", "name"), NOTEBOOKS, ids=[f"{a}/{n}" for a, n in NOTEBOOKS])
def test_master_notebooks_are_valid_clean_and_carry_nbgrader_metadata(assignment: str,
                                                                       name: str) -> None:
    path = REPO / "source" / assignment / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids: list[str] = []
    kinds = {"solution_code": 0, "solution_md": 0, "check": 0, "hidden": 0}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: master copies carry no outputs"
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        assert meta["schema_version"] == 3
        ids.append(meta["grade_id"])
        if meta["solution"]:
            kinds["solution_code" if cell.cell_type == "code" else "solution_md"] += 1
            assert "### BEGIN SOLUTION" in cell.source, f"{name}: solution cell {meta['grade_id']} has no region"
            if cell.cell_type == "markdown":
                assert meta["grade"] and meta["points"] > 0, "markdown answers must be graded (nbgrader rule)"
        if meta["grade"] and not meta["solution"]:
            kinds["check"] += 1
            assert meta["locked"] and meta["points"] == 1 and "assert" in cell.source
        kinds["hidden"] += "### BEGIN HIDDEN TESTS" in cell.source
    assert len(ids) == len(set(ids)), f"{name}: duplicate grade ids"
    assert kinds["solution_md"] >= 1, f"{name}: no inline question"
    assert kinds["check"] >= 1, f"{name}: no check cell: {kinds}"
    if assignment == "assignment1":  # its tuning cells (cross-validation, searches) are the student's
        assert kinds["solution_code"] >= 1, f"{name}: {kinds}"
    if name == "knn.ipynb":
        assert kinds["hidden"] >= 1, "knn.ipynb needs a check cell with hidden tests"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "graded" in first.source, f"{name}: intro cell missing"
    assert any("np.random.seed(" in c.source for c in nb.cells[:3]), f"{name}: seed numpy at the top"


# --------------------------------------------------------------------------- the committed solutions


def _pairs(assignment: str) -> list[tuple[Path, Path]]:
    source = REPO / "source" / assignment
    return [(p, REPO / "solutions" / assignment / p.name) for p in sorted(source.glob("*.ipynb"))]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_solutions_match_the_master_copies(assignment: str) -> None:
    pairs = _pairs(assignment)
    assert pairs, f"no notebooks in source/{assignment}"
    hint = REBUILD.format(a=assignment)
    for src, sol in pairs:
        assert sol.exists(), f"solutions/{assignment}/{sol.name} is missing: {hint}"
        assert sol.with_suffix(".html").exists(), f"solutions/{assignment}/{sol.with_suffix('.html').name} is missing: {hint}"
        expected = code_sources(solution_notebook(nbformat.read(src, as_version=4), name=src.name))
        actual = code_sources(nbformat.read(sol, as_version=4))
        assert actual == expected, (
            f"solutions/{assignment}/{sol.name} is out of date with source/{assignment}/{src.name} "
            f"(code cells differ after solution-mode stripping): {hint}"
        )
    extra = {p.name for p in (REPO / "solutions" / assignment).glob("*.ipynb")} - {s.name for _, s in pairs}
    assert not extra, f"solutions/{assignment} has notebooks with no master copy: {sorted(extra)}: {hint}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_solutions_were_executed_without_errors(assignment: str) -> None:
    for _, sol in _pairs(assignment):
        if not sol.exists():
            pytest.fail(f"solutions/{assignment}/{sol.name} is missing: {REBUILD.format(a=assignment)}")
        nb = nbformat.read(sol, as_version=4)
        counts = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            assert cell.execution_count is not None, f"{sol.name} cell {index} was never executed"
            counts.append(cell.execution_count)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{sol.name} cell {index} raised {errors[0].ename}: {errors[0].evalue}"
            for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
                assert marker not in cell.source, f"{sol.name} cell {index} still holds {marker!r}"
        assert counts == list(range(1, len(counts) + 1)), f"{sol.name} was not run top to bottom in one kernel"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_solution_files_match_the_master_copies(assignment: str, tmp_path: Path) -> None:
    """Every file of the master copy other than a notebook (the library with its
    shared files, README, scripts) is in solutions/ exactly as the solution-mode
    stripping makes it, except what the executed notebooks write themselves
    (PyTorch.ipynb trains and saves its own weights)."""
    work = tmp_path / assignment
    source = REPO / "source" / assignment
    library.assemble(source, library.declared(assignment), work, ignore=SOLUTIONS_IGNORE)
    transform_tree(work, mode="solution")
    hint = REBUILD.format(a=assignment)
    # what the executed notebooks write themselves: the declared artifacts
    written_by_notebooks = set(load_assignment(assignment).submission.artifacts)
    for path in sorted(work.rglob("*")):
        rel = path.relative_to(work)
        if not path.is_file() or path.suffix == ".ipynb" or rel.as_posix() in written_by_notebooks:
            continue
        committed = REPO / "solutions" / assignment / rel
        assert committed.is_file(), f"solutions/{assignment}/{rel} is missing: {hint}"
        assert committed.read_bytes() == path.read_bytes(), (
            f"solutions/{assignment}/{rel} is out of date with its master copy: {hint}")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_solution_library_has_no_markers(assignment: str) -> None:
    lib = REPO / "solutions" / assignment / "cs231n"
    masters = library.library_files(REPO / "source" / assignment, "cs231n", library.declared(assignment))
    modules = sorted(lib.rglob("*.py"))
    assert modules, f"solutions/{assignment}/cs231n is missing: {REBUILD.format(a=assignment)}"
    for path in modules:
        text = path.read_text()
        assert "### BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, f"{path} holds markers"
        assert "is not implemented yet" not in text, f"{path} holds a release stub"
        rel = path.relative_to(lib).as_posix()
        assert rel in masters, f"{path} has no master copy"


# --------------------------------------------------------------------------- building


def _mini_course(root: Path, cell_source: str) -> Path:
    """A course with one tiny notebook and a one-function library, for fast build tests."""
    base = root / "source" / "toy"
    (base / "toylib").mkdir(parents=True)
    (base / "toylib" / "__init__.py").write_text(
        "def double(x):\n    ### BEGIN SOLUTION double\n    return 2 * x\n    ### END SOLUTION\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy"),
        nbformat.v4.new_code_cell("from toylib import double\nimport os\nprint(os.environ.get('CVCOURSE_DATA_DIR'))"),
        nbformat.v4.new_code_cell(cell_source),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, base / "toy.ipynb")
    suite = root / "autograder" / "suites" / "toy"
    suite.mkdir(parents=True)
    (suite / "tasks.toml").write_text('[assignment]\nname = "toy"\nlibrary = "toylib"\n'
                                      'required = ["toylib/__init__.py"]\n\n'
                                      '[tasks.double]\ntitle = "double"\npoints = 1\n')
    return root


def test_build_executes_writes_html_and_clean_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    course = _mini_course(tmp_path, "### BEGIN SOLUTION\nvalue = double(21)\n### END SOLUTION\nprint(value)\n"
                                    "### BEGIN HIDDEN TESTS\nassert value == 42\n### END HIDDEN TESTS")
    monkeypatch.setenv("CVCOURSE_DATA_DIR", str(tmp_path / "somewhere"))
    out = build_solutions("toy", course, timeout=120)
    assert out == course / "solutions" / "toy"
    nb = nbformat.read(out / "toy.ipynb", as_version=4)
    assert nb.cells[2].source == "value = double(21)\nprint(value)"
    assert nb.cells[2].outputs[0]["text"] == "42\n"
    assert nb.cells[1].outputs[0]["text"].strip() == str(tmp_path / "somewhere"), "the data dir must reach the kernel"
    assert "42" in (out / "toy.html").read_text()
    assert (out / "toylib" / "__init__.py").read_text() == "def double(x):\n    return 2 * x\n"
    manifest = tomllib.loads((out / "submission.toml").read_text())["submission"]
    assert manifest["modules"] == ["toylib/__init__.py"] and manifest["zip_name"] == "toy_submission.zip"


def test_failing_cell_names_notebook_and_cell_and_keeps_previous_output(tmp_path: Path) -> None:
    course = _mini_course(tmp_path, "print('ok')")
    out = build_solutions("toy", course, timeout=120)
    before = (out / "toy.ipynb").read_text()
    nb_path = course / "source" / "toy" / "toy.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[2].source = "raise ValueError('broken on purpose')"
    nbformat.write(nb, nb_path)
    with pytest.raises(SolutionsError, match=r"(?s)toy\.ipynb: cell 2 failed.*ValueError: broken on purpose"):
        build_solutions("toy", course, timeout=120)
    assert (out / "toy.ipynb").read_text() == before, "a failed build must leave the previous solutions intact"
    assert sorted(p.name for p in (course / "solutions").iterdir()) == ["toy"], "no staging leftovers"


def test_command_line_exits_non_zero_on_error(tmp_path: Path) -> None:
    course = _mini_course(tmp_path, "1 / 0")
    proc = subprocess.run(
        [sys.executable, "-m", "coursegen.solutions", "toy", "--root", str(course), "--timeout", "120"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "toy.ipynb: cell 2 failed" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert not (course / "solutions" / "toy").exists()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_build_from_current_source(
    assignment: str, tmp_path: Path, notebook_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every notebook of the current master copy executes without error.

    ``notebook_data_dir`` (conftest) is the tests' data directory when it holds
    CIFAR-10, else a generated stand-in written with ``coursedata.cifar10.write_fixture``.
    """
    course = tmp_path / "course"
    for folder in (assignment, library.COMMON_DIR):  # the assignment and its shared files
        shutil.copytree(REPO / "source" / folder, course / "source" / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setenv("CVCOURSE_DATA_DIR", str(notebook_data_dir))
    out = build_solutions(assignment, course, dest=tmp_path / "out", timeout=600)
    names = sorted(p.name for p in out.glob("*.ipynb"))
    assert names == sorted(p.name for p in (REPO / "source" / assignment).glob("*.ipynb"))
    for name in names:
        nb = nbformat.read(out / name, as_version=4)
        assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), name
