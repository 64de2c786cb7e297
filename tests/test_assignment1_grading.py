"""Assignment 1's hidden suites, graded end to end by the real CLI (tests/grading_cases.py).

The reference submission scores 100%, the untouched release 0 with every task
naming NotImplementedError, and each wrong-solution fixture in
``tests/fixtures/assignment1/mutants.toml`` loses points in exactly the tasks it
lists. Structural checks of the suite and its mutants: tests/test_suite_structure.py.
"""

from __future__ import annotations

import pytest
from grading_cases import (  # noqa: F401  (fixtures and tests collected here)
    GradingSpec,
    grading_env,
    mutant_parametrizer,
    reference_report,
    test_expensive_tasks_are_tasks,
    test_mutant_loses_exactly_its_tasks,
    test_reference_scores_full_points,
    test_release_scores_zero_with_complete_report,
)

SPEC = GradingSpec(assignment="assignment1", reference_seconds=120)

pytest_generate_tests = mutant_parametrizer(SPEC)


@pytest.fixture(scope="module")
def spec() -> GradingSpec:
    return SPEC
