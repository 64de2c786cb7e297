"""Self-checks for Assignment 1: run them with ``python submit.py check``.

Provided, not graded. Every check is named by the task id the autograder
uses (the same id as in your ``NotImplementedError`` stubs and in your score
report) and tests laws that any correct solution obeys, without knowing the
reference solution: numerical gradients (central differences, float64) match
your analytic ones, naive and vectorized versions agree, outputs have the
documented shapes, losses have their known values at simple points. Passing
them is necessary, not sufficient: the autograder also compares your outputs
with the reference on fresh random inputs and times the vectorized code.

Each check runs with a fixed seed, printed in the report, so a failure can be
replayed with ``python submit.py check TASK --seed N``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from .selfcheck_utils import Check, CheckFailed, Outcome, registrar, run
from .selfcheck_utils import close as _close
from .selfcheck_utils import expect as _expect
from .selfcheck_utils import near as _near
from .selfcheck_utils import shape as _shape

__all__ = ["CHECKS", "CheckFailed", "Outcome", "run_checks"]

CHECKS: dict[str, Check] = {}
_check = registrar(CHECKS)


# -- k-nearest neighbours ------------------------------------------------------

def _knn(rng: np.random.Generator, method: str) -> None:
    from .classifiers import KNearestNeighbor

    X_train = rng.standard_normal((12, 7))
    X_test = np.vstack([X_train[:3], rng.standard_normal((5, 7))])
    knn = KNearestNeighbor()
    knn.train(X_train, np.arange(12) % 3)
    d = getattr(knn, method)(X_test)
    _shape(f"{method}(X) with 8 test and 12 training points", d, (8, 12))
    _expect(bool(np.all(d >= 0)), f"{method}: negative distances")
    _near(f"{method}: distance of a test point to its own copy in the training set",
          np.diag(d[:3, :3]), np.zeros(3), atol=1e-5)
    knn.train(X_test, np.zeros(8))
    square = getattr(knn, method)(X_test)
    _near(f"{method}: symmetry d(a, b) = d(b, a)", square, square.T, atol=1e-8)
    one = rng.standard_normal((1, 7))
    knn.train(one + 3.0, np.zeros(1))
    d_shift = getattr(knn, method)(one)
    _close(f"{method}: distance between x and x + 3 (all 7 coordinates)", d_shift,
           np.full((1, 1), 3.0 * np.sqrt(7)), tol=1e-8)


@_check("knn_two_loops")
def _knn_two(rng: np.random.Generator) -> None:
    _knn(rng, "compute_distances_two_loops")


@_check("knn_one_loop")
def _knn_one(rng: np.random.Generator) -> None:
    _knn(rng, "compute_distances_one_loop")


@_check("knn_no_loops")
def _knn_none(rng: np.random.Generator) -> None:
    _knn(rng, "compute_distances_no_loops")


@_check("knn_predict_labels")
def _knn_vote(rng: np.random.Generator) -> None:
    from .classifiers import KNearestNeighbor

    knn = KNearestNeighbor()
    knn.train(np.zeros((4, 2)), np.array([2, 1, 1, 0]))
    dists = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    _close("predict_labels(k=1)", knn.predict_labels(dists, k=1), [2, 0])
    _close("predict_labels(k=3) (majority of 2, 1, 1)", knn.predict_labels(dists, k=3), [1, 1])
    tie = np.array([[0.0, 1.0, 5.0, 5.0]])
    _close("predict_labels(k=2) with a tie between labels 2 and 1 (the smaller wins)",
           knn.predict_labels(tie, k=2), [1])


# -- linear classifiers -----------------------------------------------------------

def _linear_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    W = 0.01 * rng.standard_normal((6, 4))
    X = rng.standard_normal((9, 6))
    y = rng.integers(0, 4, size=9)
    return W, X, y


def _grad_law(name: str, loss_fn: Callable[..., tuple[float, np.ndarray]],
              rng: np.random.Generator, reg: float) -> None:
    W, X, y = _linear_inputs(rng)
    loss, dW = loss_fn(W, X, y, reg)
    _shape(f"{name}: dW", dW, W.shape)
    num = eval_numerical_gradient(lambda w: loss_fn(w, X, y, reg)[0], W.copy(), verbose=False)
    _close(f"{name}: dW vs the numerical gradient (reg={reg})", dW, num, tol=1e-6)


@_check("svm_loss_naive")
def _svm_naive(rng: np.random.Generator) -> None:
    from .classifiers import svm_loss_naive

    W, X, y = _linear_inputs(rng)
    loss, _ = svm_loss_naive(np.zeros_like(W), X, y, 0.0)
    _close("svm_loss_naive at W = 0 (every margin is 1: loss = C - 1 = 3)", loss, 3.0, 1e-10)
    loss_reg, _ = svm_loss_naive(np.ones_like(W), np.zeros_like(X), y, 0.5)
    _close("svm_loss_naive at X = 0, W = 1, reg = 0.5 (3 + reg * sum(W**2) = 15)",
           loss_reg, 3.0 + 0.5 * W.size, 1e-10)
    # kink-free point for the gradient law: random W, not near margins of 0
    _grad_law("svm_loss_naive", svm_loss_naive, rng, 0.0)
    _grad_law("svm_loss_naive", svm_loss_naive, rng, 0.3)


def _agree(name: str, naive: Callable[..., Any], vectorized: Callable[..., Any],
           rng: np.random.Generator) -> None:
    for reg in (0.0, 0.7):
        W, X, y = _linear_inputs(rng)
        l1, g1 = naive(W, X, y, reg)
        l2, g2 = vectorized(W, X, y, reg)
        _close(f"{name}: loss vs the naive version (reg={reg})", l2, l1, 1e-9)
        _close(f"{name}: dW vs the naive version (reg={reg})", g2, g1, 1e-9)


@_check("svm_loss_vectorized")
def _svm_vec(rng: np.random.Generator) -> None:
    from .classifiers import svm_loss_naive, svm_loss_vectorized

    _grad_law("svm_loss_vectorized", svm_loss_vectorized, rng, 0.3)
    _agree("svm_loss_vectorized", svm_loss_naive, svm_loss_vectorized, rng)


@_check("softmax_loss_naive")
def _softmax_naive(rng: np.random.Generator) -> None:
    from .classifiers import softmax_loss_naive

    W, X, y = _linear_inputs(rng)
    loss, _ = softmax_loss_naive(np.zeros_like(W), X, y, 0.0)
    _close("softmax_loss_naive at W = 0 (uniform scores: loss = log C = log 4)", loss,
           np.log(4.0), 1e-10)
    _grad_law("softmax_loss_naive", softmax_loss_naive, rng, 0.0)
    _grad_law("softmax_loss_naive", softmax_loss_naive, rng, 0.3)


@_check("softmax_loss_vectorized")
def _softmax_vec(rng: np.random.Generator) -> None:
    from .classifiers import softmax_loss_naive, softmax_loss_vectorized

    _grad_law("softmax_loss_vectorized", softmax_loss_vectorized, rng, 0.3)
    _agree("softmax_loss_vectorized", softmax_loss_naive, softmax_loss_vectorized, rng)
    W, X, y = _linear_inputs(rng)
    X[:, -1] = 1.0  # a constant feature: its weights add the same amount to a row's scores
    W[-1, :] = 0.0
    loss, _ = softmax_loss_vectorized(W, X, y, 0.0)
    W[-1, :] = 1000.0  # every score about 1000, the differences unchanged
    big, _ = softmax_loss_vectorized(W, X, y, 0.0)
    _expect(bool(np.isfinite(big)), "softmax_loss_vectorized: loss is not finite for scores "
            "around 1000 (subtract each row's maximum score before exponentiating)")
    _close("softmax_loss_vectorized is unchanged when every score grows by 1000", big, loss, 1e-8)


def _blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = 4.0 * rng.standard_normal((3, 5))
    y = rng.integers(0, 3, size=300)
    return centers[y] + 0.3 * rng.standard_normal((300, 5)), y


@_check("linear_train")
def _train(rng: np.random.Generator) -> None:
    from .classifiers import LinearSVM, Softmax

    X, y = _blobs(rng)
    for cls in (LinearSVM, Softmax):
        model = cls()
        history = model.train(X, y, learning_rate=1e-2, reg=1e-4, num_iters=300,
                              batch_size=50)
        _expect(len(history) == 300, f"{cls.__name__}.train: returned {len(history)} losses "
                "for 300 iterations")
        _expect(history[-1] < history[0],
                f"{cls.__name__}.train: the loss did not decrease ({history[0]:.3g} -> "
                f"{history[-1]:.3g})")
        acc = float(np.mean(model.predict(X) == y))
        _expect(acc >= 0.9, f"{cls.__name__}: training accuracy {acc:.2f} < 0.90 on three "
                "well separated clusters")


@_check("linear_predict")
def _predict(rng: np.random.Generator) -> None:
    from .classifiers import LinearSVM

    model = LinearSVM()
    model.W = np.eye(3)
    X = np.array([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]])
    pred = model.predict(X)
    _shape("predict(X) for 2 examples", pred, (2,))
    _close("predict with W = identity (the largest coordinate wins)", pred, [1, 0], 1e-12)


# -- layers ---------------------------------------------------------------------------

@_check("affine_forward")
def _affine_fwd(rng: np.random.Generator) -> None:
    from .layers import affine_forward

    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((12, 5))
    out, _ = affine_forward(x, w, np.zeros(5))
    _shape("affine_forward out", out, (2, 5))
    out2, _ = affine_forward(2 * x, w, np.zeros(5))
    _close("affine_forward is linear in x when b = 0", out2, 2 * out, 1e-12)
    out3, _ = affine_forward(np.zeros_like(x), w, np.arange(5.0))
    _close("affine_forward with x = 0 gives b", out3, np.tile(np.arange(5.0), (2, 1)), 1e-12)


@_check("affine_backward")
def _affine_bwd(rng: np.random.Generator) -> None:
    from .layers import affine_backward, affine_forward

    x = rng.standard_normal((3, 2, 3))
    w = rng.standard_normal((6, 4))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((3, 4))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    _close("affine_backward dx", dx, eval_numerical_gradient_array(
        lambda v: affine_forward(v, w, b)[0], x.copy(), dout))
    _close("affine_backward dw", dw, eval_numerical_gradient_array(
        lambda v: affine_forward(x, v, b)[0], w.copy(), dout))
    _close("affine_backward db", db, eval_numerical_gradient_array(
        lambda v: affine_forward(x, w, v)[0], b.copy(), dout))


@_check("relu_forward")
def _relu_fwd(rng: np.random.Generator) -> None:
    from .layers import relu_forward

    x = rng.standard_normal((4, 5))
    out, _ = relu_forward(x)
    _shape("relu_forward out", out, x.shape)
    _close("relu_forward where x > 0", out[x > 0], x[x > 0], 1e-12)
    _close("relu_forward where x < 0", out[x < 0], np.zeros(int(np.sum(x < 0))), 1e-12)


@_check("relu_backward")
def _relu_bwd(rng: np.random.Generator) -> None:
    from .layers import relu_backward, relu_forward

    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink
    dout = rng.standard_normal((4, 5))
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    _close("relu_backward dx", dx, eval_numerical_gradient_array(
        lambda v: relu_forward(v)[0], x.copy(), dout))


def _loss_layer(name: str, fn: Callable[..., tuple[float, np.ndarray]], at_zero: float,
                rng: np.random.Generator) -> None:
    scores = rng.standard_normal((7, 5))
    y = rng.integers(0, 5, size=7)
    loss0, _ = fn(np.zeros((7, 5)), y)
    _close(f"{name} with all scores 0", loss0, at_zero, 1e-10)
    loss, dx = fn(scores, y)
    _close(f"{name} dx", dx, eval_numerical_gradient(lambda v: fn(v, y)[0], scores.copy(),
                                                     verbose=False))


@_check("svm_loss")
def _svm_layer(rng: np.random.Generator) -> None:
    from .layers import svm_loss

    _loss_layer("svm_loss", svm_loss, 4.0, rng)


@_check("softmax_loss")
def _softmax_layer(rng: np.random.Generator) -> None:
    from .layers import softmax_loss

    _loss_layer("softmax_loss", softmax_loss, float(np.log(5.0)), rng)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 5, size=6)
    loss, _ = softmax_loss(x, y)
    big, _ = softmax_loss(x + 1000.0, y)
    _expect(bool(np.isfinite(big)), "softmax_loss: loss is not finite for scores around 1000 "
            "(shift each row by its maximum score before exponentiating)")
    _close("softmax_loss is unchanged when every score grows by 1000", big, loss, 1e-8)


# -- two-layer net ----------------------------------------------------------------------

@_check("two_layer_net_init")
def _net_init(rng: np.random.Generator) -> None:
    from .classifiers import TwoLayerNet

    np.random.seed(int(rng.integers(2**31)))
    net = TwoLayerNet(input_dim=40, hidden_dim=30, num_classes=6, weight_scale=0.1)
    for key, shape in (("W1", (40, 30)), ("b1", (30,)), ("W2", (30, 6)), ("b2", (6,))):
        _expect(key in net.params, f"TwoLayerNet.params has no {key!r}")
        _shape(f"params[{key!r}]", net.params[key], shape)
    _close("params['b1'] (zeros)", net.params["b1"], np.zeros(30), 1e-12)
    std = float(np.std(net.params["W1"]))
    _expect(0.08 < std < 0.12, f"params['W1'] has standard deviation {std:.3f}, expected "
            "about weight_scale = 0.1")


@_check("two_layer_net_loss")
def _net_loss(rng: np.random.Generator) -> None:
    from .classifiers import TwoLayerNet

    net = TwoLayerNet(input_dim=5, hidden_dim=4, num_classes=3, weight_scale=0.5, reg=0.2)
    for key, value in net.params.items():
        net.params[key] = rng.standard_normal(np.shape(value))
    X = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, size=6)
    scores = net.loss(X)
    _shape("TwoLayerNet.loss(X) scores", scores, (6, 3))
    loss, grads = net.loss(X, y)
    for key in ("W1", "b1", "W2", "b2"):
        _expect(key in grads, f"TwoLayerNet.loss returned no gradient for {key!r}")

        def f(_: np.ndarray) -> float:
            return float(net.loss(X, y)[0])

        num = eval_numerical_gradient(f, net.params[key], verbose=False)
        _close(f"TwoLayerNet.loss gradient of {key} (reg=0.2)", grads[key], num, 1e-5)


# -- runner -----------------------------------------------------------------------------

def run_checks(tasks: list[str] | None = None, seed: int = 0) -> list[Outcome]:
    """Run the checks of ``tasks`` (default all), each with ``seed``; never raises."""
    return run(CHECKS, tasks, seed)
