"""Hidden tests of Assignment 2's naive convolution and max pooling, and of the
spatial (batch / group) normalization layers.

Outputs are compared with the reference on fresh random inputs of several
shapes (strides, paddings, non-square filters, pools that do not tile the
input); every backward pass gets the student's own cache and is compared with
the reference's gradient and with float64 central differences of the
REFERENCE forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import assert_close, numerical_gradient
from autograder.values import as_array, as_tuple

RTOL = 1e-7
ATOL = 1e-10
NUM_RTOL = 1e-5
NUM_ATOL = 1e-7

# (id, x shape (N, C, H, W), w shape (F, C, HH, WW), stride, pad)
CONV_CASES = [
    ("basic", (2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ("strided", (2, 2, 7, 6), (3, 2, 3, 2), 2, 1),
    ("no_pad_rect", (1, 3, 6, 8), (2, 3, 2, 4), 2, 0),
    ("wide_pad", (3, 1, 4, 4), (2, 1, 3, 3), 3, 2),
]

# (id, x shape, pool_height, pool_width, stride)
POOL_CASES = [
    ("tiling", (2, 3, 4, 4), 2, 2, 2),
    ("not_tiling", (2, 2, 7, 5), 3, 2, 2),
    ("overlapping", (1, 3, 6, 6), 3, 3, 1),
    ("rect_stride3", (2, 1, 8, 9), 2, 3, 3),
]

# (id, shape (N, C, H, W), scale, shift)
SPATIAL_CASES = [
    ("small", (2, 3, 4, 5), 1.0, 0.0),
    ("shifted", (4, 2, 3, 3), 3.0, 5.0),
]

# (id, shape (N, C, H, W), G)
GROUP_CASES = [
    ("two_groups", (2, 6, 4, 5), 2),
    ("one_group", (3, 4, 3, 3), 1),
    ("per_channel", (2, 3, 4, 4), 3),
]


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _conv_direct(x, w, b, stride, pad):
    """Independent check: the definition of a cross-correlation, one output at a time."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    out = np.empty((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return out


# ------------------------------------------------------------------ convolution


@pytest.mark.conv_forward_naive
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_forward_naive(student, reference, rng, case):
    _, xs, ws, stride, pad = case
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv_param = {"stride": stride, "pad": pad}
    out, _cache = as_tuple(student.lib.layers.conv_forward_naive(x, w, b, conv_param),
                           name="conv_forward_naive's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.conv_forward_naive(x, w, b, dict(conv_param))
    out = as_array(out, name="out")
    assert out.shape == ref_out.shape, f"out has shape {out.shape}, expected {ref_out.shape} for {conv_param}"
    assert_close(out, ref_out, name=f"out ({conv_param})", rtol=RTOL, atol=ATOL)
    assert_close(out, _conv_direct(x, w, b, stride, pad), name="out (direct definition)", rtol=RTOL, atol=ATOL)


@pytest.mark.conv_backward_naive
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_backward_naive(student, reference, rng, case):
    _, xs, ws, stride, pad = case
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv_param = {"stride": stride, "pad": pad}
    ref_out, ref_cache = reference.layers.conv_forward_naive(x, w, b, dict(conv_param))
    dout = rng.standard_normal(ref_out.shape)
    # The student's backward gets the cache of the student's own forward.
    _out, cache = as_tuple(student.lib.layers.conv_forward_naive(x, w, b, conv_param),
                           name="conv_forward_naive's return value (out, cache)", length=2)
    dx, dw, db = as_tuple(student.lib.layers.conv_backward_naive(dout, cache),
                          name="conv_backward_naive's return value (dx, dw, db)", length=3)
    ref_dx, ref_dw, ref_db = reference.layers.conv_backward_naive(dout, ref_cache)
    assert_close(dx, ref_dx, name="dx", rtol=RTOL, atol=ATOL)
    assert_close(dw, ref_dw, name="dw", rtol=RTOL, atol=ATOL)
    assert_close(db, ref_db, name="db", rtol=RTOL, atol=ATOL)

    def fwd(x_, w_, b_):
        return reference.layers.conv_forward_naive(x_, w_, b_, dict(conv_param))[0]

    assert_close(dx, numerical_gradient(lambda v: fwd(v, w, b), x.copy(), dout),
                 name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dw, numerical_gradient(lambda v: fwd(x, v, b), w.copy(), dout),
                 name="dw (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


# ------------------------------------------------------------------ max pooling


def _pool_input(rng, shape):
    """Distinct values (no ties), so the max of every pool is unique."""
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 + 0.01 * rng.standard_normal(shape)


@pytest.mark.max_pool_naive
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_max_pool_forward_naive(student, reference, rng, case):
    _, xs, ph, pw, stride = case
    x = _pool_input(rng, xs)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out, _cache = as_tuple(student.lib.layers.max_pool_forward_naive(x, pool_param),
                           name="max_pool_forward_naive's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.max_pool_forward_naive(x, dict(pool_param))
    out = as_array(out, name="out")
    assert out.shape == ref_out.shape, (
        f"out has shape {out.shape}, expected {ref_out.shape} for {pool_param} on input {xs} "
        "(H' = 1 + (H - pool_height) // stride: pools need not tile the input)"
    )
    assert_close(out, ref_out, name=f"out ({pool_param})", rtol=RTOL, atol=ATOL)


@pytest.mark.max_pool_naive
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_max_pool_backward_naive(student, reference, rng, case):
    _, xs, ph, pw, stride = case
    x = _pool_input(rng, xs)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    ref_out, ref_cache = reference.layers.max_pool_forward_naive(x, dict(pool_param))
    dout = rng.standard_normal(ref_out.shape)
    _out, cache = as_tuple(student.lib.layers.max_pool_forward_naive(x, pool_param),
                           name="max_pool_forward_naive's return value (out, cache)", length=2)
    dx = student.lib.layers.max_pool_backward_naive(dout, cache)
    assert_close(dx, reference.layers.max_pool_backward_naive(dout, ref_cache), name="dx", rtol=RTOL, atol=ATOL)
    num = numerical_gradient(lambda v: reference.layers.max_pool_forward_naive(v, dict(pool_param))[0],
                             x.copy(), dout)
    assert_close(dx, num, name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)


# ------------------------------------------------------------------ spatial normalization


def _spatial_inputs(rng, shape, scale=1.0, shift=0.0, param_shape=None):
    c = shape[1]
    pshape = param_shape or (c,)
    x = scale * rng.standard_normal(shape) + shift
    gamma = 1.0 + 0.5 * rng.standard_normal(pshape)
    beta = rng.standard_normal(pshape)
    dout = rng.standard_normal(shape)
    return x, gamma, beta, dout


@pytest.mark.spatial_batchnorm
@pytest.mark.parametrize("case", SPATIAL_CASES, ids=_ids(SPATIAL_CASES))
def test_spatial_batchnorm_forward(student, reference, rng, case):
    _, shape, scale, shift = case
    x, gamma, beta, _ = _spatial_inputs(rng, shape, scale, shift)
    out, _cache = as_tuple(student.lib.layers.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"}),
                           name="spatial_batchnorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert_close(out, ref_out, name="out (train mode)", rtol=1e-6, atol=1e-9)
    c = shape[1]
    test_param = {"mode": "test", "running_mean": rng.standard_normal(c), "running_var": 0.5 + rng.random(c)}
    out, _cache = as_tuple(student.lib.layers.spatial_batchnorm_forward(x, gamma, beta, dict(test_param)),
                           name="spatial_batchnorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.spatial_batchnorm_forward(x, gamma, beta, dict(test_param))
    assert_close(out, ref_out, name="out (test mode)", rtol=1e-6, atol=1e-9)


@pytest.mark.spatial_batchnorm
@pytest.mark.parametrize("case", SPATIAL_CASES, ids=_ids(SPATIAL_CASES))
def test_spatial_batchnorm_backward(student, reference, rng, case):
    _, shape, scale, shift = case
    x, gamma, beta, dout = _spatial_inputs(rng, shape, scale, shift)
    _out, cache = as_tuple(student.lib.layers.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"}),
                           name="spatial_batchnorm_forward's return value (out, cache)", length=2)
    dx, dgamma, dbeta = as_tuple(student.lib.layers.spatial_batchnorm_backward(dout, cache),
                                 name="spatial_batchnorm_backward's return value (dx, dgamma, dbeta)", length=3)
    _, ref_cache = reference.layers.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    ref_dx, ref_dgamma, ref_dbeta = reference.layers.spatial_batchnorm_backward(dout, ref_cache)
    assert_close(dx, ref_dx, name="dx", rtol=1e-6, atol=1e-9)
    assert_close(dgamma, ref_dgamma, name="dgamma", rtol=1e-6, atol=1e-9)
    assert_close(dbeta, ref_dbeta, name="dbeta", rtol=1e-6, atol=1e-9)

    def fwd(x_):
        return reference.layers.spatial_batchnorm_forward(x_, gamma, beta, {"mode": "train"})[0]

    assert_close(dx, numerical_gradient(fwd, x.copy(), dout), name="dx (numerical gradient)",
                 rtol=NUM_RTOL, atol=NUM_ATOL)


@pytest.mark.spatial_groupnorm
@pytest.mark.parametrize("case", GROUP_CASES, ids=_ids(GROUP_CASES))
def test_spatial_groupnorm_forward(student, reference, rng, case):
    _, shape, G = case
    x, gamma, beta, _ = _spatial_inputs(rng, shape, 2.0, 1.0, param_shape=(1, shape[1], 1, 1))
    out, _cache = as_tuple(student.lib.layers.spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5}),
                           name="spatial_groupnorm_forward's return value (out, cache)", length=2)
    ref_out, _ = reference.layers.spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5})
    assert_close(out, ref_out, name=f"out (G={G})", rtol=1e-6, atol=1e-9)


@pytest.mark.spatial_groupnorm
@pytest.mark.parametrize("case", GROUP_CASES, ids=_ids(GROUP_CASES))
def test_spatial_groupnorm_backward(student, reference, rng, case):
    _, shape, G = case
    x, gamma, beta, dout = _spatial_inputs(rng, shape, 2.0, 1.0, param_shape=(1, shape[1], 1, 1))
    _out, cache = as_tuple(student.lib.layers.spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5}),
                           name="spatial_groupnorm_forward's return value (out, cache)", length=2)
    dx, dgamma, dbeta = as_tuple(student.lib.layers.spatial_groupnorm_backward(dout, cache),
                                 name="spatial_groupnorm_backward's return value (dx, dgamma, dbeta)", length=3)
    _, ref_cache = reference.layers.spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5})
    ref_dx, ref_dgamma, ref_dbeta = reference.layers.spatial_groupnorm_backward(dout, ref_cache)
    assert_close(dx, ref_dx, name=f"dx (G={G})", rtol=1e-6, atol=1e-9)
    assert_close(dgamma, ref_dgamma, name=f"dgamma (G={G}, shape (1, C, 1, 1))", rtol=1e-6, atol=1e-9)
    assert_close(dbeta, ref_dbeta, name=f"dbeta (G={G}, shape (1, C, 1, 1))", rtol=1e-6, atol=1e-9)

    def fwd(x_, g_):
        return reference.layers.spatial_groupnorm_forward(x_, g_, beta, G, {"eps": 1e-5})[0]

    assert_close(dx, numerical_gradient(lambda v: fwd(v, gamma), x.copy(), dout),
                 name="dx (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
    assert_close(dgamma, numerical_gradient(lambda v: fwd(x, v), gamma.copy(), dout),
                 name="dgamma (numerical gradient)", rtol=NUM_RTOL, atol=NUM_ATOL)
