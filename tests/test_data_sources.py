"""The same verdicts on real data and on the generated stand-in (issue 17).

For each assignment, the tasks whose tests use data (found in the hidden suite:
a test taking the ``cifar`` or ``dataset`` fixture, by its task marker) are
graded twice by the real CLI, once with the tests' real data directory and once
with an empty one (the grader then generates its stand-in, as on a fresh
machine), for the reference and for every wrong-solution fixture that loses
one of them. The tasks losing points must be the same on both, and each report
must name the data it was graded on. Tasks that cannot be graded on a stand-in
(``autograder.data.real_data_tasks``) are left out: they report "not graded" there.

Skipped where the tests' data directory holds no real CIFAR-10 (``make
test-nodata`` and a fresh machine compare nothing: there the mutant tests check
the generated side against ``mutants.toml``).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import course_data
import pytest
from test_grading import REPO, GradingSpec, by_task, grade

from autograder import config as cfg
from autograder import data
from coursegen.mutants import Mutant, apply_mutants, build_reference_submission, load_mutants

ASSIGNMENTS = ("assignment1", "assignment2")
DATA_FIXTURES = {"cifar", "dataset"}


def data_tasks(assignment: str) -> set[str]:
    """Tasks of ``assignment`` with a test that uses data, minus those a stand-in cannot grade."""
    suite = REPO / "autograder" / "suites" / assignment
    tasks: set[str] = set()
    for path in sorted(suite.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            if not DATA_FIXTURES & {a.arg for a in node.args.args}:
                continue
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
                        and target.value.attr == "mark"):
                    tasks.add(target.attr)
    spec = cfg.load_tasks(suite / "tasks.toml")
    return (tasks & set(spec.tasks)) - set(data.real_data_tasks(spec))


def cases() -> list[tuple[str, Mutant | None]]:
    out: list[tuple[str, Mutant | None]] = []
    for assignment in ASSIGNMENTS:
        tasks = data_tasks(assignment)
        out.append((assignment, None))
        mutants = load_mutants(REPO / "tests" / "fixtures" / assignment / "mutants.toml")
        out += [(assignment, m) for m in mutants if tasks & set(m.loses)]
    return out


CASES = cases()


def test_data_tasks_are_found() -> None:
    assert {"linear_train", "two_layer_net_loss", "knn_predict_labels"} <= data_tasks("assignment1")
    assert "fc_net_loss" in data_tasks("assignment2")
    assert "pytorch_my_model" not in data_tasks("assignment2")  # not gradable on a stand-in


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES,
                         ids=[f"{a}-{m.name if m else 'reference'}" for a, m in CASES])
def test_same_verdicts_on_real_and_generated_data(case: tuple[str, Mutant | None],
                                                  tmp_path: Path) -> None:
    assignment, mutant = case
    real = course_data.real_cifar()
    if real is None:
        pytest.skip("no real CIFAR-10 in the tests' data directory: nothing to compare with")
    spec = GradingSpec(assignment=assignment, reference_seconds=0)
    sub = tmp_path / "sub"
    build_reference_submission(spec.source, sub)
    if mutant is not None:
        apply_mutants(sub, [mutant])
    tasks = sorted(data_tasks(assignment))
    (tmp_path / "empty").mkdir()
    verdicts = {}
    for label, data_dir in (("real", course_data.data_dir()), ("generated", tmp_path / "empty")):
        env = {**os.environ, "CVCOURSE_DATA_DIR": str(data_dir),
               "PYTHONPATH": str(REPO)}
        report = grade(spec, sub, tmp_path / f"{label}.json", env, tasks=tasks)
        sources = report.get("extra_data", {}).get("data_sources", {})
        assert "cifar10" in sources, f"{label}: the report does not name its data: {sources}"
        assert sources["cifar10"].startswith("generated") == (label == "generated"), sources
        rows = {t: r for t, r in by_task(report, set(spec.tasks())).items() if t in tasks}
        assert set(rows) == set(tasks), f"{label}: incomplete report {sorted(rows)}"
        verdicts[label] = {t: r["score"] < r["max_score"] for t, r in rows.items()}
        verdicts[label + "_out"] = {t: r["output"][:800] for t, r in rows.items()}
    differ = sorted(t for t in tasks if verdicts["real"][t] != verdicts["generated"][t])
    assert not differ, (
        f"{assignment} {mutant.name if mutant else 'reference'}: tasks {differ} lost on "
        f"{'real' if verdicts['real'][differ[0]] else 'generated'} data only\n"
        + "\n".join(f"--- {t} real:\n{verdicts['real_out'][t]}\n--- {t} generated:\n"
                    f"{verdicts['generated_out'][t]}" for t in differ))
