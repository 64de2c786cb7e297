"""Hidden tests of Assignment 1's two-layer network and its training with the Solver.

Case tables first. The student's network gets the same parameters as the
reference's (``net.params.set``), then scores, loss and every gradient are
compared with the reference and with central differences of the REFERENCE
loss, with and without regularization. Training uses the student's Solver on
the ``cifar`` fixture.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close, numerical_gradient
from autograder.evaluation import accuracy, fetch_params, held_out
from autograder.values import as_array, as_dict, as_float, as_object, as_tuple

RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7
PARAM_NAMES = ("W1", "b1", "W2", "b2")

# (id, D, H, C, weight_scale)
INIT_CASES = [
    ("default_like", 300, 100, 10, 1e-3),
    ("wide", 100, 200, 5, 1e-2),
    ("large_scale", 64, 128, 8, 1.0),
]

# (id, N, input shape, H, C, reg)
LOSS_CASES = [
    ("small_noreg", 3, (5,), 6, 4, 0.0),
    ("small_reg", 3, (5,), 6, 4, 0.7),
    ("image_reg", 4, (2, 3, 2), 5, 3, 2.5),
    ("batch_noreg", 10, (8,), 7, 5, 0.0),
]

# Solver training on CIFAR (same for the student's and the reference's Solver).
TRAIN_ROWS = 2000
VAL_ROWS = 500  # the Solver's validation rows (from the training split)
EVAL_ROWS = 500  # held-out rows drawn per seed from the validation + test splits
NET = {"hidden_dim": 50, "weight_scale": 1e-3, "reg": 0.0}
SOLVER = {
    "update_rule": "sgd",
    "optim_config": {"learning_rate": 1e-3},
    "lr_decay": 0.95,
    "num_epochs": 4,
    "batch_size": 100,
    "print_every": 1000,
    "verbose": False,
}
ACC_MARGIN = 0.03
ACC_FLOOR = 0.20


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


@pytest.mark.two_layer_net_init
@pytest.mark.parametrize("case", INIT_CASES, ids=_ids(INIT_CASES))
def test_two_layer_net_init(student, case):
    _, d, h, c, scale = case
    net = as_object(student.lib.classifiers.TwoLayerNet(input_dim=d, hidden_dim=h, num_classes=c,
                                                        weight_scale=scale, reg=0.0), name="TwoLayerNet(...)")
    params = as_dict(net.params.get(), name="net.params", keys=PARAM_NAMES)
    shapes = {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,)}
    for name, shape in shapes.items():
        params[name] = as_array(params[name], name=f"params['{name}']", shape=shape)
    for name in ("b1", "b2"):
        assert np.all(params[name] == 0), f"params['{name}'] must be initialized to zeros"
    for name in ("W1", "W2"):
        w = params[name]
        std, mean = float(np.std(w)), float(np.mean(w))
        # >= 1000 Gaussian draws: the sample std is within 15% of weight_scale and the
        # mean within 0.2 * weight_scale by more than 6 standard errors.
        assert abs(std - scale) <= 0.15 * scale, (
            f"params['{name}'] has standard deviation {std:.3g}, expected weight_scale = {scale:.3g}"
        )
        assert abs(mean) <= 0.2 * scale, f"params['{name}'] has mean {mean:.3g}, expected about 0"
        assert len(np.unique(w)) > w.size // 2, f"params['{name}'] must be random, not constant"


def _loss_setup(rng: np.random.Generator, n: int, dims: tuple[int, ...], h: int, c: int):
    d = int(np.prod(dims))
    params = {
        "W1": 0.3 * rng.standard_normal((d, h)),
        "b1": 0.1 * rng.standard_normal(h),
        "W2": 0.3 * rng.standard_normal((h, c)),
        "b2": 0.1 * rng.standard_normal(c),
    }
    X = rng.standard_normal((n, *dims))
    y = rng.integers(0, c, size=n)
    return params, X, y


def _reference_net(reference, params: dict, d: int, h: int, c: int, reg: float):
    net = reference.classifiers.TwoLayerNet(input_dim=d, hidden_dim=h, num_classes=c, weight_scale=1e-3, reg=reg)
    net.params = {k: v.copy() for k, v in params.items()}
    return net


def _student_net(student, params: dict, d: int, h: int, c: int, reg: float):
    net = as_object(student.lib.classifiers.TwoLayerNet(input_dim=d, hidden_dim=h, num_classes=c,
                                                        weight_scale=1e-3, reg=reg), name="TwoLayerNet(...)")
    net.params.set({k: v.copy() for k, v in params.items()})
    return net


@pytest.mark.two_layer_net_loss
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_two_layer_net_scores_loss_and_gradients(student, reference, rng, case):
    _, n, dims, h, c, reg = case
    d = int(np.prod(dims))
    params, X, y = _loss_setup(rng, n, dims, h, c)
    net = _student_net(student, params, d, h, c, reg)
    ref_net = _reference_net(reference, params, d, h, c, reg)
    expected = ref_net.loss(X)
    scores = as_array(net.loss(X), name="loss(X)'s return value (scores)", shape=expected.shape)
    assert_close(scores, expected, name="scores", rtol=RTOL, atol=ATOL)

    loss, grads = as_tuple(net.loss(X, y), name="loss(X, y)'s return value (loss, grads)", length=2)
    loss = as_float(loss, name="loss(X, y)'s loss")
    grads = as_dict(grads, name="loss(X, y)'s grads", keys=PARAM_NAMES)
    ref_loss, ref_grads = ref_net.loss(X, y)
    assert_close(loss, np.float64(ref_loss), name=f"loss (reg={reg})", rtol=RTOL, atol=ATOL)
    for name in PARAM_NAMES:
        assert_close(grads[name], ref_grads[name], name=f"grads['{name}'] (reg={reg})", rtol=RTOL, atol=ATOL)

    for name in PARAM_NAMES:

        def f(value, name=name):
            ref_net.params[name] = value
            return ref_net.loss(X, y)[0]

        num = numerical_gradient(f, params[name].copy())
        ref_net.params[name] = params[name].copy()
        assert_close(
            grads[name], num, name=f"grads['{name}'] (reg={reg}, numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL
        )


@pytest.mark.two_layer_net_loss
def test_two_layer_net_solver_accuracy(student, reference, cifar, seed, secret_rng,
                                       reference_memo):
    X_train = cifar["X_train"][:TRAIN_ROWS]
    y_train = cifar["y_train"][:TRAIN_ROWS]
    # The Solver's own validation rows (it keeps the best parameters on them) come
    # from the training split; the accuracy is measured here, on rows drawn per
    # seed from the validation and test splits, which the worker never gets.
    X_val = cifar["X_train"][TRAIN_ROWS:TRAIN_ROWS + VAL_ROWS]
    y_val = cifar["y_train"][TRAIN_ROWS:TRAIN_ROWS + VAL_ROWS]
    # secret_rng: the worker knows the test's seed, so the rows must not follow from it
    X_eval, y_eval = held_out(cifar, secret_rng, EVAL_ROWS)
    d = X_train.shape[1]
    h = NET["hidden_dim"]
    c = int(max(y_train.max(), y_eval.max())) + 1
    init_rng = np.random.default_rng(seed)
    params = {
        "W1": NET["weight_scale"] * init_rng.standard_normal((d, h)),
        "b1": np.zeros(h),
        "W2": NET["weight_scale"] * init_rng.standard_normal((h, c)),
        "b2": np.zeros(c),
    }
    shapes = {k: v.shape for k, v in params.items()}
    data = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}

    def held_out_accuracy(trained: dict) -> float:
        """The reference network with these parameters, scored here on the held-out rows."""
        return accuracy(_reference_net(reference, trained, d, h, c, NET["reg"]).loss(X_eval), y_eval)

    def train_reference() -> dict:
        saved = np.random.get_state()
        np.random.seed(seed % 2**32)  # the worker's global RNG starts from the same seed
        try:
            ref_net = _reference_net(reference, params, d, h, c, NET["reg"])
            ref_solver = reference.solver.Solver(ref_net, data, **SOLVER)
            ref_solver.train()
            return {"acc": held_out_accuracy(ref_net.params)}
        finally:
            np.random.set_state(saved)

    ref_acc = reference_memo(train_reference, net=NET, solver=SOLVER, rows=TRAIN_ROWS,
                             eval=EVAL_ROWS, eval_rng="secret")["acc"]

    net = _student_net(student, params, d, h, c, NET["reg"])
    solver = student.lib.solver.Solver(net, student.put(data), **SOLVER)
    solver.train()
    acc = held_out_accuracy(fetch_params(net.params.get(), shapes, "net.params after training"))
    need = max(ref_acc - ACC_MARGIN, ACC_FLOOR)
    assert acc >= need, (
        f"TwoLayerNet trained with your Solver ({SOLVER['num_epochs']} epochs, {len(y_train)} images): "
        f"its trained parameters classify {acc:.3f} of {len(y_eval)} held-out images correctly; "
        f"need >= {need:.3f} (the reference trained the same way reaches {ref_acc:.3f})"
    )
