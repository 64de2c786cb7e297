"""Structural checks of every assignment's hidden suite and its wrong-solution fixtures.

For each assignment with a suite (``autograder/suites/<a>/tasks.toml``) and
mutants (``tests/fixtures/<a>/mutants.toml``): points sum to 100, every test
function carries exactly one declared task marker, every task has a test and
a solution region, required files exist, and every mutant is well formed and
still applies to the reference. The end-to-end gradings are in
``tests/test_grading.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from autograder import library
from autograder.config import TaskSpec, available_assignments, load_assignment
from coursegen.mutants import (
    Edit,
    Mutant,
    MutantError,
    apply_mutants,
    build_reference_submission,
    load_mutants,
)

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = available_assignments()
MUTANTS = [(a, m) for a in ASSIGNMENTS if (REPO / "tests" / "fixtures" / a / "mutants.toml").is_file()
           for m in load_mutants(REPO / "tests" / "fixtures" / a / "mutants.toml")]
NOT_TASKS = {"parametrize", "slow", "skip", "skipif", "xfail"}


def _suite(assignment: str) -> Path:
    return REPO / "autograder" / "suites" / assignment


def _source(assignment: str) -> Path:
    return REPO / "source" / assignment


def _tasks(assignment: str) -> dict[str, TaskSpec]:
    return load_assignment(assignment).tasks


def _mark_name(node: ast.expr) -> str | None:
    """``X`` for a decorator ``pytest.mark.X`` (called or not), else None."""
    if isinstance(node, ast.Call):
        node = node.func
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "pytest"
    ):
        return node.attr
    return None


def _suite_test_markers(assignment: str) -> dict[str, list[str]]:
    """``file::function`` -> the pytest marks of every test function of the suite."""
    found: dict[str, list[str]] = {}
    for path in sorted(_suite(assignment).glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marks = [m for m in (_mark_name(d) for d in node.decorator_list) if m is not None]
                found[f"{path.name}::{node.name}"] = marks
    return found


def test_every_assignment_is_checked() -> None:
    masters = [p.name for p in library.assignment_dirs(REPO / "source")]
    assert ASSIGNMENTS == masters, f"declared {ASSIGNMENTS}, master copies {masters}"
    without = [a for a in ASSIGNMENTS if not (REPO / "tests" / "fixtures" / a / "mutants.toml").is_file()]
    assert not without, f"no wrong-solution fixtures (tests/fixtures/<a>/mutants.toml) for {without}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_points_sum_to_100(assignment: str) -> None:
    tasks = _tasks(assignment)
    total = sum(t.points for t in tasks.values())
    assert total == 100, f"points in {assignment}'s tasks.toml sum to {total}, expected 100"
    for task_id, row in tasks.items():
        assert row.points > 0, f"task {task_id} has no points"
        assert row.title, f"task {task_id} has no title"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_has_exactly_one_declared_task_marker(assignment: str) -> None:
    tasks = set(_tasks(assignment))
    found = _suite_test_markers(assignment)
    assert len(found) >= len(tasks), f"only {len(found)} test functions in {_suite(assignment)}"
    for where, marks in found.items():
        task_marks = [m for m in marks if m not in NOT_TASKS]
        assert len(task_marks) == 1, f"{where} carries task markers {task_marks}, expected exactly one"
        assert task_marks[0] in tasks, f"{where} is marked {task_marks[0]!r}, which tasks.toml does not declare"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_task_has_a_test(assignment: str) -> None:
    used = {m for marks in _suite_test_markers(assignment).values() for m in marks}
    missing = sorted(set(_tasks(assignment)) - used)
    assert not missing, f"tasks without any test: {missing}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_task_ids_match_the_solution_markers(assignment: str) -> None:
    from coursegen.modules import check_tree

    tasks = _tasks(assignment)
    regions = check_tree(_source(assignment) / "cs231n", known_tasks=tasks)
    marked = {r.task for rs in regions.values() for r in rs if r.kind == "SOLUTION"}
    assert marked == set(tasks), f"solution markers {sorted(marked)} vs tasks.toml {sorted(tasks)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_required_files_exist_in_the_source(assignment: str) -> None:
    spec = load_assignment(assignment)
    required = spec.required
    shared = library.shared_files(_source(assignment), spec.student_library)
    missing = [p for p in required if not (_source(assignment) / p).is_file() and p not in shared]
    assert not missing, f"required files missing from {_source(assignment)} and its shared files: {missing}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_mutants_are_well_formed(assignment: str) -> None:
    tasks = set(_tasks(assignment))
    mutants = [m for a, m in MUTANTS if a == assignment]
    assert len(mutants) >= 8
    for mutant in mutants:
        unknown = set(mutant.loses) - tasks
        assert not unknown, f"mutant {mutant.name} loses unknown tasks {sorted(unknown)}"
        assert mutant.why, f"mutant {mutant.name} does not say why it is wrong"
    # Every graded task has a plausible wrong solution that must lose its points.
    uncovered = tasks - {t for m in mutants for t in m.loses}
    assert not uncovered, f"tasks of {assignment} without a wrong-solution fixture: {sorted(uncovered)}"


@pytest.mark.parametrize(("assignment", "mutant"), MUTANTS, ids=[f"{a}-{m.name}" for a, m in MUTANTS])
def test_mutant_applies_to_the_reference(tmp_path: Path, assignment: str, mutant: Mutant) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(_source(assignment), sub)
    before = {p: p.read_text(encoding="utf-8") for p in sub.rglob("*") if p.suffix in (".py", ".pyx")}
    apply_mutants(sub, [mutant])
    changed = [p for p, text in before.items() if p.read_text(encoding="utf-8") != text]
    assert changed or mutant.deletes, f"mutant {mutant.name} changed nothing"
    for deleted in mutant.deletes:
        assert not (sub / deleted).exists(), f"mutant {mutant.name} did not delete {deleted}"
    for path in changed:  # the wrong code must still be valid Python (Cython is compiled by the grader)
        if path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stale_mutant_is_reported_by_name(tmp_path: Path, assignment: str) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(_source(assignment), sub)
    stale = Mutant(
        name="stale_one",
        why="test",
        edits=(Edit(file="cs231n/layers.py", find="this text is not in the file", replace="x"),),
        loses=(next(iter(_tasks(assignment))),),
    )
    first = next(m for a, m in MUTANTS if a == assignment)
    before = {p: p.read_text(encoding="utf-8") for p in sub.rglob("*.py")}
    with pytest.raises(MutantError, match="stale_one"):
        apply_mutants(sub, [first, stale])
    assert all(p.read_text(encoding="utf-8") == t for p, t in before.items()), \
        "a stale fixture must write nothing"
