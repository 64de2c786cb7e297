"""Hidden tests of Assignment 2's layers: affine / ReLU / softmax (again), batch and
layer normalization, and dropout.

Case tables first; the test functions read them. The student's code runs in the
worker (``student.lib...``), the reference and every comparison in the grader.
A backward pass gets the cache of the student's OWN forward pass, and its
gradients are compared twice: with the reference's analytic gradient (tight)
and with float64 central differences of the REFERENCE forward pass (so a wrong
forward with a matching wrong backward cannot pass).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close, numerical_gradient
from autograder.sandbox import RemotePath
from autograder.values import as_array, as_dict, as_float, as_tuple

RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7

# (id, N, input shape, M)
AFFINE_CASES = [
    ("vector", 4, (6,), 5),
    ("image", 3, (2, 3, 4), 6),
]

# (id, N, C, score scale)
SOFTMAX_CASES = [
    ("small", 6, 4, 1.0),
    ("wide", 40, 10, 4.0),
]

# (id, N, D, input scale, input shift, eps, momentum)
NORM_CASES = [
    ("small", 4, 5, 1.0, 0.0, 1e-5, 0.9),
    ("shifted", 10, 3, 3.0, 5.0, 1e-5, 0.9),
    ("eps_momentum", 8, 7, 0.5, -2.0, 1e-3, 0.7),
]

# (id, shape, keep probability p)
DROPOUT_CASES = [
    ("matrix", (500, 400), 0.3),
    ("half", (200, 50, 10), 0.5),
    ("mostly_kept", (1000, 100), 0.9),
]


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _fetch(student, ref):
    """The value stored in the worker under ``ref`` (after the student's code changed it)."""
    return RemotePath(student, {"ref": ref.id, "attrs": []}).get()


# ------------------------------------------------------------------ affine, ReLU, softmax


@pytest.mark.affine_relu
@pytest.mark.parametrize("case", AFFINE_CASES, ids=_ids(AFFINE_CASES))
def test_affine_relu_forward_backward(student, reference, rng, case):
    _, n, dims, m = case
    x = rng.standard_normal((n, *dims))
    w = rng.standard_normal((int(np.prod(dims)), m))
    b = rng.standard_normal(m)
    dout = rng.standard_normal((n, m))
    out, cache = as_tuple(student.lib.layers.affine_forward(x, w, b),
                          name="affine_forward's return value (out, cache)", length=2)
    ref_out, ref_cache = reference.layers.affine_forward(x, w, b)
    assert_close(out, ref_out, name="affine_forward out", rtol=RTOL, atol=ATOL)
    grads = as_tuple(student.lib.layers.affine_backward(dout, cache),
                     name="affine_backward's return value (dx, dw, db)", length=3)
    ref_grads = reference.layers.affine_backward(dout, ref_cache)
    for name, g, rg in zip(("dx", "dw", "db"), grads, ref_grads, strict=True):
        assert_close(g, rg, name=f"affine_backward {name}", rtol=RTOL, atol=ATOL)

    a = ref_out + np.where(np.abs(ref_out) < 1e-3, 1e-2, 0.0)  # keep away from the kink
    r_out, r_cache = as_tuple(student.lib.layers.relu_forward(a),
                              name="relu_forward's return value (out, cache)", length=2)
    assert_close(r_out, np.maximum(a, 0), name="relu_forward out", rtol=RTOL, atol=ATOL)
    dx = student.lib.layers.relu_backward(dout, r_cache)
    assert_close(dx, dout * (a > 0), name="relu_backward dx", rtol=RTOL, atol=ATOL)


@pytest.mark.softmax_loss
@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=_ids(SOFTMAX_CASES))
def test_softmax_loss(student, reference, rng, case):
    _, n, c, scale = case
    # Large scores, moderate differences: exp(1000) overflows without the shift
    # (exp(500) would not), and no probability comes near underflow with it.
    x = scale * rng.standard_normal((n, c)) + 1000.0
    y = rng.integers(0, c, size=n)
    loss, dx = as_tuple(student.lib.layers.softmax_loss(x, y),
                        name="softmax_loss's return value (loss, dx)", length=2)
    loss = as_float(loss, name="softmax_loss's loss")
    ref_loss, ref_dx = reference.layers.softmax_loss(x, y)
    assert np.isfinite(loss), f"loss is {loss} for scores around 1000: shift each row by its maximum"
    assert_close(loss, np.float64(ref_loss), name="loss", rtol=RTOL, atol=ATOL)
    assert_close(dx, ref_dx, name="dx", rtol=RTOL, atol=ATOL)
    num = numerical_gradient(lambda x_: reference.layers.softmax_loss(x_, y)[0], x.copy())
    assert_close(dx, num, name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


# ------------------------------------------------------------------ batch normalization


def _norm_inputs(rng, n, d, scale, shift):
    x = scale * rng.standard_normal((n, d)) + shift
    gamma = 1.0 + 0.5 * rng.standard_normal(d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    return x, gamma, beta, dout


@pytest.mark.batchnorm_forward
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_batchnorm_forward_train(student, reference, rng, case):
    _, n, d, scale, shift, eps, momentum = case
    x, gamma, beta, _ = _norm_inputs(rng, n, d, scale, shift)
    out, _cache = as_tuple(student.lib.layers.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps}),
                           name="batchnorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    out = as_array(out, name="out (train mode)", shape=ref_out.shape)
    assert_close(out, ref_out, name="out (train mode)", rtol=1e-6, atol=1e-9)
    # The law itself: per feature, mean beta and standard deviation |gamma| (up to eps).
    assert_close(np.mean(out, axis=0), beta, name="per-feature mean of out", rtol=1e-6, atol=1e-8)


@pytest.mark.batchnorm_forward
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_batchnorm_running_averages(student, reference, rng, case):
    """Several train-mode steps update running_mean / running_var IN bn_param."""
    _, n, d, scale, shift, eps, momentum = case
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum}
    ref_param = dict(bn_param)
    stored = student.put(bn_param)
    for _step in range(4):
        x, gamma, beta, _ = _norm_inputs(rng, n, d, scale, shift)
        student.lib.layers.batchnorm_forward(x, gamma, beta, stored)
        reference.layers.batchnorm_forward(x, gamma, beta, ref_param)
    got = as_dict(_fetch(student, stored), name="bn_param after train-mode forward passes")
    for key in ("running_mean", "running_var"):
        assert key in got, f"bn_param has no '{key}' after train-mode forward passes"
        assert_close(got[key], ref_param[key], name=f"bn_param['{key}'] after 4 train steps", rtol=1e-6, atol=1e-9)


@pytest.mark.batchnorm_forward
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_batchnorm_forward_test_mode(student, reference, rng, case):
    _, n, d, scale, shift, eps, momentum = case
    x, gamma, beta, _ = _norm_inputs(rng, n, d, scale, shift)
    running_mean = rng.standard_normal(d)
    running_var = 0.5 + rng.random(d)
    bn_param = {"mode": "test", "eps": eps, "momentum": momentum,
                "running_mean": running_mean, "running_var": running_var}
    out, _cache = as_tuple(student.lib.layers.batchnorm_forward(x, gamma, beta, dict(bn_param)),
                           name="batchnorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.batchnorm_forward(x, gamma, beta, dict(bn_param))
    assert_close(out, ref_out, name="out (test mode: uses the running averages)", rtol=1e-6, atol=1e-9)


def _check_bn_backward(student, reference, rng, case, backward_name):
    _, n, d, scale, shift, eps, _momentum = case
    x, gamma, beta, dout = _norm_inputs(rng, n, d, scale, shift)
    _out, cache = as_tuple(student.lib.layers.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps}),
                           name="batchnorm_forward's return value (out, cache)", length=2)
    dx, dgamma, dbeta = as_tuple(getattr(student.lib.layers, backward_name)(dout, cache),
                                 name=f"{backward_name}'s return value (dx, dgamma, dbeta)", length=3)
    _, ref_cache = reference.layers.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    # The reference's step-by-step backward: the alt version must equal it.
    ref_dx, ref_dgamma, ref_dbeta = reference.layers.batchnorm_backward(dout, ref_cache)
    assert_close(dx, ref_dx, name="dx", rtol=1e-6, atol=1e-9)
    assert_close(dgamma, ref_dgamma, name="dgamma", rtol=1e-6, atol=1e-9)
    assert_close(dbeta, ref_dbeta, name="dbeta", rtol=1e-6, atol=1e-9)

    def fwd(x_, g_, b_):
        return reference.layers.batchnorm_forward(x_, g_, b_, {"mode": "train", "eps": eps})[0]

    assert_close(dx, numerical_gradient(lambda v: fwd(v, gamma, beta), x.copy(), dout),
                 name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dgamma, numerical_gradient(lambda v: fwd(x, v, beta), gamma.copy(), dout),
                 name="dgamma (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dbeta, numerical_gradient(lambda v: fwd(x, gamma, v), beta.copy(), dout),
                 name="dbeta (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


@pytest.mark.batchnorm_backward
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_batchnorm_backward(student, reference, rng, case):
    _check_bn_backward(student, reference, rng, case, "batchnorm_backward")


@pytest.mark.batchnorm_backward_alt
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_batchnorm_backward_alt(student, reference, rng, case):
    _check_bn_backward(student, reference, rng, case, "batchnorm_backward_alt")


# ------------------------------------------------------------------ layer normalization


@pytest.mark.layernorm
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_layernorm_forward(student, reference, rng, case):
    _, n, d, scale, shift, eps, _momentum = case
    x, gamma, beta, _ = _norm_inputs(rng, n, d, scale, shift)
    out, _cache = as_tuple(student.lib.layers.layernorm_forward(x, gamma, beta, {"eps": eps}),
                           name="layernorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.layernorm_forward(x, gamma, beta, {"eps": eps})
    assert_close(out, ref_out, name="out", rtol=1e-6, atol=1e-9)


@pytest.mark.layernorm
@pytest.mark.parametrize("case", NORM_CASES, ids=_ids(NORM_CASES))
def test_layernorm_backward(student, reference, rng, case):
    _, n, d, scale, shift, eps, _momentum = case
    x, gamma, beta, dout = _norm_inputs(rng, n, d, scale, shift)
    _out, cache = as_tuple(student.lib.layers.layernorm_forward(x, gamma, beta, {"eps": eps}),
                           name="layernorm_forward's return value (out, cache)", length=2)
    dx, dgamma, dbeta = as_tuple(student.lib.layers.layernorm_backward(dout, cache),
                                 name="layernorm_backward's return value (dx, dgamma, dbeta)", length=3)
    _, ref_cache = reference.layers.layernorm_forward(x, gamma, beta, {"eps": eps})
    ref_dx, ref_dgamma, ref_dbeta = reference.layers.layernorm_backward(dout, ref_cache)
    assert_close(dx, ref_dx, name="dx", rtol=1e-6, atol=1e-9)
    assert_close(dgamma, ref_dgamma, name="dgamma", rtol=1e-6, atol=1e-9)
    assert_close(dbeta, ref_dbeta, name="dbeta", rtol=1e-6, atol=1e-9)

    def fwd(x_, g_, b_):
        return reference.layers.layernorm_forward(x_, g_, b_, {"eps": eps})[0]

    assert_close(dx, numerical_gradient(lambda v: fwd(v, gamma, beta), x.copy(), dout),
                 name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dgamma, numerical_gradient(lambda v: fwd(x, v, beta), gamma.copy(), dout),
                 name="dgamma (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


# ------------------------------------------------------------------ dropout


@pytest.mark.dropout
@pytest.mark.parametrize("case", DROPOUT_CASES, ids=_ids(DROPOUT_CASES))
def test_dropout_train_statistics(student, rng, seed, case):
    """Inverted dropout: a fraction p of the units kept, each divided by p."""
    _, shape, p = case
    x = 1.0 + rng.random(shape)  # strictly positive: zeros in out are dropped units
    ref_x = student.put(x)
    out, _cache = as_tuple(student.lib.layers.dropout_forward(ref_x, {"mode": "train", "p": p, "seed": seed % 2**31}),
                           name="dropout_forward's return value (out, cache)", length=2)
    out = as_array(out, name="dropout_forward's out (train mode)", shape=x.shape)
    kept = out != 0
    frac = float(np.mean(kept))
    # >= 20000 Bernoulli draws: 6 standard errors are below 0.02.
    assert abs(frac - p) < 0.02, f"dropout with keep probability p={p} kept a fraction {frac:.4f} of the units"
    assert_close(out[kept], x[kept] / p, name=f"kept units (must be x / p, p={p})", rtol=1e-7, atol=1e-12)
    out2, _ = as_tuple(student.lib.layers.dropout_forward(ref_x, {"mode": "train", "p": p, "seed": seed % 2**31}),
                       name="dropout_forward's return value (out, cache)", length=2)
    out2 = as_array(out2, name="dropout_forward's out (second call)", shape=x.shape)
    assert np.array_equal(out2 != 0, kept), "the same seed must give the same mask"


@pytest.mark.dropout
@pytest.mark.parametrize("case", DROPOUT_CASES, ids=_ids(DROPOUT_CASES))
def test_dropout_test_mode_is_identity(student, rng, case):
    _, shape, p = case
    x = rng.standard_normal(shape)
    out, _cache = as_tuple(student.lib.layers.dropout_forward(student.put(x), {"mode": "test", "p": p}),
                           name="dropout_forward's return value (out, cache)", length=2)
    assert_close(out, x, name=f"out in test mode (p={p})", rtol=0, atol=0)


@pytest.mark.dropout
@pytest.mark.parametrize("case", DROPOUT_CASES, ids=_ids(DROPOUT_CASES))
def test_dropout_backward(student, rng, seed, case):
    """The gradient goes through the kept units, scaled by 1 / p, exactly like the forward."""
    _, shape, p = case
    small = tuple(min(s, 60) for s in shape)
    x = 1.0 + rng.random(small)
    dout = rng.standard_normal(small)
    out, cache = as_tuple(student.lib.layers.dropout_forward(x, {"mode": "train", "p": p, "seed": seed % 2**31}),
                          name="dropout_forward's return value (out, cache)", length=2)
    out = as_array(out, name="dropout_forward's out (train mode)", shape=small)
    dx = as_array(student.lib.layers.dropout_backward(dout, cache), name="dropout_backward's dx",
                  shape=small)
    expected = dout * (out / x)  # the student's own mask, with its scaling
    assert_close(dx, expected, name=f"dx (train mode, p={p})", rtol=1e-7, atol=1e-12)
    assert_close(dx != 0, out != 0, name="units with a gradient (the kept ones)", rtol=0, atol=0)
