"""Hidden tests of Assignment 2's ThreeLayerConvNet (classifiers/cnn.py).

The network is built with the layer_utils sandwich layers, whose convolution
and pooling are the naive ones unless switched: these tests never need the
Cython extension. Initialization is checked for shapes, dtypes and scales;
then the student's network gets the reference's parameters
(``net.params.set``) and its scores, loss and gradients are compared with the
reference's and with central differences of the reference's loss, on tiny
float64 inputs; finally a few SGD-with-momentum steps (run by the grader, the
student's network computing loss and gradients) must overfit a handful of
examples.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder import evaluation
from autograder.checks import assert_close, numerical_gradient
from autograder.values import as_array, as_dict, as_float, as_object, as_tuple

RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")

# (id, input_dim, num_filters, filter_size, hidden_dim, num_classes, weight_scale, dtype)
INIT_CASES = [
    ("defaults_float32", (3, 32, 32), 32, 7, 100, 10, 1e-3, "float32"),
    ("small_float64", (2, 10, 12), 6, 3, 20, 5, 1e-2, "float64"),
    ("odd_input_5x5", (3, 9, 7), 8, 5, 30, 4, 0.5, "float64"),
]

# (id, N, input_dim, num_filters, filter_size, hidden_dim, num_classes, reg)
LOSS_CASES = [
    ("tiny_noreg", 2, (3, 8, 8), 3, 3, 7, 4, 0.0),
    ("tiny_reg", 3, (2, 6, 8), 2, 3, 5, 3, 0.5),
    ("odd_input_reg", 2, (1, 7, 5), 2, 5, 4, 3, 1.3),
]

# Overfitting: N examples, SGD with momentum, run by the grader.
OVERFIT = {"N": 10, "input_dim": (3, 12, 12), "num_filters": 8, "filter_size": 3,
           "hidden_dim": 40, "num_classes": 10, "weight_scale": 5e-2}
OVERFIT_STEPS = 60
OVERFIT_LR = 0.05
OVERFIT_MOMENTUM = 0.9
OVERFIT_ACCURACY = 0.9  # training accuracy on the N examples (the reference reaches 1.0)


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _convnet(lib, **kw):
    return lib.classifiers.cnn.ThreeLayerConvNet(**kw)


@pytest.mark.three_layer_convnet
@pytest.mark.parametrize("case", INIT_CASES, ids=_ids(INIT_CASES))
def test_three_layer_convnet_init(student, case):
    _, input_dim, F, fs, hidden, classes, scale, dtype = case
    net = as_object(_convnet(student.lib, input_dim=input_dim, num_filters=F, filter_size=fs,
                             hidden_dim=hidden, num_classes=classes, weight_scale=scale,
                             dtype=dtype), name="ThreeLayerConvNet(...)")
    C, H, W = input_dim
    shapes = {"W1": (F, C, fs, fs), "b1": (F,), "W2": (F * (H // 2) * (W // 2), hidden),
              "b2": (hidden,), "W3": (hidden, classes), "b3": (classes,)}
    params = as_dict(net.params.get(), name="net.params", keys=shapes)
    for name, shape in shapes.items():
        value = as_array(params[name], name=f"params['{name}']", shape=shape, dtype="number")
        assert value.dtype == np.dtype(dtype), (
            f"params['{name}'] has dtype {value.dtype}, expected {dtype}")
        if name.startswith("b"):
            assert np.all(value == 0), f"params['{name}'] must start at zero"
        else:
            std = float(np.std(value.astype(np.float64)))
            assert abs(std - scale) <= 0.25 * scale, (
                f"params['{name}'] {shape}: standard deviation {std:.3g}, expected about "
                f"weight_scale = {scale:g}")


def _loss_setup(rng, case):
    _, N, input_dim, F, fs, hidden, classes, reg = case
    C, H, W = input_dim
    params = {
        "W1": 0.3 * rng.standard_normal((F, C, fs, fs)), "b1": 0.1 * rng.standard_normal(F),
        "W2": 0.3 * rng.standard_normal((F * (H // 2) * (W // 2), hidden)),
        "b2": 0.1 * rng.standard_normal(hidden),
        "W3": 0.3 * rng.standard_normal((hidden, classes)),
        "b3": 0.1 * rng.standard_normal(classes),
    }
    X = rng.standard_normal((N, C, H, W))
    y = rng.integers(0, classes, size=N)
    kw = dict(input_dim=input_dim, num_filters=F, filter_size=fs, hidden_dim=hidden,
              num_classes=classes, weight_scale=1e-2, reg=reg, dtype="float64")
    return params, X, y, kw


@pytest.mark.three_layer_convnet
@pytest.mark.parametrize("case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_three_layer_convnet_scores_loss_and_gradients(student, reference, rng, case):
    params, X, y, kw = _loss_setup(rng, case)
    reg = kw["reg"]
    net = as_object(_convnet(student.lib, **kw), name="ThreeLayerConvNet(...)")
    net.params.set({k: v.copy() for k, v in params.items()})
    ref_net = _convnet(reference, **kw)
    ref_net.params = {k: v.copy() for k, v in params.items()}

    expected = ref_net.loss(X)
    scores = as_array(net.loss(X), name="loss(X)'s return value (scores)", shape=expected.shape)
    assert_close(scores, expected, name=f"scores (X {X.shape})", rtol=RTOL, atol=ATOL)

    loss, grads = as_tuple(net.loss(X, y), name="loss(X, y)'s return value (loss, grads)", length=2)
    loss = as_float(loss, name="loss(X, y)'s loss")
    grads = as_dict(grads, name="loss(X, y)'s grads", keys=PARAM_NAMES)
    ref_loss, ref_grads = ref_net.loss(X, y)
    assert_close(loss, np.float64(ref_loss), name=f"loss (reg={reg})", rtol=RTOL, atol=ATOL)
    for name in PARAM_NAMES:
        assert_close(grads[name], ref_grads[name], name=f"grads['{name}'] (reg={reg})",
                     rtol=RTOL, atol=ATOL)
    for name in ("W1", "b1", "b3"):  # the cheap ones; the others follow from the reference

        def f(value, name=name):
            ref_net.params[name] = value
            return ref_net.loss(X, y)[0]

        num = numerical_gradient(f, params[name].copy())
        ref_net.params[name] = params[name].copy()
        assert_close(grads[name], num, name=f"grads['{name}'] (reg={reg}, numerical gradient)",
                     rtol=NUM_RTOL, atol=NUM_ATOL)


@pytest.mark.three_layer_convnet
def test_three_layer_convnet_overfits_small_data(student, reference, rng):
    cfg = dict(OVERFIT)
    n = cfg.pop("N")
    C, H, W = cfg["input_dim"]
    X = rng.standard_normal((n, C, H, W))
    y = rng.integers(0, cfg["num_classes"], size=n)
    net = as_object(_convnet(student.lib, **cfg, reg=0.0, dtype="float64"), name="ThreeLayerConvNet(...)")
    init = {k: 0.0 if k.startswith("b") else cfg["weight_scale"] for k in PARAM_NAMES}
    # the student's initialization, checked for its keys and shapes only here
    params = as_dict(net.params.get(), name="net.params", keys=PARAM_NAMES)
    params = {k: as_array(v, name=f"params['{k}']", dtype="number") for k, v in params.items()}
    params = {k: (init[k] * rng.standard_normal(v.shape) if init[k] else
                  np.zeros(v.shape)) for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    X_ref = student.put(X)
    y_ref = student.put(y)
    first = None
    for _ in range(OVERFIT_STEPS):
        net.params.set(params)
        loss, grads = as_tuple(net.loss(X_ref, y_ref), name="loss(X, y)'s return value (loss, grads)",
                               length=2)
        loss = as_float(loss, name="loss(X, y)'s loss")
        grads = as_dict(grads, name="loss(X, y)'s grads", keys=PARAM_NAMES)
        first = loss if first is None else first
        for k in params:
            grad = as_array(grads[k], name=f"grads['{k}']", shape=params[k].shape)
            velocity[k] = OVERFIT_MOMENTUM * velocity[k] - OVERFIT_LR * grad
            params[k] = params[k] + velocity[k]
    # The parameters the student's gradients led to are the grader's own: the
    # reference network scores them (the worker never reports an accuracy).
    ref_net = _convnet(reference, **cfg, reg=0.0, dtype=np.float64)
    ref_net.params = params
    accuracy = evaluation.accuracy(ref_net.loss(X), y)
    assert accuracy >= OVERFIT_ACCURACY, (
        f"after {OVERFIT_STEPS} steps of SGD with momentum (learning rate {OVERFIT_LR:g}) on "
        f"{n} examples {X.shape[1:]}, your network's training accuracy is {accuracy:.2f} "
        f"(loss {first:.3g} at the start, {float(loss):.3g} at the end); at least "
        f"{OVERFIT_ACCURACY:g} is expected (the reference reaches 1.0)")
