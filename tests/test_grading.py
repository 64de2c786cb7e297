"""End-to-end grading of every declared assignment's hidden suite by the real CLI.

For each assignment (``autograder.config.available_assignments``), in a
subprocess: the reference submission scores 100% (within ``reference_seconds``),
the untouched release 0 with every task naming NotImplementedError or the
missing artifact, and each wrong-solution fixture of
``tests/fixtures/<assignment>/mutants.toml`` loses points in exactly the tasks it
lists (full points elsewhere). What grading an assignment is expected to cost
is in ``tests/fixtures/<assignment>/grading.toml`` (optional)::

    reference_seconds = 180          # grading the reference takes less (default 120)
    expensive_tasks = ["conv_fast"]  # graded for a mutant only when it targets them
    [artifact_tasks]                 # tasks grading a file the student produces: on
    pytorch_my_model = "my_model_weights.npz"  # the release their output names it

Every test is parametrized by assignment first: under ``--dist loadfile``
(``make test``) tests/conftest.py's scheduler runs each assignment's tests on
one worker (its reference is built once) and the assignments on different
workers. Structural checks of the suites and mutants: tests/test_suite_structure.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import course_data
import pytest

from autograder.checks import NOT_GRADABLE
from autograder.config import TaskSpec, available_assignments, load_assignment
from coursegen.mutants import Mutant, apply_mutants, build_reference_submission, load_mutants

REPO = Path(__file__).resolve().parents[1]
SEED = 1234
GRADE_TIMEOUT = 600
DEFAULT_REFERENCE_SECONDS = 120.0
ASSIGNMENTS = available_assignments()


@dataclass(frozen=True)
class GradingSpec:
    """What end-to-end grading of one assignment expects (``tests/fixtures/<a>/grading.toml``)."""

    assignment: str
    #: seconds the grading of the reference may take
    reference_seconds: float = DEFAULT_REFERENCE_SECONDS
    #: tasks that grade a file the student produces rather than a stub: on the
    #: release their output names that file instead of NotImplementedError
    artifact_tasks: dict[str, str] = field(default_factory=dict)
    #: graded for a mutant only when it targets them (compiling, torch, training)
    expensive_tasks: frozenset[str] = frozenset()

    @classmethod
    def of(cls, assignment: str) -> GradingSpec:
        path = REPO / "tests" / "fixtures" / assignment / "grading.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        unknown = set(data) - {"reference_seconds", "artifact_tasks", "expensive_tasks"}
        assert not unknown, f"{path}: unknown keys {sorted(unknown)}"
        return cls(assignment, float(data.get("reference_seconds", DEFAULT_REFERENCE_SECONDS)),
                   dict(data.get("artifact_tasks", {})), frozenset(data.get("expensive_tasks", ())))

    @property
    def source(self) -> Path:
        return REPO / "source" / self.assignment

    @property
    def release(self) -> Path:
        return REPO / "release" / self.assignment

    def tasks(self) -> dict[str, TaskSpec]:
        return load_assignment(self.assignment).tasks


def _mutants(assignment: str) -> list[Mutant]:
    path = REPO / "tests" / "fixtures" / assignment / "mutants.toml"
    return load_mutants(path) if path.is_file() else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``assignment`` is every declared assignment; ``mutant`` every fixture of it.

    Test ids start with the assignment (``[assignment2-rmsprop_no_sqrt]``): the
    scheduler in tests/conftest.py groups by it.
    """
    if "mutant" in metafunc.fixturenames:
        pairs = [(a, m) for a in ASSIGNMENTS for m in _mutants(a)]
        metafunc.parametrize(["assignment", "mutant"], pairs, scope="module",
                             ids=[f"{a}-{m.name}" for a, m in pairs])
    elif "assignment" in metafunc.fixturenames:
        metafunc.parametrize("assignment", ASSIGNMENTS, scope="module")


def grade(spec: GradingSpec, submission: Path, results: Path, env: dict[str, str],
          tasks: list[str] | None = None) -> dict[str, Any]:
    """Run the grader CLI on ``submission``; return results.json with ``_seconds`` and ``_stdout``."""
    start = time.monotonic()
    only = [arg for t in tasks or [] for arg in ("--task", t)]
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(submission), "--assignment",
         spec.assignment, "--results", str(results), "--seed", str(SEED), *only],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=GRADE_TIMEOUT,
    )
    seconds = time.monotonic() - start
    assert results.is_file(), (
        f"no results.json (exit code {proc.returncode})\nstdout:\n{proc.stdout[-4000:]}\n"
        f"stderr:\n{proc.stderr[-4000:]}")
    report = json.loads(results.read_text(encoding="utf-8"))
    report["_seconds"] = seconds
    report["_stdout"] = proc.stdout + proc.stderr
    return report


def _task_of(entry: dict[str, Any], tasks: set[str]) -> str:
    for key in ("task", "task_id", "id"):
        if entry.get(key) in tasks:
            return entry[key]
    extra = entry.get("extra_data") or {}
    if isinstance(extra, dict) and extra.get("task") in tasks:
        return extra["task"]
    hits = [t for t in tasks if t in str(entry.get("name", ""))]
    assert hits, f"cannot tell the task of results.json entry {entry.get('name')!r}"
    return max(hits, key=len)


def by_task(report: dict[str, Any], tasks: set[str]) -> dict[str, dict[str, Any]]:
    """Score, max score and output of each task, summed over its results.json entries."""
    out: dict[str, dict[str, Any]] = {}
    for entry in report.get("tests", []):
        row = out.setdefault(_task_of(entry, tasks), {"score": 0.0, "max_score": 0.0, "output": ""})
        row["score"] += float(entry.get("score", 0))
        row["max_score"] += float(entry.get("max_score", 0))
        row["output"] += str(entry.get("output", ""))
    return out


def ungradable_here(spec: GradingSpec, report: dict[str, Any]) -> set[str]:
    """Tasks that need a real data set which ``report`` says was a generated stand-in."""
    from autograder import config as cfg
    from autograder import data

    sources = report.get("extra_data", {}).get("data_sources", {})
    needs = data.real_data_tasks(cfg.load_assignment(spec.assignment))
    return {t for t, name in needs.items() if str(sources.get(name, "")).startswith("generated")}


def summary(rows: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"  {t}: {r['score']:g}/{r['max_score']:g}" for t, r in sorted(rows.items()))


# -- fixtures and tests -----------------------------------------------------------------


@pytest.fixture(scope="module")
def grading_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the CLI: the tests' data directory (``course_data``).

    Without CIFAR-10 there the grader generates its stand-in, as on a fresh
    machine: the verdicts must be the same on both (issue 17).
    """
    env = dict(os.environ)
    env["CVCOURSE_DATA_DIR"] = str(course_data.data_dir())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def spec(assignment: str) -> GradingSpec:
    return GradingSpec.of(assignment)


@pytest.fixture(scope="module")
def reference_report(spec: GradingSpec, tmp_path_factory: pytest.TempPathFactory,
                     grading_env: dict[str, str]) -> dict[str, Any]:
    root = tmp_path_factory.mktemp(f"reference-{spec.assignment}")
    build_reference_submission(spec.source, root / "sub")
    return grade(spec, root / "sub", root / "results.json", grading_env)


@pytest.mark.slow
def test_reference_scores_full_points(spec: GradingSpec, reference_report: dict[str, Any]) -> None:
    tasks = spec.tasks()
    rows = by_task(reference_report, set(tasks))
    assert set(rows) == set(tasks), f"report tasks {sorted(rows)} vs tasks.toml {sorted(tasks)}"
    # On a generated stand-in, the tasks that need the real data say so and score 0 (issue 17).
    ungradable = ungradable_here(spec, reference_report)
    for task in ungradable:
        assert rows[task]["score"] == 0 and NOT_GRADABLE in rows[task]["output"], (
            f"{task} graded on generated data:\n{rows[task]['output'][:2000]}")
    lost = {t: r for t, r in rows.items() if t not in ungradable
            and (r["score"] < r["max_score"] or r["max_score"] != tasks[t].points)}
    assert not lost, "the reference lost points:\n" + "\n".join(
        f"{t}: {r['score']}/{r['max_score']}\n{r['output'][:3000]}" for t, r in lost.items())
    full = 100.0 - sum(tasks[t].points for t in ungradable)
    assert float(reference_report["score"]) == pytest.approx(full), summary(rows)
    assert reference_report["_seconds"] < spec.reference_seconds, (
        f"grading the reference took {reference_report['_seconds']:.0f} s "
        f"(limit {spec.reference_seconds:g} s)")


@pytest.mark.slow
def test_release_scores_zero_with_complete_report(spec: GradingSpec, tmp_path: Path,
                                                  grading_env: dict[str, str]) -> None:
    sub = tmp_path / "sub"
    if spec.release.is_dir():
        shutil.copytree(spec.release, sub, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        from coursegen.modules import transform_tree

        shutil.copytree(spec.source, sub, ignore=shutil.ignore_patterns("__pycache__"))
        transform_tree(sub, mode="release")
    report = grade(spec, sub, tmp_path / "results.json", grading_env)
    tasks = set(spec.tasks())
    rows = by_task(report, tasks)
    assert set(rows) == tasks, f"incomplete report: {sorted(rows)}"
    assert float(report["score"]) == 0.0, summary(rows)
    for task, row in rows.items():
        assert row["score"] == 0.0, f"{task} scored {row['score']} on the unimplemented release"
        expected = spec.artifact_tasks.get(task, "NotImplementedError")
        assert expected in row["output"], (
            f"{task}'s output does not name {expected}:\n{row['output'][:2000]}")


@pytest.mark.slow
def test_mutant_loses_exactly_its_tasks(spec: GradingSpec, tmp_path: Path,
                                        grading_env: dict[str, str], mutant: Mutant) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(spec.source, sub)
    apply_mutants(sub, [mutant])
    # Its own tasks and every inexpensive one; the expensive tasks are graded in
    # full for the reference and the release, and by the mutants that target them.
    tasks = set(spec.tasks())
    selected = set(mutant.loses) | (tasks - spec.expensive_tasks)
    report = grade(spec, sub, tmp_path / "results.json", grading_env,
                   tasks=sorted(selected) if selected != tasks else None)
    rows = {t: r for t, r in by_task(report, tasks).items() if t in selected}
    assert set(rows) == selected, f"incomplete report: {sorted(rows)}"
    losing = {t for t, r in rows.items() if r["score"] < r["max_score"]}
    assert losing == set(mutant.loses), (
        f"mutant {mutant.name} ({mutant.why}) lost points in {sorted(losing)}, "
        f"expected exactly {sorted(mutant.loses)}\n{summary(rows)}\n"
        + "\n".join(f"--- {t}\n{rows[t]['output'][:1500]}"
                    for t in sorted(losing ^ set(mutant.loses))))


def test_expensive_tasks_are_tasks(spec: GradingSpec) -> None:
    assert spec.expensive_tasks <= set(spec.tasks()), sorted(spec.expensive_tasks - set(spec.tasks()))
