"""Hidden tests of Assignment 2's update rules: sgd_momentum, rmsprop, adam.

Each rule runs several steps on fresh random weights and gradients, feeding
the returned config back in as the Solver does; the whole trajectory of
weights and the final config (velocity / cache / moments / t) are compared
with the reference's, with the hyperparameters given and with the defaults.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close
from autograder.values import as_array, as_dict, as_tuple

RTOL = 1e-7
ATOL = 1e-10
STEPS = 6

# (id, weight shape, hyperparameters (None: the rule's defaults))
SGD_MOMENTUM_CASES = [
    ("defaults", (5, 4), None),
    ("given", (3, 7), {"learning_rate": 0.05, "momentum": 0.8}),
    ("vector", (10,), {"learning_rate": 1e-3, "momentum": 0.99}),
]
RMSPROP_CASES = [
    ("defaults", (5, 4), None),
    ("given", (3, 7), {"learning_rate": 0.05, "decay_rate": 0.9, "epsilon": 1e-6}),
    ("vector", (10,), {"learning_rate": 1e-3, "decay_rate": 0.5}),
]
ADAM_CASES = [
    ("defaults", (5, 4), None),
    ("given", (3, 7), {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}),
    ("vector", (10,), {"learning_rate": 1e-2, "beta1": 0.5, "beta2": 0.9}),
]

#: The state each rule keeps in its config, compared after the last step.
STATE_KEYS = {"sgd_momentum": ("velocity",), "rmsprop": ("cache",), "adam": ("m", "v", "t")}


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _check_rule(student, reference, rng, rule: str, shape, hyper) -> None:
    w0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(STEPS)]
    student_rule = getattr(student.lib.optim, rule)
    reference_rule = getattr(reference.optim, rule)

    w, config = w0.copy(), (None if hyper is None else dict(hyper))
    ref_w, ref_config = w0.copy(), (None if hyper is None else dict(hyper))
    for step, dw in enumerate(grads, start=1):
        w, config = as_tuple(student_rule(w.copy(), dw, config),
                             name=f"{rule}'s return value (next_w, config)", length=2)
        w = as_array(w, name=f"next_w after step {step} of {rule}", shape=shape)
        config = as_dict(config, name=f"{rule}'s config after step {step}")
        ref_w, ref_config = reference_rule(ref_w.copy(), dw, ref_config)
        assert_close(w, ref_w, name=f"next_w after step {step} of {rule} ({hyper or 'defaults'})",
                     rtol=RTOL, atol=ATOL)
    for key in STATE_KEYS[rule]:
        assert key in config, f"{rule} did not store '{key}' in config (keys: {sorted(config)})"
        assert_close(config[key], ref_config[key], name=f"config['{key}'] after {STEPS} steps of {rule}",
                     rtol=RTOL, atol=ATOL)


@pytest.mark.sgd_momentum
@pytest.mark.parametrize("case", SGD_MOMENTUM_CASES, ids=_ids(SGD_MOMENTUM_CASES))
def test_sgd_momentum(student, reference, rng, case):
    _, shape, hyper = case
    _check_rule(student, reference, rng, "sgd_momentum", shape, hyper)


@pytest.mark.rmsprop
@pytest.mark.parametrize("case", RMSPROP_CASES, ids=_ids(RMSPROP_CASES))
def test_rmsprop(student, reference, rng, case):
    _, shape, hyper = case
    _check_rule(student, reference, rng, "rmsprop", shape, hyper)


@pytest.mark.adam
@pytest.mark.parametrize("case", ADAM_CASES, ids=_ids(ADAM_CASES))
def test_adam(student, reference, rng, case):
    _, shape, hyper = case
    _check_rule(student, reference, rng, "adam", shape, hyper)


@pytest.mark.adam
def test_adam_resumes_from_config(student, reference, rng):
    """A config carried over from earlier steps (t = 5, moments given) continues correctly."""
    shape = (4, 3)
    config = {"learning_rate": 1e-2, "t": 5, "m": 0.1 * rng.standard_normal(shape), "v": 0.01 * rng.random(shape)}
    w, dw = rng.standard_normal(shape), rng.standard_normal(shape)
    next_w, next_config = as_tuple(
        student.lib.optim.adam(w.copy(), dw, {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                              for k, v in config.items()}),
        name="adam's return value (next_w, config)", length=2)
    next_config = as_dict(next_config, name="adam's returned config", required=("t",))
    ref_w, ref_config = reference.optim.adam(w.copy(), dw, dict(config))
    assert_close(next_w, ref_w, name="next_w (resumed at t=5, bias correction with t=6)", rtol=RTOL, atol=ATOL)
    assert_close(next_config["t"], ref_config["t"], name="config['t']", rtol=0, atol=0)
