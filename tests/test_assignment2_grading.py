"""Assignment 2's hidden suites, graded end to end by the real CLI (tests/grading_cases.py).

The reference submission scores 100%, the untouched release 0 with every task
naming NotImplementedError (or the missing weights file), and each
wrong-solution fixture in ``tests/fixtures/assignment2/mutants.toml`` loses
points in exactly the tasks it lists. Structural checks of the suite and its
mutants: tests/test_suite_structure.py.
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

SPEC = GradingSpec(
    assignment="assignment2",
    # the PyTorch and compiled fast-layer tasks dominate; the numpy layers,
    # optimizers and FullyConnectedNet take about 10 s
    reference_seconds=180,
    artifact_tasks={"pytorch_my_model": "my_model_weights.npz"},
    # graded for a mutant only when it targets them (compiling the extension,
    # importing torch, training): a few seconds per mutant in CI
    expensive_tasks=frozenset({
        "im2col_cython", "col2im_cython", "conv_fast", "max_pool_fast", "three_layer_convnet",
        "fc_net_loss", "pytorch_flatten", "pytorch_two_layer_fc", "pytorch_three_layer_convnet",
        "pytorch_module_api", "pytorch_sequential", "pytorch_my_model"}),
)

pytest_generate_tests = mutant_parametrizer(SPEC)


@pytest.fixture(scope="module")
def spec() -> GradingSpec:
    return SPEC
