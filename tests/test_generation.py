"""Generation: the module stripper, the nbgrader pipeline, and the committed release."""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder import library
from autograder.config import available_assignments, load_assignment, parse_declaration
from coursegen.manifest import submission_toml
from coursegen.modules import (
    MODULE_SUFFIXES,
    MarkerError,
    check_tree,
    find_regions,
    module_files,
    transform_source,
)

if TYPE_CHECKING:
    from conftest import NbgraderCourse

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = available_assignments()


# --------------------------------------------------------------------------- stripper

SAMPLE = '''import numpy as np


def double(x):
    """x: (N,) -> (N,)"""
    out = None
    # TODO: double x
    ### BEGIN SOLUTION double_task
    out = 2 * x
    ### END SOLUTION
    return out


class Model:
    def fit(self, x):
        ### BEGIN SOLUTION fit_task
        self.mean = x.mean()
        ### END SOLUTION
        ### BEGIN HIDDEN TESTS
        assert self.mean is not None
        ### END HIDDEN TESTS
        return self
'''


def test_release_mode_replaces_regions_with_task_stubs() -> None:
    out = transform_source(SAMPLE, mode="release", filename="sample.py")
    assert "2 * x" not in out and "x.mean()" not in out and "assert self.mean" not in out
    assert "BEGIN" not in out and "END" not in out
    assert 'raise NotImplementedError("double_task: double is not implemented yet' in out
    assert 'raise NotImplementedError("fit_task: fit is not implemented yet' in out
    assert "    # TODO: double x" in out  # instructions outside the region survive
    compile(out, "sample.py", "exec")
    namespace: dict = {}
    exec(compile(out, "sample.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="double_task"):
        namespace["double"](1)


def test_solution_mode_keeps_code_and_drops_markers_and_hidden_tests() -> None:
    out = transform_source(SAMPLE, mode="solution", filename="sample.py")
    assert "out = 2 * x" in out and "self.mean = x.mean()" in out
    assert "###" not in out and "assert self.mean" not in out
    namespace: dict = {}
    exec(compile(out, "sample.py", "exec"), namespace)
    assert namespace["double"](3) == 6


BAD_MARKERS = {
    "missing task id": ("def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n", 2),
    "never closed": ("def f():\n    ### BEGIN SOLUTION t\n    pass\n", 2),
    "end without begin": ("def f():\n    pass\n    ### END SOLUTION\n", 3),
    "nested": ("def f():\n    ### BEGIN SOLUTION t\n    ### BEGIN SOLUTION u\n", 3),
    "module level": ("### BEGIN SOLUTION t\nx = 1\n### END SOLUTION\n", 1),
    "indent mismatch": ("def f():\n    ### BEGIN SOLUTION t\n    pass\n  ### END SOLUTION\n", 4),
    "not alone on its line": ("def f():\n    x = 1  ### BEGIN SOLUTION t\n", 2),
    "wrong closer": ("def f():\n    ### BEGIN SOLUTION t\n    ### END HIDDEN TESTS\n", 3),
    "invalid task id": ("def f():\n    ### BEGIN SOLUTION two words\n    ### END SOLUTION\n", 2),
}


@pytest.mark.parametrize("case", sorted(BAD_MARKERS))
def test_malformed_markers_name_file_and_line(case: str) -> None:
    text, line = BAD_MARKERS[case]
    with pytest.raises(MarkerError) as info:
        transform_source(text, mode="release", filename="lib/bad.py")
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"lib/bad.py:{line}: ")


_body_line = st.text(
    alphabet=st.sampled_from("abcxyz_0123456789 =+*()[].,'"), min_size=1, max_size=30
).map(lambda s: "x_" + s.strip().replace("#", ""))


@given(bodies=st.lists(st.lists(_body_line, min_size=1, max_size=5), min_size=1, max_size=4))
def test_release_never_contains_region_bodies(bodies: list[list[str]]) -> None:
    """Law: no line of any region body survives in release mode; solution mode keeps them all."""
    parts = []
    for k, body in enumerate(bodies):
        parts.append(f"def f{k}():\n    ### BEGIN SOLUTION t{k}\n")
        parts.extend(f"    {line}\n" for line in body)
        parts.append("    ### END SOLUTION\n")
    text = "".join(parts)
    released = transform_source(text, mode="release").splitlines()
    solved = transform_source(text, mode="solution").splitlines()
    for body in bodies:
        for line in body:
            assert f"    {line}" not in released
            assert f"    {line}" in solved
    assert len(find_regions(text)) == len(bodies)


# --------------------------------------------------------------------------- the source tree


def _tasks(assignment: str) -> dict:
    return load_assignment(assignment).tasks


def test_every_master_copy_is_a_declared_assignment() -> None:
    """source/<a> (folders not starting with "_") and the declarations name the same assignments."""
    masters = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert masters == ASSIGNMENTS, f"source/ has {masters}, autograder/suites/*/tasks.toml declare {ASSIGNMENTS}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_task_has_a_marked_region_and_vice_versa(assignment: str) -> None:
    tasks = _tasks(assignment)
    marked = {
        r.task
        for path in module_files(REPO / "source" / assignment)
        for r in find_regions(path.read_text(), str(path))
        if r.kind == "SOLUTION"
    }
    assert marked == set(tasks), (
        f"task ids in markers and in tasks.toml differ: only in markers {sorted(marked - set(tasks))}, "
        f"only in tasks.toml {sorted(set(tasks) - marked)}"
    )


# --------------------------------------------------------------------------- the committed release


def _secret_lines(assignment: str) -> dict[str, str]:
    """Non-blank lines that occur in solution or hidden-test regions of the source and nowhere else in it.

    Returns ``{stripped line: "file:line"}``. Lines that also occur outside every
    region (``return loss, grads``, ``else:``) are not secret, so they are not checked.
    """
    inside: dict[str, str] = {}
    outside: set[str] = set()
    base = REPO / "source" / assignment

    def scan(text: str, where: str, regions_of) -> None:
        lines = text.splitlines()
        covered: set[int] = set()
        for begin, end in regions_of(text):
            covered.update(range(begin, end + 1))
            for i in range(begin + 1, end):
                s = lines[i - 1].strip()
                if s and not s.startswith("###"):
                    inside.setdefault(s, f"{where}:{i}")
        for i, line in enumerate(lines, start=1):
            if i not in covered and line.strip():
                outside.add(line.strip())

    def module_regions(text: str):
        return [(r.begin, r.end) for r in find_regions(text)]

    def cell_regions(text: str):
        spans, start, kind = [], None, None
        for i, line in enumerate(text.splitlines(), start=1):
            m = re.match(r"\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", line)
            if m and m.group(1) == "BEGIN":
                start, kind = i, m.group(2)
            elif m and start is not None and m.group(2) == kind:
                spans.append((start, i))
                start = None
        return spans

    shared = library.shared_files(base, library.declared(assignment)).values()
    for path in [*module_files(base), *(p for p in shared if p.suffix in MODULE_SUFFIXES)]:
        scan(path.read_text(), str(path.relative_to(REPO)), module_regions)
    for nb_path in sorted(base.rglob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for k, cell in enumerate(nb.cells):
            scan(cell.source, f"{nb_path.relative_to(REPO)}[cell {k}]", cell_regions)
    return {line: where for line, where in inside.items() if line not in outside}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_line_appears_in_release(assignment: str) -> None:
    release = REPO / "release" / assignment
    assert release.is_dir(), f"release/{assignment} is missing: run `make release`"
    secrets = _secret_lines(assignment)
    assert secrets, "found no solution regions at all in the source: the scan is broken"
    leaks = []
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            lines = [line for cell in nb.cells for line in cell.source.splitlines()]
        else:
            lines = path.read_text(errors="replace").splitlines()
        for line in lines:
            if line.strip() in secrets:
                leaks.append(f"{path.relative_to(REPO)}: {line.strip()!r} (from {secrets[line.strip()]})")
    assert not leaks, "solution/hidden-test lines leaked into the release:\n" + "\n".join(leaks[:20])
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        hits = [str(p) for p in release.rglob("*") if p.is_file() and marker in p.read_text(errors="replace")]
        assert not hits, f"{marker!r} left in {hits}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_stubs_compile_and_name_their_task(assignment: str) -> None:
    release = REPO / "release" / assignment
    tasks = set(_tasks(assignment))
    named: set[str] = set()
    for path in module_files(release):
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")
        for task in re.findall(r'raise NotImplementedError\("(\w+): ', path.read_text()):
            named.add(task)
    if tasks:
        assert named == tasks, f"stubs name {sorted(named)}, tasks.toml declares {sorted(tasks)}"


def _diff_trees(a: Path, b: Path) -> list[str]:
    problems: list[str] = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints"])

    def walk(c: filecmp.dircmp, rel: str) -> None:
        problems.extend(f"only in the regenerated release: {rel}{x}" for x in c.left_only)
        problems.extend(f"only in the committed release: {rel}{x}" for x in c.right_only)
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        problems.extend(f"differs: {rel}{x}" for x in mismatch + errors)
        for name, sub in c.subdirs.items():
            walk(sub, f"{rel}{name}/")

    walk(cmp, "")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_up_to_date(assignment: str, nbgrader_course: NbgraderCourse) -> None:
    proc = nbgrader_course.generate(assignment)
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems = _diff_trees(nbgrader_course.root / "release" / assignment, REPO / "release" / assignment)
    assert not problems, "release/ is out of date, run `make release` and commit:\n" + "\n".join(problems)


def _break_module_marker(source: Path) -> str:
    victim = module_files(source)[-1]
    victim.write_text(victim.read_text() + "\n\ndef broken():\n    ### BEGIN SOLUTION oops\n    return 1\n")
    return f"{victim.name}:"


def _misspell_task_id(source: Path) -> str:
    """``knn_no_loops`` -> ``knn_no_loopz`` (or the first marker's id, for another assignment)."""
    for path in module_files(source):
        regions = [r for r in find_regions(path.read_text(), str(path)) if r.kind == "SOLUTION"]
        if regions:
            task = next((r.task for r in regions if r.task == "knn_no_loops"), regions[0].task)
            path.write_text(path.read_text().replace(f"### BEGIN SOLUTION {task}\n", f"### BEGIN SOLUTION {task[:-1]}z\n", 1))
            return f"{path.name}:"
    raise AssertionError(f"no solution region in {source}")


def _break_notebook_marker(source: Path) -> str:
    nb_path = sorted(source.glob("*.ipynb"))[0]
    nb = nbformat.read(nb_path, as_version=4)
    index, cell = next((k, c) for k, c in enumerate(nb.cells)
                       if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source)
    cell.source = cell.source.replace("### END SOLUTION", "")
    nbformat.write(nb, nb_path)
    return f"{nb_path.name}[cell {index}]:"


BREAKAGES = {
    "malformed module marker": (_break_module_marker, "never closed"),
    "undeclared task id": (_misspell_task_id, "is not declared"),
    "malformed notebook marker": (_break_notebook_marker, "never closed"),
}


@pytest.mark.slow
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_failed_generation_names_the_place_and_keeps_the_committed_release(
        breakage: str, nbgrader_course: NbgraderCourse) -> None:
    """Fail closed: the error names file:line (notebook[cell K]:line), release/<a> stays byte for byte."""
    assignment = ASSIGNMENTS[0]
    course = nbgrader_course.root
    committed = course / "release" / assignment
    shutil.copytree(REPO / "release" / assignment, committed)
    breaker, reason = BREAKAGES[breakage]
    where = breaker(course / "source" / assignment)
    proc = nbgrader_course.generate(assignment)
    assert proc.returncode != 0, f"generation succeeded despite a {breakage}"
    assert reason in proc.stderr and where in proc.stderr, (where, reason, proc.stderr[-2000:])
    assert not _diff_trees(committed, REPO / "release" / assignment), "the committed release was changed"
    assert not list(course.glob(".release-staging-*")), "a staging folder was left behind"


def test_generation_knows_every_marker_id_from_the_declaration(tmp_path: Path) -> None:
    """The ids generation accepts: the declared tasks and ungraded regions, nothing else."""
    for assignment in ASSIGNMENTS:
        check_tree(REPO / "source" / assignment, load_assignment(assignment).region_ids)
    (tmp_path / "lib.py").write_text("def f():\n    ### BEGIN SOLUTION helper\n    return 1\n    ### END SOLUTION\n")
    decl = '[assignment]\nname = "toy"\nlibrary = "lib"\n{extra}\n[tasks.f]\ntitle = "f"\npoints = 1\n'
    spec = parse_declaration(decl.format(extra=""), "toy.toml")
    with pytest.raises(MarkerError, match=r"lib\.py:2: task id 'helper' is not declared"):
        check_tree(tmp_path, spec.region_ids)
    spec = parse_declaration(decl.format(extra='ungraded_regions = ["helper"]'), "toy.toml")
    assert spec.region_ids == {"f", "helper"}
    check_tree(tmp_path, spec.region_ids)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_generated_submission_manifest_is_the_declarations(assignment: str) -> None:
    """release/ and solutions/ carry the submission.toml generated from the declaration; source/ has none."""
    spec = load_assignment(assignment)
    assert not (REPO / "source" / assignment / "submission.toml").exists(), "a hand-written submission.toml is back"
    for tree in ("release", "solutions"):
        path = REPO / tree / assignment / "submission.toml"
        assert path.read_text() == submission_toml(spec), f"{path} is stale: regenerate {tree}/"
    manifest = tomllib.loads(submission_toml(spec))["submission"]
    assert manifest["modules"] == list(spec.required) and manifest["library"] == spec.library
    assert manifest["artifacts"] == list(spec.submission_spec.artifacts)


# --------------------------------------------------------------------------- nbgrader autograde


def test_autograde_config_keeps_student_modules_and_restores_cells() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import runpy, json; from traitlets.config import Config\n"
         "c = Config(); ns = runpy.run_path('nbgrader_config.py', init_globals={'get_config': lambda: c})\n"
         "print(json.dumps({'exclude': c.Autograde.exclude_overwriting, 'add': c.OverwriteCells.add_missing_cells}))"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    conf = json.loads(proc.stdout)
    assert conf["add"] is True
    for assignment in ASSIGNMENTS:
        base = REPO / "source" / assignment
        modules = {str(p.relative_to(base)) for p in module_files(base)}
        modules |= set(library.shared_files(base, library.declared(assignment)))
        assert modules and modules <= set(conf["exclude"][assignment]), "some modules would be overwritten"
    assert library.COMMON_DIR not in conf["exclude"], "the shared library is not an assignment"


@pytest.mark.slow
def test_nbgrader_autograde_grades_the_students_modules(
    nbgrader_course: NbgraderCourse, data_env: dict[str, str]
) -> None:
    """A wrong module survives autograde (not replaced) and a deleted test cell comes back."""
    assignment = "assignment1"
    course = nbgrader_course.root
    proc = nbgrader_course.generate(assignment)
    assert proc.returncode == 0, proc.stderr[-3000:]
    submitted = nbgrader_course.submit(assignment, "alice")
    layers = submitted / "cs231n" / "layers.py"
    marker = "# alice's own layers.py\n"
    layers.write_text(marker + layers.read_text())
    knn = submitted / "knn.ipynb"
    nb = nbformat.read(knn, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded, "knn.ipynb has no autograded check cell"
    removed_id = graded[0].metadata["nbgrader"]["grade_id"]
    nb.cells = [c for c in nb.cells if c is not graded[0]]
    nbformat.write(nb, knn)
    proc = nbgrader_course.nbgrader("autograde", assignment, "--student", "alice", "--force", env=data_env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = course / "autograded" / "alice" / assignment
    assert (out / "cs231n" / "layers.py").read_text().startswith(marker), "autograde replaced the student's module"
    restored = nbformat.read(out / "knn.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in restored.cells]
    assert removed_id in ids, "the deleted test cell escaped grading"
