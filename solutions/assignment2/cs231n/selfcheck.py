"""Self-checks for Assignment 2: run them with ``python submit.py check``.

Provided, not graded. Every check is named by the task id the autograder
uses (the same id as in your ``NotImplementedError`` stubs and in your score
report) and tests laws that any correct solution obeys, without knowing the
reference solution: numerical gradients (central differences, float64) match
your analytic ones, the two batchnorm backward passes agree, train and test
modes behave as documented, optimizers take their known first steps, fast
layers agree with naive ones, outputs have the documented shapes. Passing
them is necessary, not sufficient: the autograder also compares your outputs
with the reference on fresh random inputs.

The checks of the fast layers need the compiled extension (``python
build_ext.py``); the PyTorch checks need torch (``pip install torch==2.13.0``).

Each check runs with a fixed seed, printed in the report, so a failure can be
replayed with ``python submit.py check TASK --seed N``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from .selfcheck_utils import GRAD_TOL, Check, CheckFailed, Outcome, registrar, run
from .selfcheck_utils import close as _close
from .selfcheck_utils import expect as _expect
from .selfcheck_utils import near as _near
from .selfcheck_utils import shape as _shape

__all__ = ["CHECKS", "CheckFailed", "Outcome", "run_checks"]

CHECKS: dict[str, Check] = {}
_check = registrar(CHECKS)
HERE = Path(__file__).resolve().parent


def _close_grad(name: str, actual: Any, expected: Any, tol: float) -> None:
    """Like _close, but entries that are about zero in both (|a| + |e| < 1e-3, as for a bias
    feeding batchnorm) are compared absolutely: their relative error is only rounding."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    _expect(a.shape == e.shape, f"{name}: shape {a.shape}, expected {e.shape}")
    err = float(np.max(np.abs(a - e) / np.maximum(1e-3, np.abs(a) + np.abs(e)))) if a.size else 0.0
    _expect(err <= tol, f"{name}: relative error {err:.2e} > tolerance {tol:.0e}")


def _grads(name: str, forward: Callable[..., tuple[np.ndarray, Any]],
           backward: Callable[[np.ndarray, Any], Any], args: list[Any], names: Sequence[str],
           rng: np.random.Generator, tol: float = GRAD_TOL) -> None:
    """Check backward(dout, cache) against numerical gradients of forward(*args) for the
    first len(names) arguments (backward returns them in that order)."""
    out, cache = forward(*args)
    dout = rng.standard_normal(np.shape(out))
    got = backward(dout, cache)
    if len(names) == 1:
        got = (got,)
    _expect(isinstance(got, tuple) and len(got) >= len(names),
            f"{name}: backward should return {len(names)} gradients ({', '.join(names)})")
    for k, label in enumerate(names):
        num = eval_numerical_gradient_array(lambda _: forward(*args)[0], args[k], dout)
        _close(f"{name}: gradient {label}", got[k], num, tol)


def _compiled() -> None:
    """Raise (reported as TODO) when the Cython extension is not built."""
    from . import fast_layers

    if fast_layers._IMPORT_ERROR is not None:
        raise NotImplementedError("the Cython extension is not compiled: run python build_ext.py "
                                  "in the folder that holds cs231n, then check again")


# -- affine, ReLU, softmax ------------------------------------------------------------

@_check("affine_relu")
def _affine_relu(rng: np.random.Generator) -> None:
    from .layers import affine_backward, affine_forward, relu_backward, relu_forward

    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    out, _ = affine_forward(x, w, b)
    expected = np.einsum("nd,dm->nm", x.reshape(4, 6), w) + b[None, :]
    _close("affine_forward on (4, 2, 3) inputs", out, expected, 1e-10)
    _grads("affine_backward", affine_forward, affine_backward, [x, w, b], ("dx", "dw", "db"), rng)
    z = rng.standard_normal((5, 7))
    z[np.abs(z) < 0.05] = 0.5  # stay away from the kink
    relu_out, _ = relu_forward(z)
    _close("relu_forward", relu_out, np.where(z > 0, z, 0.0), 1e-12)
    _grads("relu_backward", relu_forward, relu_backward, [z], ("dx",), rng)


@_check("softmax_loss")
def _softmax(rng: np.random.Generator) -> None:
    from .layers import softmax_loss

    y = rng.integers(0, 6, size=8)
    loss, dx = softmax_loss(np.zeros((8, 6)), y)
    _close("softmax_loss of all-zero scores (log of 6 classes)", loss, np.log(6.0), 1e-8)
    x = rng.standard_normal((8, 6))
    loss, dx = softmax_loss(x, y)
    _shape("softmax_loss dx", dx, x.shape)
    num = eval_numerical_gradient(lambda _: float(softmax_loss(x, y)[0]), x, verbose=False)
    _close("softmax_loss gradient", dx, num, 1e-7)
    _near("softmax_loss: rows of dx sum to 0", dx.sum(axis=1), np.zeros(8), 1e-10)
    shifted, _ = softmax_loss(x + 1000.0, y)
    _expect(bool(np.isfinite(shifted)), "softmax_loss: loss is not finite for scores around 1000 "
            "(shift each row by its maximum score before exponentiating)")
    _close("softmax_loss is unchanged (and finite) when every score grows by 1000", shifted, loss,
           1e-8)


# -- normalization -----------------------------------------------------------------------

@_check("batchnorm_forward")
def _bn_forward(rng: np.random.Generator) -> None:
    from .layers import batchnorm_forward

    x = 3.0 + 2.0 * rng.standard_normal((200, 4))
    gamma, beta = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.0, -1.0, 4.0, 2.0])
    bn_param: dict[str, Any] = {"mode": "train", "momentum": 0.8}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    _shape("batchnorm_forward output", out, x.shape)
    _near("batchnorm_forward (train): per-feature mean of the output is beta", out.mean(axis=0),
          beta, 1e-8)
    _near("batchnorm_forward (train): per-feature std of the output is gamma", out.std(axis=0),
          gamma, 1e-3)
    mu, var = x.mean(axis=0), x.var(axis=0)
    _close("bn_param['running_mean'] after one step from zeros (momentum 0.8)",
           bn_param.get("running_mean"), 0.2 * mu, 1e-8)
    _close("bn_param['running_var'] after one step from zeros (momentum 0.8)",
           bn_param.get("running_var"), 0.2 * var, 1e-8)
    stats = {"mode": "test", "running_mean": mu.copy(), "running_var": var.copy(), "eps": 1e-5}
    z = rng.standard_normal((5, 4))
    test_out, _ = batchnorm_forward(z, gamma, beta, stats)
    expected = gamma * ((z - mu) / np.sqrt(var + 1e-5)) + beta
    _close("batchnorm_forward (test) normalizes with the running statistics", test_out, expected,
           1e-8)
    _close("batchnorm_forward (test) leaves running_mean alone", stats["running_mean"], mu, 1e-12)


def _bn_inputs(rng: np.random.Generator) -> list[Any]:
    return [1.5 * rng.standard_normal((6, 5)) + 0.3, rng.standard_normal(5),
            rng.standard_normal(5), {"mode": "train"}]


@_check("batchnorm_backward")
def _bn_backward(rng: np.random.Generator) -> None:
    from .layers import batchnorm_backward, batchnorm_forward

    _grads("batchnorm_backward", batchnorm_forward, batchnorm_backward, _bn_inputs(rng),
           ("dx", "dgamma", "dbeta"), rng, 1e-5)


@_check("batchnorm_backward_alt")
def _bn_alt(rng: np.random.Generator) -> None:
    from .layers import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

    args = _bn_inputs(rng)
    _grads("batchnorm_backward_alt", batchnorm_forward, batchnorm_backward_alt, args,
           ("dx", "dgamma", "dbeta"), rng, 1e-5)
    _, cache = batchnorm_forward(*args)
    dout = rng.standard_normal(args[0].shape)
    for label, a, b in zip(("dx", "dgamma", "dbeta"), batchnorm_backward_alt(dout, cache),
                           batchnorm_backward(dout, cache), strict=True):
        _close(f"batchnorm_backward_alt == batchnorm_backward ({label})", a, b, 1e-8)


@_check("layernorm")
def _layernorm(rng: np.random.Generator) -> None:
    from .layers import layernorm_backward, layernorm_forward

    x = 5.0 + 3.0 * rng.standard_normal((4, 50))
    out, _ = layernorm_forward(x, np.ones(50), np.zeros(50), {})
    _near("layernorm_forward: every row has mean 0", out.mean(axis=1), np.zeros(4), 1e-8)
    _near("layernorm_forward: every row has std 1", out.std(axis=1), np.ones(4), 1e-4)
    args = [rng.standard_normal((4, 6)), rng.standard_normal(6), rng.standard_normal(6), {}]
    _grads("layernorm_backward", layernorm_forward, layernorm_backward, args,
           ("dx", "dgamma", "dbeta"), rng, 1e-5)


@_check("spatial_batchnorm")
def _spatial_bn(rng: np.random.Generator) -> None:
    from .layers import spatial_batchnorm_backward, spatial_batchnorm_forward

    x = 2.0 + 4.0 * rng.standard_normal((10, 3, 5, 5))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    bn_param: dict[str, Any] = {"mode": "train"}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    _shape("spatial_batchnorm_forward output", out, x.shape)
    _near("spatial_batchnorm_forward (train): per-channel mean is beta",
          out.mean(axis=(0, 2, 3)), beta, 1e-8)
    _near("spatial_batchnorm_forward (train): per-channel std is gamma",
          out.std(axis=(0, 2, 3)), gamma, 1e-3)
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    stats = {"mode": "test", "running_mean": mu, "running_var": var}
    z = rng.standard_normal((2, 3, 4, 4))
    test_out, _ = spatial_batchnorm_forward(z, gamma, beta, stats)
    c = (slice(None), None, None)
    _close("spatial_batchnorm_forward (test) uses the running statistics", test_out,
           gamma[c] * (z - mu[c]) / np.sqrt(var[c] + 1e-5) + beta[c], 1e-7)
    args = [rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(2), rng.standard_normal(2),
            {"mode": "train"}]
    _grads("spatial_batchnorm_backward", spatial_batchnorm_forward, spatial_batchnorm_backward,
           args, ("dx", "dgamma", "dbeta"), rng, 1e-5)


@_check("spatial_groupnorm")
def _groupnorm(rng: np.random.Generator) -> None:
    from .layers import spatial_groupnorm_backward, spatial_groupnorm_forward

    x = 3.0 + 2.0 * rng.standard_normal((2, 6, 5, 5))
    ones, zeros = np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1))
    out, _ = spatial_groupnorm_forward(x, ones, zeros, 3, {})
    _shape("spatial_groupnorm_forward output", out, x.shape)
    groups = out.reshape(2, 3, -1)
    _near("spatial_groupnorm_forward (G=3): every group of every example has mean 0",
          groups.mean(axis=2), np.zeros((2, 3)), 1e-8)
    _near("spatial_groupnorm_forward (G=3): every group of every example has std 1",
          groups.std(axis=2), np.ones((2, 3)), 1e-4)
    args = [rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((1, 4, 1, 1)),
            rng.standard_normal((1, 4, 1, 1)), 2, {}]
    _grads("spatial_groupnorm_backward", spatial_groupnorm_forward, spatial_groupnorm_backward,
           args, ("dx", "dgamma", "dbeta"), rng, 1e-5)


# -- dropout ---------------------------------------------------------------------------

@_check("dropout")
def _dropout(rng: np.random.Generator) -> None:
    from .layers import dropout_backward, dropout_forward

    x = 2.0 + rng.random((200, 500))
    out, _ = dropout_forward(x, {"mode": "test", "p": 0.3})
    _close("dropout_forward in test mode is the identity", out, x, 0.0)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 7})
    kept = float(np.mean(out != 0))
    _expect(abs(kept - 0.3) < 0.01,
            f"dropout_forward (train, p=0.3) kept {kept:.3f} of the units, expected about 0.3")
    _close("dropout_forward (train) keeps the mean (inverted dropout)", out.mean(), x.mean(), 1e-2)
    again, _ = dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 7})
    _close("dropout_forward with the same seed draws the same mask", again, out, 0.0)
    dx = dropout_backward(np.ones_like(x), cache)
    _close("dropout_backward of ones is out / x", dx, out / x, 1e-12)
    z = rng.standard_normal((6, 7))
    args = [z, {"mode": "train", "p": 0.6, "seed": 3}]
    _grads("dropout_backward (train)", dropout_forward, dropout_backward, args, ("dx",), rng)
    _, test_cache = dropout_forward(z, {"mode": "test", "p": 0.6})
    dout = rng.standard_normal(z.shape)
    _close("dropout_backward in test mode passes dout through", dropout_backward(dout, test_cache),
           dout, 0.0)


# -- convolution and pooling -------------------------------------------------------------

@_check("conv_forward_naive")
def _conv_forward(rng: np.random.Generator) -> None:
    from .layers import conv_forward_naive

    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((4, 3, 1, 1))
    b = rng.standard_normal(4)
    out, _ = conv_forward_naive(x, w, b, {"stride": 1, "pad": 0})
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x) + b[None, :, None, None]
    _close("conv_forward_naive with 1x1 filters (a per-pixel matrix product)", out, expected,
           1e-10)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    b = rng.standard_normal(2)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    _shape("conv_forward_naive (7x6 input, 3x3 filters, stride 2, pad 1)", out, (2, 2, 4, 3))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n, f, i, j in ((0, 0, 0, 0), (1, 1, 2, 1), (0, 1, 3, 2)):
        window = padded[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        _close(f"conv_forward_naive output[{n}, {f}, {i}, {j}] (one window by hand)",
               out[n, f, i, j], float(np.sum(window * w[f])) + b[f], 1e-10)


@_check("conv_backward_naive")
def _conv_backward(rng: np.random.Generator) -> None:
    from .layers import conv_backward_naive, conv_forward_naive

    args = [rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)),
            rng.standard_normal(3), {"stride": 2, "pad": 1}]
    _grads("conv_backward_naive", conv_forward_naive, conv_backward_naive, args,
           ("dx", "dw", "db"), rng, 1e-6)


_POOL_X = np.array([[1.0, 5.0, 2.0, 0.0, 9.0],
                    [3.0, 4.0, 8.0, 6.0, 7.0],
                    [0.0, 2.0, 1.0, 3.0, 4.0],
                    [9.0, 1.0, 5.0, 0.0, 2.0]])


def _pool_laws(name: str, forward: Callable[..., Any], backward: Callable[..., Any],
               rng: np.random.Generator) -> None:
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = _POOL_X[None, None].copy()
    out, cache = forward(x, param)
    _close(f"{name}: 2x2 pools, stride 2, of a 4x5 image (the last column is in no pool)",
           out, np.array([[[[5.0, 8.0], [9.0, 5.0]]]]), 0.0)
    dx = backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((1, 1, 4, 5))
    for (r, c), g in zip(((0, 1), (1, 2), (3, 0), (3, 2)), (1.0, 2.0, 3.0, 4.0), strict=True):
        expected[0, 0, r, c] = g
    _close(f"{name}: backward sends each pool's gradient to its maximum", dx, expected, 0.0)
    overlap = {"pool_height": 3, "pool_width": 2, "stride": 1}
    args = [rng.standard_normal((2, 3, 5, 4)), overlap]
    _grads(f"{name} (overlapping 3x2 pools, stride 1)", forward, backward, args, ("dx",), rng)


@_check("max_pool_naive")
def _max_pool(rng: np.random.Generator) -> None:
    from .layers import max_pool_backward_naive, max_pool_forward_naive

    _pool_laws("max_pool_naive", max_pool_forward_naive, max_pool_backward_naive, rng)


# -- fast layers (Cython) ------------------------------------------------------------------

def _im2col_expected(x: np.ndarray, fh: int, fw: int, pad: int, stride: int) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (fh, fw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]  # (N, C, H', W', fh, fw)
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * fh * fw, ho * wo)


@_check("im2col_cython")
def _im2col(rng: np.random.Generator) -> None:
    _compiled()
    from .im2col_cython import im2col_cython

    for dtype in (np.float64, np.float32):
        x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
        for fh, fw, pad, stride in ((3, 3, 1, 1), (2, 3, 0, 2), (1, 1, 2, 3)):
            cols = im2col_cython(x, fh, fw, pad, stride)
            _expect(cols.dtype == dtype, f"im2col_cython returned {cols.dtype} for {dtype.__name__}")
            _close(f"im2col_cython ({dtype.__name__}, field {fh}x{fw}, pad {pad}, stride {stride})",
                   cols, _im2col_expected(x, fh, fw, pad, stride), 0.0)


@_check("col2im_cython")
def _col2im(rng: np.random.Generator) -> None:
    _compiled()
    from .im2col_cython import col2im_cython

    for fh, fw, pad, stride in ((3, 3, 1, 1), (2, 3, 0, 2), (3, 2, 2, 3)):
        x = rng.standard_normal((2, 3, 6, 5))
        shape = _im2col_expected(x, fh, fw, pad, stride).shape
        cols = rng.standard_normal(shape)
        back = col2im_cython(cols, 2, 3, 6, 5, fh, fw, pad, stride)
        _shape("col2im_cython output", back, x.shape)
        # col2im is the adjoint of im2col: <im2col(x), cols> == <x, col2im(cols)>
        lhs = float(np.sum(_im2col_expected(x, fh, fw, pad, stride) * cols))
        _close(f"col2im_cython is the adjoint of im2col (field {fh}x{fw}, pad {pad}, "
               f"stride {stride})", float(np.sum(x * back)), lhs, 1e-10)


def _naive_or_todo(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except NotImplementedError as exc:
        raise NotImplementedError(f"this check compares with {fn.__name__}, not done yet "
                                  f"({exc})") from exc


@_check("conv_fast")
def _conv_fast(rng: np.random.Generator) -> None:
    _compiled()
    from .fast_layers import conv_backward_im2col, conv_forward_im2col
    from .layers import conv_forward_naive

    x = rng.standard_normal((3, 2, 7, 6))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)
    for param in ({"stride": 1, "pad": 1}, {"stride": 2, "pad": 0}):
        fast, _ = conv_forward_im2col(x, w, b, param)
        naive, _ = _naive_or_todo(conv_forward_naive, x, w, b, param)
        _close(f"conv_forward_im2col == conv_forward_naive ({param})", fast, naive, 1e-10)
    fast32, _ = conv_forward_im2col(x.astype(np.float32), w.astype(np.float32),
                                    b.astype(np.float32), {"stride": 1, "pad": 1})
    _expect(fast32.dtype == np.float32, f"conv_forward_im2col turned float32 into {fast32.dtype}")
    args = [rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)),
            rng.standard_normal(3), {"stride": 2, "pad": 1}]
    _grads("conv_backward_im2col", conv_forward_im2col, conv_backward_im2col, args,
           ("dx", "dw", "db"), rng)


@_check("max_pool_fast")
def _max_pool_fast(rng: np.random.Generator) -> None:
    _compiled()
    from .fast_layers import max_pool_backward_fast, max_pool_forward_fast
    from .layers import max_pool_forward_naive

    _pool_laws("max_pool_fast", max_pool_forward_fast, max_pool_backward_fast, rng)
    x = rng.standard_normal((2, 3, 7, 6))
    for param in ({"pool_height": 2, "pool_width": 2, "stride": 2},
                  {"pool_height": 3, "pool_width": 2, "stride": 1}):
        fast, _ = max_pool_forward_fast(x, param)
        naive, _ = _naive_or_todo(max_pool_forward_naive, x, param)
        _close(f"max_pool_forward_fast == max_pool_forward_naive ({param})", fast, naive, 0.0)


# -- optimizers ----------------------------------------------------------------------------

def _opt_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    w = rng.standard_normal((4, 5))
    dw = rng.standard_normal((4, 5))
    dw[np.abs(dw) < 0.1] = 0.3  # keep every gradient away from 0
    return w, dw


@_check("sgd_momentum")
def _sgd_momentum(rng: np.random.Generator) -> None:
    from .optim import sgd, sgd_momentum

    w, dw = _opt_inputs(rng)
    plain, _ = sgd(w.copy(), dw, {"learning_rate": 0.1})
    config: dict[str, Any] = {"learning_rate": 0.1, "momentum": 0.0}
    for _ in range(2):
        got, config = sgd_momentum(w.copy(), dw, config)
        _close("sgd_momentum with momentum 0 is sgd", got, plain, 1e-12)
    config = {"learning_rate": 0.1, "momentum": 0.9}
    w1, config = sgd_momentum(w.copy(), dw, config)
    _close("sgd_momentum: first step from zero velocity", w1 - w, -0.1 * dw, 1e-10)
    _expect("velocity" in config, "sgd_momentum: config has no 'velocity' after a step")
    w2, config = sgd_momentum(w1.copy(), dw, config)
    _close("sgd_momentum: second step with the same gradient is 1.9 times the first",
           w2 - w1, -0.19 * dw, 1e-10)


@_check("rmsprop")
def _rmsprop(rng: np.random.Generator) -> None:
    from .optim import rmsprop

    w, dw = _opt_inputs(rng)
    w1, config = rmsprop(w.copy(), dw, {"learning_rate": 0.01, "decay_rate": 0.99})
    # from an empty cache the first step is lr * sign(dw) / sqrt(1 - decay_rate)
    _close("rmsprop: first step is -learning_rate * sign(dw) / sqrt(1 - decay_rate)",
           w1 - w, -0.1 * np.sign(dw), 1e-6)
    _expect("cache" in config, "rmsprop: config has no 'cache' after a step")
    w2, _ = rmsprop(w.copy(), 10.0 * dw, {"learning_rate": 0.01, "decay_rate": 0.99})
    _close("rmsprop: the first step does not depend on the gradient's scale", w2, w1, 1e-5)


@_check("adam")
def _adam(rng: np.random.Generator) -> None:
    from .optim import adam

    w, dw = _opt_inputs(rng)
    w1, config = adam(w.copy(), dw, {"learning_rate": 0.01})
    _close("adam: the first step (bias-corrected) is -learning_rate * sign(dw)", w1 - w,
           -0.01 * np.sign(dw), 1e-5)
    _expect(config.get("t") == 1, f"adam: config['t'] is {config.get('t')!r} after one step")
    for _ in range(5):
        w, config = adam(w, dw, config)
    _expect(config.get("t") == 6, f"adam: config['t'] is {config.get('t')!r} after six steps")
    for key in ("m", "v"):
        _shape(f"adam: config[{key!r}]", config.get(key), dw.shape)


# -- fully connected net and ThreeLayerConvNet ----------------------------------------------

@_check("fc_net_init")
def _fc_init(rng: np.random.Generator) -> None:
    from .classifiers import FullyConnectedNet

    net = FullyConnectedNet([80, 50], input_dim=60, num_classes=7, weight_scale=0.1,
                            dtype=np.float64)
    shapes = {"W1": (60, 80), "b1": (80,), "W2": (80, 50), "b2": (50,), "W3": (50, 7), "b3": (7,)}
    _expect(set(net.params) == set(shapes),
            f"FullyConnectedNet([80, 50]).params has keys {sorted(net.params)}, expected "
            f"{sorted(shapes)} (no normalization)")
    for key, shape in shapes.items():
        _shape(f"params[{key!r}]", net.params[key], shape)
        _expect(net.params[key].dtype == np.float64, f"params[{key!r}] is not of the given dtype")
    _close("params['b1'] (zeros)", net.params["b1"], np.zeros(80), 0.0)
    std = float(np.std(net.params["W1"]))
    _expect(0.09 < std < 0.11, f"params['W1'] has standard deviation {std:.3f}, expected about "
            "weight_scale = 0.1")
    for norm in ("batchnorm", "layernorm"):
        net = FullyConnectedNet([8, 5], input_dim=6, num_classes=3, normalization=norm)
        for k, d in ((1, 8), (2, 5)):
            _close(f"{norm}: params['gamma{k}'] (ones)", net.params.get(f"gamma{k}"), np.ones(d), 0)
            _close(f"{norm}: params['beta{k}'] (zeros)", net.params.get(f"beta{k}"), np.zeros(d), 0)
        _expect("gamma3" not in net.params, f"{norm}: the last (scores) layer has no gamma")


@_check("fc_net_loss")
def _fc_loss(rng: np.random.Generator) -> None:
    from .classifiers import FullyConnectedNet

    X = rng.standard_normal((4, 5))
    y = rng.integers(0, 3, size=4)
    for norm, keep in ((None, 1), ("batchnorm", 1), ("layernorm", 1), (None, 0.5)):
        net = FullyConnectedNet([6, 4], input_dim=5, num_classes=3, normalization=norm,
                                dropout_keep_ratio=keep, reg=0.1, weight_scale=0.5,
                                dtype=np.float64, seed=0)
        what = f"FullyConnectedNet(normalization={norm}, dropout_keep_ratio={keep}, reg=0.1)"
        for key, value in net.params.items():  # random biases too: no unit sits at a kink
            net.params[key] = 0.5 * rng.standard_normal(np.shape(value)) + (
                1.0 if key.startswith("gamma") else 0.0)
        _shape(f"{what}.loss(X) scores", net.loss(X), (4, 3))
        loss, grads = net.loss(X, y)
        _expect(set(grads) == set(net.params),
                f"{what}: grads has keys {sorted(grads)}, params {sorted(net.params)}")
        for key in sorted(net.params):
            num = eval_numerical_gradient(lambda _, net=net: float(net.loss(X, y)[0]),
                                          net.params[key], verbose=False, h=1e-6)
            _close_grad(f"{what}: gradient of {key}", grads[key], num, 1e-5)


@_check("three_layer_convnet")
def _convnet(rng: np.random.Generator) -> None:
    from .classifiers.cnn import ThreeLayerConvNet

    net = ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5,
                            num_classes=4, weight_scale=1e-3, dtype=np.float64)
    for key, shape in (("W1", (3, 2, 3, 3)), ("b1", (3,)), ("W2", (27, 5)), ("b2", (5,)),
                       ("W3", (5, 4)), ("b3", (4,))):
        _shape(f"ThreeLayerConvNet.params[{key!r}]", net.params.get(key), shape)
    X = rng.standard_normal((2, 2, 6, 6))
    y = np.array([1, 3])
    loss, _ = net.loss(X, y)
    _close("ThreeLayerConvNet: initial loss with tiny weights is log(4)", loss, np.log(4.0), 1e-3)
    net.reg = 0.05
    for key, value in net.params.items():
        net.params[key] = 0.3 * rng.standard_normal(np.shape(value))
    _shape("ThreeLayerConvNet.loss(X) scores", net.loss(X), (2, 4))
    loss, grads = net.loss(X, y)
    for key in sorted(net.params):
        num = eval_numerical_gradient(lambda _: float(net.loss(X, y)[0]), net.params[key],
                                      verbose=False, h=1e-6)
        _close_grad(f"ThreeLayerConvNet (reg=0.05): gradient of {key}", grads.get(key), num,
                    1e-5)


# -- PyTorch ---------------------------------------------------------------------------------

def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise CheckFailed("PyTorch is not installed: pip install torch==2.13.0 "
                          "(the CPU version is enough)") from exc
    torch.manual_seed(0)
    return torch


def _t(rng: np.random.Generator, *shape: int) -> Any:
    torch = _torch()
    return torch.from_numpy(rng.standard_normal(shape)).float()


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _agree(name: str, actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding, relative to the largest entry."""
    scale = max(1.0, float(np.max(np.abs(expected)))) if np.size(expected) else 1.0
    _near(name, actual, expected, 1e-5 * scale)


def _skip_if_todo(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or None while fn (another task) still raises NotImplementedError."""
    try:
        return fn(*args)
    except NotImplementedError:
        return None


@_check("pytorch_flatten")
def _flatten(rng: np.random.Generator) -> None:
    from .pytorch_models import flatten

    x = _t(rng, 3, 2, 4, 5)
    out = flatten(x)
    _shape("flatten of a (3, 2, 4, 5) tensor", out, (3, 40))
    _close("flatten keeps the values in order", _np(out), _np(x).reshape(3, 40), 0.0)
    _shape("flatten of a (2, 7) tensor", flatten(_t(rng, 2, 7)), (2, 7))


def _fc_numpy(x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
              b2: np.ndarray) -> np.ndarray:
    hidden = np.clip(x.reshape(len(x), -1) @ w1 + b1, 0.0, None)
    return hidden @ w2 + b2


@_check("pytorch_two_layer_fc")
def _two_layer_fc(rng: np.random.Generator) -> None:
    from .pytorch_models import two_layer_fc

    x, w1, w2 = _t(rng, 4, 2, 3, 2), _t(rng, 12, 7), _t(rng, 7, 5)
    scores = two_layer_fc(x, [w1, w2])
    _shape("two_layer_fc scores", scores, (4, 5))
    _agree("two_layer_fc == relu(flatten(x) @ w1) @ w2", _np(scores),
           _fc_numpy(_np(x), _np(w1), 0.0, _np(w2), 0.0))


@_check("pytorch_three_layer_convnet")
def _bare_convnet(rng: np.random.Generator) -> None:
    from .pytorch_models import three_layer_convnet

    x = _t(rng, 2, 3, 8, 8)
    params = [_t(rng, 4, 3, 5, 5), _t(rng, 4), _t(rng, 5, 4, 3, 3), _t(rng, 5),
              _t(rng, 5 * 8 * 8, 10), _t(rng, 10)]
    _shape("three_layer_convnet scores (5x5 and 3x3 filters on 8x8 images)",
           three_layer_convnet(x, params), (2, 10))
    # With 1x1 filters every convolution is a per-pixel product; the paddings (2, then 1)
    # grow the 8x8 images to 12x12 then 14x14, with relu(bias) on the border.
    w1, b1, w2, b2 = _t(rng, 4, 3, 1, 1), _t(rng, 4), _t(rng, 5, 4, 1, 1), _t(rng, 5)
    fc_w, fc_b = _t(rng, 5 * 14 * 14, 6), _t(rng, 6)
    scores = three_layer_convnet(x, [w1, b1, w2, b2, fc_w, fc_b])
    h = np.pad(_np(x), ((0, 0), (0, 0), (2, 2), (2, 2)))
    h = np.clip(np.einsum("fc,nchw->nfhw", _np(w1)[:, :, 0, 0], h)
                + _np(b1)[None, :, None, None], 0.0, None)
    h = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h = np.clip(np.einsum("fc,nchw->nfhw", _np(w2)[:, :, 0, 0], h)
                + _np(b2)[None, :, None, None], 0.0, None)
    _agree("three_layer_convnet with 1x1 filters (computed in numpy)", _np(scores),
           h.reshape(2, -1) @ _np(fc_w) + _np(fc_b))


def _kaiming(name: str, layer: Any, fan_in: int) -> None:
    std = float(layer.weight.detach().std())
    expected = float(np.sqrt(2.0 / fan_in))
    _expect(abs(std - expected) < 0.2 * expected,
            f"{name}.weight has std {std:.4f}, expected about sqrt(2 / fan_in) = {expected:.4f} "
            "(nn.init.kaiming_normal_)")
    _close(f"{name}.bias (zeros)", _np(layer.bias), np.zeros(tuple(layer.bias.shape)), 0.0)


def _conv_layer(name: str, layer: Any, c_in: int, c_out: int, k: int, pad: int) -> None:
    torch = _torch()
    _expect(isinstance(layer, torch.nn.Conv2d), f"{name} is {type(layer).__name__}, not Conv2d")
    _shape(f"{name}.weight", layer.weight, (c_out, c_in, k, k))
    _expect(tuple(layer.padding) == (pad, pad), f"{name} has padding {layer.padding}, not {pad}")
    _expect(tuple(layer.stride) == (1, 1), f"{name} has stride {layer.stride}, not 1")


def _linear_layer(name: str, layer: Any, d_in: int, d_out: int) -> None:
    torch = _torch()
    _expect(isinstance(layer, torch.nn.Linear), f"{name} is {type(layer).__name__}, not Linear")
    _shape(f"{name}.weight", layer.weight, (d_out, d_in))


def _scores_of(model: Any, x: Any) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return _np(model(x))


@_check("pytorch_module_api")
def _module_api(rng: np.random.Generator) -> None:
    from .pytorch_models import ThreeLayerConvNet, TwoLayerFC, three_layer_convnet

    fc = TwoLayerFC(300, 200, 10)
    _linear_layer("TwoLayerFC.fc1", fc.fc1, 300, 200)
    _linear_layer("TwoLayerFC.fc2", fc.fc2, 200, 10)
    _kaiming("TwoLayerFC.fc1", fc.fc1, 300)
    x = _t(rng, 4, 3, 10, 10)
    params = [_np(p) for p in (fc.fc1.weight, fc.fc1.bias, fc.fc2.weight, fc.fc2.bias)]
    _agree("TwoLayerFC forward == fc2(relu(fc1(flatten(x))))", _scores_of(fc, x),
           _fc_numpy(_np(x), params[0].T, params[1], params[2].T, params[3]))
    net = ThreeLayerConvNet(3, 6, 4, 10)
    _conv_layer("ThreeLayerConvNet.conv1", net.conv1, 3, 6, 5, 2)
    _conv_layer("ThreeLayerConvNet.conv2", net.conv2, 6, 4, 3, 1)
    _linear_layer("ThreeLayerConvNet.fc", net.fc, 4 * 32 * 32, 10)
    _kaiming("ThreeLayerConvNet.conv1", net.conv1, 3 * 5 * 5)
    images = _t(rng, 2, 3, 32, 32)
    scores = _scores_of(net, images)
    _shape("ThreeLayerConvNet scores", scores, (2, 10))
    weights = [net.conv1.weight, net.conv1.bias, net.conv2.weight, net.conv2.bias,
               net.fc.weight.t(), net.fc.bias]
    bare = _skip_if_todo(three_layer_convnet, images, [p.detach() for p in weights])
    if bare is not None:
        _agree("ThreeLayerConvNet == three_layer_convnet with the same weights", scores,
               _np(bare))


@_check("pytorch_sequential")
def _sequential(rng: np.random.Generator) -> None:
    from .pytorch_models import (
        ThreeLayerConvNet,
        sequential_three_layer_convnet,
        sequential_two_layer_fc,
    )

    torch = _torch()
    fc = sequential_two_layer_fc(300, 200, 10)
    _expect(isinstance(fc, torch.nn.Sequential), "sequential_two_layer_fc: not an nn.Sequential")
    _linear_layer("sequential_two_layer_fc(...)[1]", fc[1], 300, 200)
    _linear_layer("sequential_two_layer_fc(...)[3]", fc[3], 200, 10)
    _kaiming("sequential_two_layer_fc(...)[1]", fc[1], 300)
    x = _t(rng, 4, 3, 10, 10)
    params = [_np(p) for p in (fc[1].weight, fc[1].bias, fc[3].weight, fc[3].bias)]
    _agree("sequential_two_layer_fc forward == Linear(relu(Linear(flatten(x))))",
           _scores_of(fc, x), _fc_numpy(_np(x), params[0].T, params[1], params[2].T, params[3]))
    net = sequential_three_layer_convnet(3, 6, 4, 10)
    _expect(isinstance(net, torch.nn.Sequential),
            "sequential_three_layer_convnet: not an nn.Sequential")
    _conv_layer("sequential_three_layer_convnet(...)[0]", net[0], 3, 6, 5, 2)
    _conv_layer("sequential_three_layer_convnet(...)[2]", net[2], 6, 4, 3, 1)
    _linear_layer("sequential_three_layer_convnet(...)[5]", net[5], 4 * 32 * 32, 10)
    _kaiming("sequential_three_layer_convnet(...)[0]", net[0], 3 * 5 * 5)
    images = _t(rng, 2, 3, 32, 32)
    scores = _scores_of(net, images)
    _shape("sequential_three_layer_convnet scores", scores, (2, 10))
    module = _skip_if_todo(ThreeLayerConvNet, 3, 6, 4, 10)
    if module is not None:
        with torch.no_grad():
            for mine, theirs in ((module.conv1, net[0]), (module.conv2, net[2]),
                                 (module.fc, net[5])):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        _agree("sequential_three_layer_convnet == ThreeLayerConvNet with the same weights",
               scores, _scores_of(module, images))


@_check("pytorch_my_model")
def _my_model(rng: np.random.Generator) -> None:
    from .pytorch_models import WEIGHTS_FILE, build_my_model, load_weights

    torch = _torch()
    model = build_my_model()
    _expect(isinstance(model, torch.nn.Module),
            f"build_my_model returned {type(model).__name__}, not an nn.Module")
    model.eval()
    _shape("build_my_model() scores of two 3x32x32 images", _scores_of(model, _t(rng, 2, 3, 32, 32)),
           (2, 10))
    path = HERE.parent / WEIGHTS_FILE
    if not path.is_file():
        raise NotImplementedError(f"pytorch_my_model: no {WEIGHTS_FILE} yet: train your model in "
                                  "PyTorch.ipynb, which saves it with save_weights")
    size = path.stat().st_size
    _expect(size < 2 << 20, f"{WEIGHTS_FILE} is {size / 2**20:.1f} MB; keep it under 2 MB")
    try:
        load_weights(build_my_model(), path)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckFailed(f"{WEIGHTS_FILE} does not load into build_my_model() (did you change "
                          f"the architecture after saving?): {str(exc)[:300]}") from exc


# -- runner -----------------------------------------------------------------------------

def run_checks(tasks: list[str] | None = None, seed: int = 0) -> list[Outcome]:
    """Run the checks of ``tasks`` (default all), each with ``seed``; never raises."""
    return run(CHECKS, tasks, seed)
