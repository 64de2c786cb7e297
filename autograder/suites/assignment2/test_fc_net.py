"""Hidden tests of Assignment 2's FullyConnectedNet: initialization, loss and
gradients (plain, batch / layer normalization, dropout), and training with the
Solver (overfitting 50 examples; accuracy after a short run vs the reference).

The student's network gets the same parameters as the reference's
(``net.params.set``). Normalized networks compare test-mode scores after a
train-mode pass (the running averages must match too). Dropout masks depend on
how random numbers are drawn, so dropout networks are checked against central
differences of the student's OWN seeded loss and against the reference in test
mode, where dropout is off. The dtype goes to the worker by name ("float64").
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close, numerical_gradient
from autograder.evaluation import accuracy, fetch_params, held_out
from autograder.values import as_array, as_dict, as_float, as_object, as_tuple

RTOL = 1e-6
ATOL = 1e-9
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7

# (id, hidden_dims, input_dim, num_classes, normalization, weight_scale)
INIT_CASES = [
    ("plain", [30, 40], 500, 10, None, 1e-2),
    ("batchnorm", [50, 20, 30], 200, 7, "batchnorm", 5e-2),
    ("layernorm", [60], 300, 5, "layernorm", 1.0),
]

# (id, N, D, hidden_dims, C, normalization, reg)
LOSS_CASES = [
    ("plain_noreg", 5, 6, [7, 5], 4, None, 0.0),
    ("plain_reg", 4, 8, [6, 6, 5], 3, None, 3.14),
    ("batchnorm", 6, 5, [8, 7], 4, "batchnorm", 0.5),
    ("layernorm", 5, 6, [8, 6], 3, "layernorm", 0.7),
]

# Overfitting a small set and a short training run (the student's Solver).
OVERFIT = {"rows": 50, "hidden_dims": [100, 100], "weight_scale": 1e-2,
           "solver": {"update_rule": "sgd", "optim_config": {"learning_rate": 1e-2},
                      "num_epochs": 30, "batch_size": 25, "verbose": False}}
TRAIN_ROWS = 1000
VAL_ROWS = 500  # the Solver's validation rows (from the training split)
EVAL_ROWS = 500  # held-out rows drawn per seed from the validation + test splits
SHORT_NET = {"hidden_dims": [100, 50], "normalization": "batchnorm", "weight_scale": 1e-2, "reg": 1e-3}
SHORT_SOLVER = {"update_rule": "sgd", "optim_config": {"learning_rate": 1e-2}, "num_epochs": 3,
                "batch_size": 50, "num_train_samples": 500, "verbose": False}
ACC_MARGIN = 0.04
ACC_FLOOR = 0.20


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _param_names(n_layers: int, normalization: str | None) -> list[str]:
    names = []
    for i in range(1, n_layers + 1):
        names += [f"W{i}", f"b{i}"]
        if normalization is not None and i < n_layers:
            names += [f"gamma{i}", f"beta{i}"]
    return sorted(names)


def _random_params(rng, dims: list[int], normalization: str | None) -> dict[str, np.ndarray]:
    """Random weights AND biases (no unit sits exactly at a ReLU kink)."""
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = rng.standard_normal((dims[i - 1], dims[i])) / np.sqrt(dims[i - 1])
        params[f"b{i}"] = 0.2 * rng.standard_normal(dims[i])
        if normalization is not None and i < len(dims) - 1:
            params[f"gamma{i}"] = 1.0 + 0.3 * rng.standard_normal(dims[i])
            params[f"beta{i}"] = 0.3 * rng.standard_normal(dims[i])
    return params


@pytest.mark.fc_net_init
@pytest.mark.parametrize("case", INIT_CASES, ids=_ids(INIT_CASES))
def test_fc_net_init(student, case):
    _, hidden, d, c, norm, scale = case
    net = as_object(student.lib.classifiers.FullyConnectedNet(hidden, input_dim=d, num_classes=c,
                                                              normalization=norm, weight_scale=scale),
                    name="FullyConnectedNet(...)")
    n_layers = len(hidden) + 1
    expected = _param_names(n_layers, norm)
    params = as_dict(net.params.get(), name="net.params", keys=expected)
    dims = [d, *hidden, c]
    for i in range(1, n_layers + 1):
        w = as_array(params[f"W{i}"], name=f"W{i}", shape=(dims[i - 1], dims[i]), dtype="number")
        b = as_array(params[f"b{i}"], name=f"b{i}", shape=(dims[i],), dtype="number")
        assert w.dtype == np.float32, f"W{i} has dtype {w.dtype}; the default dtype is float32"
        assert np.all(b == 0), f"b{i} must be initialized to zeros"
        std = float(np.std(w.astype(np.float64)))
        assert abs(std - scale) <= 0.15 * scale, f"W{i} has standard deviation {std:.3g}, expected {scale:.3g}"
        if norm is not None and i < n_layers:
            gamma = as_array(params[f"gamma{i}"], name=f"gamma{i}", shape=(dims[i],))
            beta = as_array(params[f"beta{i}"], name=f"beta{i}", shape=(dims[i],))
            assert np.all(gamma == 1), f"gamma{i} must be initialized to ones"
            assert np.all(beta == 0), f"beta{i} must be initialized to zeros"


@pytest.mark.fc_net_loss
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_fc_net_loss_and_gradients(student, reference, rng, case):
    _, n, d, hidden, c, norm, reg = case
    params = _random_params(rng, [d, *hidden, c], norm)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    kwargs = {"input_dim": d, "num_classes": c, "normalization": norm, "reg": reg, "dtype": "float64"}

    net = as_object(student.lib.classifiers.FullyConnectedNet(hidden, **kwargs), name="FullyConnectedNet(...)")
    net.params.set({k: v.copy() for k, v in params.items()})
    ref_net = reference.classifiers.FullyConnectedNet(hidden, **kwargs)
    ref_net.params = {k: v.copy() for k, v in params.items()}

    loss, grads = as_tuple(net.loss(X, y), name="loss(X, y)'s return value (loss, grads)", length=2)
    loss = as_float(loss, name="loss(X, y)'s loss")
    grads = as_dict(grads, name="loss(X, y)'s grads", keys=params)
    ref_loss, ref_grads = ref_net.loss(X, y)
    assert_close(loss, np.float64(ref_loss), name=f"loss ({norm}, reg={reg})", rtol=RTOL, atol=ATOL)
    for name in sorted(params):
        assert_close(grads[name], ref_grads[name], name=f"grads['{name}'] ({norm}, reg={reg})", rtol=RTOL, atol=ATOL)

    # Test mode after one train-mode pass: batchnorm uses the running averages.
    expected = ref_net.loss(X)
    scores = as_array(net.loss(X), name="loss(X)'s return value (scores)", shape=expected.shape)
    assert_close(scores, expected, name=f"test-mode scores ({norm})", rtol=RTOL, atol=ATOL)

    for name in sorted(params):
        check = reference.classifiers.FullyConnectedNet(hidden, **kwargs)
        check.params = {k: v.copy() for k, v in params.items()}

        def f(value, name=name, check=check):
            check.params[name] = value
            return check.loss(X, y)[0]

        num = numerical_gradient(f, params[name].copy())
        assert_close(grads[name], num, name=f"grads['{name}'] ({norm}, reg={reg}, numerical gradient)",
                     rtol=NUM_RTOL, atol=NUM_ATOL)


@pytest.mark.fc_net_loss
@pytest.mark.parametrize("norm", [None, "batchnorm"])
def test_fc_net_dropout(student, reference, rng, seed, norm):
    """Seeded dropout: deterministic loss, gradients = central differences of the student's own loss."""
    n, d, hidden, c, keep = 6, 5, [9, 8], 3, 0.75
    params = _random_params(rng, [d, *hidden, c], norm)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    kwargs = {"input_dim": d, "num_classes": c, "normalization": norm, "reg": 0.1, "dtype": "float64",
              "dropout_keep_ratio": keep, "seed": seed % 2**31}
    net = as_object(student.lib.classifiers.FullyConnectedNet(hidden, **kwargs), name="FullyConnectedNet(...)")
    net.params.set({k: v.copy() for k, v in params.items()})
    stored_X, stored_y = student.put(X), student.put(y)

    def loss_and_grads():
        loss, grads = as_tuple(net.loss(stored_X, stored_y), name="loss(X, y)'s return value (loss, grads)",
                               length=2)
        return as_float(loss, name="loss(X, y)'s loss"), as_dict(grads, name="loss(X, y)'s grads", keys=params)

    loss, grads = loss_and_grads()
    loss2, _ = loss_and_grads()
    assert_close(loss2, loss, name="loss of a second call with the same seed (dropout seeded)", rtol=1e-12, atol=0)

    for name in ("W1", "b1", "W3"):
        def f(value, name=name):
            current = {k: v.copy() for k, v in params.items()}
            current[name] = value.copy()
            net.params.set(current)
            return loss_and_grads()[0]

        num = numerical_gradient(f, params[name].copy())
        assert_close(grads[name], num, name=f"grads['{name}'] (dropout p={keep}, numerical gradient of your loss)",
                     rtol=NUM_RTOL, atol=NUM_ATOL)

    # Test mode: dropout off, the same scores as the reference without dropout.
    net.params.set({k: v.copy() for k, v in params.items()})
    ref_kwargs = {k: v for k, v in kwargs.items() if k not in ("dropout_keep_ratio", "seed")}
    ref_net = reference.classifiers.FullyConnectedNet(hidden, **ref_kwargs)
    ref_net.params = {k: v.copy() for k, v in params.items()}
    if norm == "batchnorm":  # the same running averages on both sides
        net.bn_params.set([{"mode": "test", "running_mean": np.zeros(h), "running_var": np.ones(h)}
                           for h in hidden])
        ref_net.bn_params = [{"mode": "test", "running_mean": np.zeros(h), "running_var": np.ones(h)}
                             for h in hidden]
    scores = as_array(net.loss(stored_X), name="loss(X)'s return value (scores, test mode)")
    assert_close(scores, ref_net.loss(X), name=f"test-mode scores with dropout p={keep} (dropout is off at test time)",
                 rtol=RTOL, atol=ATOL)


def _fc_shapes(dims: list[int], normalized: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, len(dims)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (dims[i - 1], dims[i]), (dims[i],)
        if normalized and i < len(dims) - 1:
            shapes[f"gamma{i}"], shapes[f"beta{i}"] = (dims[i],), (dims[i],)
    return shapes


def _trained_reference_net(reference, net, dims: list[int], kwargs: dict):
    """The reference FullyConnectedNet holding the student's trained parameters (and running
    averages), fetched as plain arrays and validated: the grader scores it itself."""
    normalized = kwargs.get("normalization") is not None
    ref_net = reference.classifiers.FullyConnectedNet(dims[1:-1], **kwargs)
    ref_net.params = fetch_params(net.params.get(), _fc_shapes(dims, normalized),
                                  "net.params after training")
    if kwargs.get("normalization") == "batchnorm":
        stats = net.bn_params.get()
        assert isinstance(stats, list) and len(stats) == len(dims) - 2, (
            f"net.bn_params must be a list of {len(dims) - 2} dicts after training")
        for i, layer in enumerate(stats):
            shape = (dims[i + 1],)
            ref_net.bn_params[i] = {
                "mode": "test",
                "running_mean": fetch_params(layer, {"running_mean": shape},
                                             f"net.bn_params[{i}]")["running_mean"],
                "running_var": fetch_params(layer, {"running_var": shape},
                                            f"net.bn_params[{i}]")["running_var"],
            }
    return ref_net


@pytest.mark.fc_net_loss
def test_fc_net_overfits_small_data(student, reference, cifar):
    X = cifar["X_train"][: OVERFIT["rows"]]
    y = cifar["y_train"][: OVERFIT["rows"]]
    c = int(cifar["y_train"].max()) + 1
    # The Solver keeps the parameters that do best on its validation data: here
    # the training rows themselves, so what it keeps is its best fit of them.
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    kwargs = {"input_dim": X.shape[1], "num_classes": c, "weight_scale": OVERFIT["weight_scale"],
              "dtype": "float64"}
    net = student.lib.classifiers.FullyConnectedNet(OVERFIT["hidden_dims"], **kwargs)
    solver = student.lib.solver.Solver(net, student.put(data), **OVERFIT["solver"])
    solver.train()
    dims = [X.shape[1], *OVERFIT["hidden_dims"], c]
    kwargs["dtype"] = np.float64
    acc = accuracy(_trained_reference_net(reference, net, dims, kwargs).loss(X), y)
    assert acc == 1.0, (
        f"a {len(OVERFIT['hidden_dims']) + 1}-layer net trained with your Solver on {len(y)} examples "
        f"({OVERFIT['solver']}): its trained parameters classify {acc:.3f} of them correctly; a correct "
        "network overfits them (100%)"
    )


@pytest.mark.fc_net_loss
def test_fc_net_short_training_accuracy(student, reference, cifar, seed, secret_rng,
                                        reference_memo):
    X_train, y_train = cifar["X_train"][:TRAIN_ROWS], cifar["y_train"][:TRAIN_ROWS]
    # The Solver's validation rows come from the training split; the accuracy is
    # measured here on rows drawn per seed from the validation and test splits.
    X_val = cifar["X_train"][TRAIN_ROWS:TRAIN_ROWS + VAL_ROWS]
    y_val = cifar["y_train"][TRAIN_ROWS:TRAIN_ROWS + VAL_ROWS]
    # secret_rng: the worker knows the test's seed, so the rows must not follow from it
    X_eval, y_eval = held_out(cifar, secret_rng, EVAL_ROWS)
    d = X_train.shape[1]
    c = int(max(y_train.max(), y_eval.max())) + 1
    dims = [d, *SHORT_NET["hidden_dims"], c]
    init = np.random.default_rng(seed)
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = SHORT_NET["weight_scale"] * init.standard_normal((dims[i - 1], dims[i]))
        params[f"b{i}"] = np.zeros(dims[i])
        if i < len(dims) - 1:
            params[f"gamma{i}"] = np.ones(dims[i])
            params[f"beta{i}"] = np.zeros(dims[i])
    kwargs = {"input_dim": d, "num_classes": c, "normalization": SHORT_NET["normalization"],
              "reg": SHORT_NET["reg"], "dtype": "float64"}
    data = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}

    def train_reference() -> dict:
        saved = np.random.get_state()
        np.random.seed(seed % 2**32)
        try:
            ref_net = reference.classifiers.FullyConnectedNet(SHORT_NET["hidden_dims"], **kwargs)
            ref_net.params = {k: v.copy() for k, v in params.items()}
            ref_solver = reference.solver.Solver(ref_net, data, **SHORT_SOLVER)
            ref_solver.train()
            return {"acc": accuracy(ref_net.loss(X_eval), y_eval)}
        finally:
            np.random.set_state(saved)

    ref_acc = reference_memo(train_reference, net=SHORT_NET, solver=SHORT_SOLVER, rows=TRAIN_ROWS,
                             eval=EVAL_ROWS, eval_rng="secret")["acc"]

    net = student.lib.classifiers.FullyConnectedNet(SHORT_NET["hidden_dims"], **kwargs)
    net.params.set({k: v.copy() for k, v in params.items()})
    solver = student.lib.solver.Solver(net, student.put(data), **SHORT_SOLVER)
    solver.train()
    acc = accuracy(_trained_reference_net(reference, net, dims, kwargs).loss(X_eval), y_eval)
    need = max(ref_acc - ACC_MARGIN, ACC_FLOOR)
    assert acc >= need, (
        f"FullyConnectedNet {SHORT_NET} trained with {SHORT_SOLVER} on {len(y_train)} images: its "
        f"trained parameters and running averages classify {acc:.3f} of {len(y_eval)} held-out "
        f"images correctly; need >= {need:.3f} (the reference trained the same way reaches {ref_acc:.3f})"
    )
