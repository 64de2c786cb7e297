"""Hidden tests of Assignment 2's Cython im2col / col2im and the fast conv and pool layers.

The student's extension is compiled once per submission inside the sandbox
(the ``[build]`` table of ``tasks.toml`` next to this file); a build failure fails these tests (and only
these) with the compiler's message. Every output is compared with the
reference on fresh random inputs: non-square filters, strides 1 to 3,
paddings 0 to 2, float32 and float64, pools that overlap or do not tile the
input. The fast convolution (forward plus backward) must also be at least
``NAIVE_FACTOR`` times faster than naive loops and at most ``REF_SLOWDOWN``
times slower than the reference's fast convolution, on the course's shapes,
timed in the same run.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from autograder.checks import assert_close, assert_speedup, time_call
from autograder.values import as_tuple

RTOL = 1e-9
ATOL = 1e-10
RTOL32 = 2e-4
ATOL32 = 1e-4

# (id, N, C, H, W, field_height, field_width, pad, stride)
WINDOW_CASES = [
    ("square_3x3_s1_p1", 2, 3, 7, 7, 3, 3, 1, 1),
    ("tall_3x1_s1_p0", 2, 2, 6, 5, 3, 1, 0, 1),
    ("wide_2x5_s2_p2", 3, 2, 9, 11, 2, 5, 2, 2),
    ("stride3_pad1_not_tiling", 2, 3, 10, 8, 3, 2, 1, 3),
    ("stride2_pad0_not_tiling", 1, 4, 8, 9, 3, 3, 0, 2),
    ("field_equals_input", 2, 2, 4, 5, 4, 5, 0, 1),
    ("pad2_bigger_than_field", 2, 1, 5, 5, 2, 2, 2, 1),
    ("one_pixel_field", 2, 3, 5, 4, 1, 1, 1, 2),
]

# (id, N, C, H, W, F, HH, WW, stride, pad, dtype)
CONV_CASES = [
    ("3x3_s1_p1", 2, 3, 8, 8, 4, 3, 3, 1, 1, "float64"),
    ("5x3_s2_p2", 2, 3, 9, 7, 3, 5, 3, 2, 2, "float64"),
    ("2x4_s3_p0", 3, 2, 11, 13, 5, 2, 4, 3, 0, "float64"),
    ("1x1_s2_p1", 2, 4, 6, 7, 3, 1, 1, 2, 1, "float64"),
    ("7x7_s1_p3_one_image", 1, 2, 9, 8, 2, 7, 7, 1, 3, "float64"),
    ("3x2_s2_p1_float32", 3, 3, 10, 9, 4, 3, 2, 2, 1, "float32"),
]

# (id, N, C, H, W, pool_height, pool_width, stride)
POOL_CASES = [
    ("2x2_s2_tiling", 2, 3, 8, 8, 2, 2, 2),
    ("2x2_s2_odd_input", 2, 2, 7, 9, 2, 2, 2),
    ("3x3_s2_overlapping", 2, 3, 9, 9, 3, 3, 2),
    ("3x2_s3_not_tiling", 3, 2, 10, 11, 3, 2, 3),
    ("1x4_s1", 1, 2, 5, 8, 1, 4, 1),
]

# Speed, on the course's shapes: x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1.
# Forward plus backward, on fresh inputs for every call, every output checked
# against the reference's fast layers. The student's best (what Sandbox.timeit
# counts, after a warm-up, SPEED_REPEAT calls per round) is compared with
# - naive loops (one output value per Python iteration, as the course's naive
#   layers are first written), CPU time of the grader's thread, timed once:
#   another process cannot make it look slower. The reference measured 340x
#   on a heavily loaded 2-core machine (load average 15); NAIVE_FACTOR leaves a
#   wide margin.
# - the reference's fast layers, wall time, best of SPEED_REPEAT calls per
#   round, SPEED_ROUNDS interleaved rounds (the reference measured 1.2x there;
#   the student's side moves 30 MB per call, see timing.TRANSFER_ALLOWANCE_S).
SPEED_X = (100, 3, 31, 31)
SPEED_W = (25, 3, 3, 3)
SPEED_CONV = {"stride": 2, "pad": 1}
NAIVE_FACTOR = 100.0
REF_SLOWDOWN = 3.0
SPEED_ROUNDS = 3
SPEED_REPEAT = 5


def _ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


def _pair(value):
    """(out, cache) from a layer's forward pass, with a readable error otherwise."""
    return as_tuple(value, name="the forward pass's return value (out, cache)", length=2)


def naive_loops_conv(x, w, b, conv_param, dout):
    """Convolution forward and backward with one output value per Python iteration."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = 1 + (H + 2 * pad - HH) // stride
    Wo = 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(xp[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    hs, ws = i * stride, j * stride
                    d = dout[n, f, i, j]
                    dw[f] += d * xp[n, :, hs:hs + HH, ws:ws + WW]
                    dxp[n, :, hs:hs + HH, ws:ws + WW] += d * w[f]
    db = dout.sum(axis=(0, 2, 3))
    return out, (dxp[:, :, pad:pad + H, pad:pad + W], dw, db)


# -- im2col / col2im ------------------------------------------------------------
@pytest.mark.im2col_cython
@pytest.mark.parametrize("case", WINDOW_CASES, ids=_ids(WINDOW_CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_im2col_matches_reference(student, reference, rng, case, dtype):
    _, N, C, H, W, fh, fw, pad, stride = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    expected = reference.im2col_cython.im2col_cython(x, fh, fw, pad, stride)
    got = student.lib.im2col_cython.im2col_cython(x, fh, fw, pad, stride)
    what = (f"im2col_cython(x {x.shape} {dtype}, field {fh}x{fw}, padding {pad}, "
            f"stride {stride})")
    assert isinstance(got, np.ndarray), f"{what} must return an array"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    assert_close(got, expected, name=what, rtol=0, atol=0)


@pytest.mark.col2im_cython
@pytest.mark.parametrize("case", WINDOW_CASES, ids=_ids(WINDOW_CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_col2im_matches_reference(student, reference, rng, case, dtype):
    _, N, C, H, W, fh, fw, pad, stride = case
    Ho = 1 + (H + 2 * pad - fh) // stride
    Wo = 1 + (W + 2 * pad - fw) // stride
    cols = rng.standard_normal((N, C * fh * fw, Ho * Wo)).astype(dtype)
    expected = reference.im2col_cython.col2im_cython(cols, N, C, H, W, fh, fw, pad, stride)
    got = student.lib.im2col_cython.col2im_cython(cols, N, C, H, W, fh, fw, pad, stride)
    what = (f"col2im_cython(cols {cols.shape} {dtype}, x {(N, C, H, W)}, field {fh}x{fw}, "
            f"padding {pad}, stride {stride})")
    assert isinstance(got, np.ndarray), f"{what} must return an array"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    tol = (RTOL32, ATOL32) if dtype == "float32" else (RTOL, ATOL)
    assert_close(got, expected, name=what, rtol=tol[0], atol=tol[1])


# -- fast convolution -----------------------------------------------------------
def _conv_inputs(rng, case):
    _, N, C, H, W, F, HH, WW, stride, pad, dtype = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, {"stride": stride, "pad": pad}


def _tol(dtype):
    return (RTOL32, ATOL32) if dtype == "float32" else (RTOL, ATOL)


@pytest.mark.conv_fast
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_forward_fast(student, reference, rng, case):
    x, w, b, cp = _conv_inputs(rng, case)
    expected, _ = reference.layers.conv_forward_naive(x, w, b, cp)
    out, _ = _pair(student.lib.fast_layers.conv_forward_fast(x, w, b, cp))
    what = f"conv_forward_fast out (x {x.shape} {x.dtype}, w {w.shape}, {cp})"
    assert isinstance(out, np.ndarray), f"{what} must be an array"
    rtol, atol = _tol(case[-1])
    assert_close(out, expected, name=what, rtol=rtol, atol=atol)


@pytest.mark.conv_fast
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_backward_fast(student, reference, rng, case):
    x, w, b, cp = _conv_inputs(rng, case)
    out, ref_cache = reference.layers.conv_forward_naive(x, w, b, cp)
    dout = rng.standard_normal(out.shape).astype(x.dtype)
    expected = reference.layers.conv_backward_naive(dout, ref_cache)
    _, cache = _pair(student.lib.fast_layers.conv_forward_fast(x, w, b, cp))
    grads = as_tuple(student.lib.fast_layers.conv_backward_fast(dout, cache),
                     name="conv_backward_fast's return value (dx, dw, db)", length=3)
    rtol, atol = _tol(case[-1])
    for name, got, exp in zip(("dx", "dw", "db"), grads, expected, strict=True):
        assert_close(got, exp, name=f"conv_backward_fast {name} (x {x.shape} {x.dtype}, "
                     f"w {w.shape}, {cp})", rtol=rtol, atol=atol)


def _speed_inputs(rng: np.random.Generator) -> tuple:
    """Fresh inputs on the course's shapes: (x, w, b, dout)."""
    x = rng.standard_normal(SPEED_X)
    w = rng.standard_normal(SPEED_W)
    b = rng.standard_normal(SPEED_W[0])
    Ho = 1 + (SPEED_X[2] + 2 * SPEED_CONV["pad"] - SPEED_W[2]) // SPEED_CONV["stride"]
    Wo = 1 + (SPEED_X[3] + 2 * SPEED_CONV["pad"] - SPEED_W[3]) // SPEED_CONV["stride"]
    dout = rng.standard_normal((SPEED_X[0], SPEED_W[0], Ho, Wo))
    return x, w, b, dout


def _speed_round(student, reference, rng):
    """One timing round of the student's forward plus backward: fresh inputs for every
    call, every output checked against the reference's fast layers."""
    fl = student.lib.fast_layers
    ref = reference.fast_layers

    def forward_backward(x, w, b, dout):
        out, cache = _pair(fl.conv_forward_fast(x, w, b, SPEED_CONV))
        return out, fl.conv_backward_fast(dout, cache)

    def check(result, x, w, b, dout):
        out, grads = result
        expected, cache = ref.conv_forward_fast(x, w, b, SPEED_CONV)
        assert_close(out, expected, name=f"conv_forward_fast out (x {x.shape})", rtol=RTOL,
                     atol=ATOL)
        assert isinstance(grads, (tuple, list)) and len(grads) == 3, (
            "conv_backward_fast must return (dx, dw, db)")
        for name, got, exp in zip(("dx", "dw", "db"), grads, ref.conv_backward_fast(dout, cache),
                                  strict=True):
            assert_close(got, exp, name=f"conv_backward_fast {name} (x {x.shape})", rtol=RTOL,
                         atol=ATOL)

    return lambda: student.timeit(forward_backward, _speed_inputs, check, rng=rng,
                                  repeat=SPEED_REPEAT, warmup=1,
                                  name="conv_forward_fast + conv_backward_fast")


@pytest.mark.conv_fast
def test_conv_fast_speedup_over_naive_loops(student, reference, rng, seed):
    x, w, b, dout = _speed_inputs(rng)
    assert_speedup(
        _speed_round(student, reference, rng),
        lambda: time_call(naive_loops_conv, x, w, b, SPEED_CONV, dout, repeat=1, warmup=0,
                          clock=time.thread_time),
        at_least=NAIVE_FACTOR, name="conv_forward_fast + conv_backward_fast", seed=seed,
        rounds=1, inputs=f"x {x.shape}, w {w.shape}, {SPEED_CONV}",
        reference_label="naive loops (one output value per iteration)",
        hint="Unfold with im2col_cython and use one matrix product per image, no Python "
             "loops over pixels",
        reference_cpu_time=True,
    )


@pytest.mark.conv_fast
def test_conv_fast_not_slower_than_reference(student, reference, rng, seed):
    x, w, b, dout = _speed_inputs(rng)
    fl = reference.fast_layers

    def reference_once() -> None:
        _, cache = fl.conv_forward_fast(x, w, b, SPEED_CONV)
        fl.conv_backward_fast(dout, cache)

    assert_speedup(
        _speed_round(student, reference, rng),
        lambda: time_call(reference_once, repeat=SPEED_REPEAT, warmup=1),
        at_least=1.0 / REF_SLOWDOWN, name="conv_forward_fast + conv_backward_fast", seed=seed,
        rounds=SPEED_ROUNDS, inputs=f"x {x.shape}, w {w.shape}, {SPEED_CONV}",
        reference_label="the reference's fast layers",
        hint=f"at most {REF_SLOWDOWN:g}x slower than the reference is allowed: compile the "
             "loops to C (typed loop variables, no Python objects inside) and avoid copies",
    )


# -- fast max pooling -------------------------------------------------------------
def _pool_inputs(rng, case):
    _, N, C, H, W, ph, pw, stride = case
    x = rng.standard_normal((N, C, H, W))
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}


@pytest.mark.max_pool_fast
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_max_pool_forward_fast(student, reference, rng, case):
    x, pp = _pool_inputs(rng, case)
    expected, _ = reference.layers.max_pool_forward_naive(x, pp)
    out, _ = _pair(student.lib.fast_layers.max_pool_forward_fast(x, pp))
    assert_close(out, expected, name=f"max_pool_forward_fast out (x {x.shape}, {pp})",
                 rtol=RTOL, atol=ATOL)


@pytest.mark.max_pool_fast
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids(POOL_CASES))
def test_max_pool_backward_fast(student, reference, rng, case):
    x, pp = _pool_inputs(rng, case)
    out, ref_cache = reference.layers.max_pool_forward_naive(x, pp)
    dout = rng.standard_normal(out.shape)
    expected = reference.layers.max_pool_backward_naive(dout, ref_cache)
    _, cache = _pair(student.lib.fast_layers.max_pool_forward_fast(x, pp))
    dx = student.lib.fast_layers.max_pool_backward_fast(dout, cache)
    assert_close(dx, expected, name=f"max_pool_backward_fast dx (x {x.shape}, {pp})",
                 rtol=RTOL, atol=ATOL)
