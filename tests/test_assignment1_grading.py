"""Assignment 1's hidden suites, graded end to end, and their points table.

Fast tests (always run): every test function of the suite carries exactly one
task marker declared in ``tasks.toml``, every task has a test, points sum to
100, and every mutant fixture still applies to the reference.

Slow tests (``-m slow``): the real CLI in a subprocess grades the reference
submission (100%), the untouched release (0, every task naming
NotImplementedError) and each wrong-solution fixture (points lost in exactly
the tasks it lists, full points elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from coursegen.mutants import Mutant, apply_mutants, build_reference_submission, load_mutants

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "autograder" / "suites" / "assignment1"
SOURCE = REPO / "source" / "assignment1"
RELEASE = REPO / "release" / "assignment1"
MUTANTS_FILE = Path(__file__).resolve().parent / "fixtures" / "assignment1" / "mutants.toml"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEED = 1234
GRADE_TIMEOUT = 600

MUTANTS = load_mutants(MUTANTS_FILE)


def _tasks() -> dict[str, dict[str, Any]]:
    with (SUITE / "tasks.toml").open("rb") as fh:
        return tomllib.load(fh)["tasks"]


# Structural checks of the suite and its mutants (points, markers, ids): tests/test_suite_structure.py


# ------------------------------------------------------------------ slow tests


@pytest.fixture(scope="module")
def grading_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the CLI: the data directory (real data if present, else a fixture)."""
    env = dict(os.environ)
    if (SHARED_DATA / "cifar-10-batches-py").is_dir():
        data = SHARED_DATA
    else:
        from coursedata import cifar10

        data = tmp_path_factory.mktemp("data")
        cifar10.write_fixture(data / "cifar-10-batches-py")
    env["CVCOURSE_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _grade(submission: Path, results: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the grader CLI on ``submission``; return results.json with ``_seconds`` and ``_stdout``."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(submission), "--assignment", "assignment1",
         "--results", str(results), "--seed", str(SEED)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=GRADE_TIMEOUT,
    )
    seconds = time.monotonic() - start
    assert results.is_file(), (
        f"no results.json (exit code {proc.returncode})\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
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
    assert len(hits) >= 1, f"cannot tell the task of results.json entry {entry.get('name')!r}"
    return max(hits, key=len)


def _by_task(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tasks = set(_tasks())
    out: dict[str, dict[str, Any]] = {}
    for entry in report.get("tests", []):
        task = _task_of(entry, tasks)
        row = out.setdefault(task, {"score": 0.0, "max_score": 0.0, "output": ""})
        row["score"] += float(entry.get("score", 0))
        row["max_score"] += float(entry.get("max_score", 0))
        row["output"] += str(entry.get("output", ""))
    return out


def _summary(by_task: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"  {t}: {r['score']:g}/{r['max_score']:g}" for t, r in sorted(by_task.items()))


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory: pytest.TempPathFactory, grading_env: dict[str, str]) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reference")
    build_reference_submission(SOURCE, root / "sub")
    return _grade(root / "sub", root / "results.json", grading_env)


@pytest.mark.slow
def test_reference_scores_full_points(reference_report: dict[str, Any]) -> None:
    by_task = _by_task(reference_report)
    tasks = _tasks()
    assert set(by_task) == set(tasks), f"report tasks {sorted(by_task)} vs tasks.toml {sorted(tasks)}"
    lost = {t: r for t, r in by_task.items() if r["score"] < r["max_score"] or r["max_score"] != tasks[t]["points"]}
    assert not lost, (
        "the reference lost points:\n"
        + "\n".join(f"{t}: {r['score']}/{r['max_score']}\n{r['output'][:3000]}" for t, r in lost.items())
    )
    assert float(reference_report["score"]) == pytest.approx(100.0), _summary(by_task)
    assert reference_report["_seconds"] < 120, f"grading the reference took {reference_report['_seconds']:.0f} s"


@pytest.mark.slow
def test_release_scores_zero_with_complete_report(tmp_path: Path, grading_env: dict[str, str]) -> None:
    sub = tmp_path / "sub"
    if RELEASE.is_dir():
        shutil.copytree(RELEASE, sub, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        from coursegen.modules import transform_tree

        shutil.copytree(SOURCE, sub, ignore=shutil.ignore_patterns("__pycache__"))
        transform_tree(sub, mode="release")
    report = _grade(sub, tmp_path / "results.json", grading_env)
    by_task = _by_task(report)
    assert set(by_task) == set(_tasks()), f"incomplete report: {sorted(by_task)}"
    assert float(report["score"]) == 0.0, _summary(by_task)
    for task, row in by_task.items():
        assert row["score"] == 0.0, f"{task} scored {row['score']} on the unimplemented release"
        assert "NotImplementedError" in row["output"], f"{task}'s output does not name NotImplementedError:\n{row['output'][:2000]}"


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_exactly_its_tasks(tmp_path: Path, grading_env: dict[str, str], mutant: Mutant) -> None:
    sub = tmp_path / "sub"
    build_reference_submission(SOURCE, sub)
    apply_mutants(sub, [mutant])
    report = _grade(sub, tmp_path / "results.json", grading_env)
    by_task = _by_task(report)
    assert set(by_task) == set(_tasks()), f"incomplete report: {sorted(by_task)}"
    losing = {t for t, r in by_task.items() if r["score"] < r["max_score"]}
    assert losing == set(mutant.loses), (
        f"mutant {mutant.name} ({mutant.why}) lost points in {sorted(losing)}, "
        f"expected exactly {sorted(mutant.loses)}\n{_summary(by_task)}\n"
        + "\n".join(f"--- {t}\n{by_task[t]['output'][:1500]}" for t in sorted(losing ^ set(mutant.loses)))
    )
