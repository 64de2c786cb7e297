"""Fast convolution and max pooling, built on the Cython im2col / col2im.

A convolution is one matrix product per image once the receptive fields are
unfolded into columns (``im2col_cython``); its backward pass is two matrix
products and a fold back (``col2im_cython``). The images are processed a few
at a time, so the column matrix never holds the whole batch: the extra memory
stays bounded (about ``CHUNK_BYTES``) whatever the batch size.

The extension must be compiled first: ``python build_ext.py`` in the folder
that holds ``cs231n`` (see im2col_cython.pyx).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from .im2col_cython import col2im_cython, im2col_cython
except ImportError as exc:  # not compiled yet: the fast layers say so when called
    _IMPORT_ERROR: ImportError | None = exc

    def _missing(*args: Any, **kwargs: Any) -> Any:
        raise ImportError(
            "cs231n.im2col_cython is not compiled: run `python build_ext.py` in the "
            f"folder that holds cs231n, then restart the kernel ({_IMPORT_ERROR})"
        )

    im2col_cython = col2im_cython = _missing
else:
    _IMPORT_ERROR = None

#: Bytes of column matrix processed at a time (at least one image).
CHUNK_BYTES = 2 << 20


def _chunk(per_image_bytes: int) -> int:
    """Number of images per chunk so that their columns take about CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // max(1, per_image_bytes))


def _out_size(size: int, field: int, pad: int, stride: int) -> int:
    if stride < 1 or pad < 0 or size + 2 * pad < field:
        raise ValueError(f"invalid window: size {size}, field {field}, pad {pad}, stride {stride}")
    return 1 + (size + 2 * pad - field) // stride


def conv_forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                        conv_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Fast forward pass of a convolutional layer (same contract as conv_forward_naive).

    Inputs:
    - x: (N, C, H, W) input, float32 or float64.
    - w: (F, C, HH, WW) filters (any HH, WW).
    - b: (F,) biases.
    - conv_param: dictionary with 'stride' (>= 1) and 'pad' (>= 0).

    Returns a tuple of:
    - out: (N, F, H', W') output of dtype result_type(x, w, b), where
      H' = 1 + (H + 2 * pad - HH) // stride and W' = 1 + (W + 2 * pad - WW) // stride.
    - cache: (x, w, b, conv_param), for conv_backward_im2col (the columns are
      not kept: the backward pass unfolds the input again, chunk by chunk).
    """
    out = None
    # TODO: for each chunk of images x[n0:n1] (see _chunk), unfold it with
    # im2col_cython into cols of shape (n, C*HH*WW, H'*W'), multiply by the
    # filters seen as a (F, C*HH*WW) matrix (np.matmul broadcasts over the
    # images and can write straight into the output with out=...), then add
    # the biases. Compute in the dtype of the result.
    ### BEGIN SOLUTION conv_fast
    stride, pad = int(conv_param["stride"]), int(conv_param["pad"])
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = _out_size(H, HH, pad, stride), _out_size(W, WW, pad, stride)
    dtype = np.result_type(x, w, b)
    if dtype != np.float32:
        dtype = np.dtype(np.float64)
    x_c = np.ascontiguousarray(x, dtype=dtype)
    w_rows = np.ascontiguousarray(w, dtype=dtype).reshape(F, -1)
    K, P = C * HH * WW, Ho * Wo
    flat = np.empty((N, F, P), dtype=dtype)
    step = _chunk(K * P * dtype.itemsize)
    buf = np.empty((min(step, N), K, P), dtype=dtype)
    bias = np.asarray(b, dtype=dtype).reshape(1, F, 1)
    for n0 in range(0, N, step):
        n1 = min(N, n0 + step)
        cols = im2col_cython(x_c[n0:n1], HH, WW, pad, stride, buf[: n1 - n0])
        np.matmul(w_rows, cols, out=flat[n0:n1])
        flat[n0:n1] += bias  # while the chunk's output is still in cache
    out = flat.reshape(N, F, Ho, Wo)
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_im2col(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast backward pass of a convolutional layer.

    Inputs:
    - dout: (N, F, H', W') upstream derivatives.
    - cache: (x, w, b, conv_param) from conv_forward_im2col.

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x.
    - dw: (F, C, HH, WW) gradient with respect to w.
    - db: (F,) gradient with respect to b.
    """
    dx, dw, db = None, None, None
    # TODO: chunk by chunk, unfold x again (cols), then
    #   dw += sum over the chunk's images of dout[n] @ cols[n].T   (F, C*HH*WW)
    #   dcols = w_rows.T @ dout[n]  for every image n              (C*HH*WW, H'*W')
    #   dx[n0:n1] = col2im_cython(dcols, ...)
    # and db is the sum of dout over every axis but the filters'.
    ### BEGIN SOLUTION conv_fast
    x, w, b, conv_param = cache
    stride, pad = int(conv_param["stride"]), int(conv_param["pad"])
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    dtype = np.result_type(x, w, dout)
    if dtype != np.float32:
        dtype = np.dtype(np.float64)
    x_c = np.ascontiguousarray(x, dtype=dtype)
    w_rows = np.ascontiguousarray(w, dtype=dtype).reshape(F, -1)
    d_flat = np.ascontiguousarray(dout, dtype=dtype).reshape(N, F, Ho * Wo)
    K, P = C * HH * WW, Ho * Wo
    dx = np.empty((N, C, H, W), dtype=dtype)
    dw_rows = np.zeros((F, K), dtype=dtype)
    step = _chunk(K * P * dtype.itemsize)
    buf = np.empty((min(step, N), K, P), dtype=dtype)
    dbuf = np.empty((min(step, N), K, P), dtype=dtype)
    part = np.empty((min(step, N), F, K), dtype=dtype)
    for n0 in range(0, N, step):
        n1 = min(N, n0 + step)
        m = n1 - n0
        cols = im2col_cython(x_c[n0:n1], HH, WW, pad, stride, buf[:m])
        np.matmul(d_flat[n0:n1], cols.transpose(0, 2, 1), out=part[:m])
        dw_rows += part[:m].sum(axis=0)
        np.matmul(w_rows.T, d_flat[n0:n1], out=dbuf[:m])
        dx[n0:n1] = col2im_cython(dbuf[:m], m, C, H, W, HH, WW, pad, stride)
    dw = dw_rows.reshape(w.shape)
    db = d_flat.sum(axis=(0, 2))
    ### END SOLUTION
    return dx, dw, db


def max_pool_forward_fast(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Fast forward pass of a max-pooling layer (same contract as max_pool_forward_naive).

    No padding; the pools need not tile the input (rows and columns that no
    pool covers are ignored) and may overlap.

    Inputs:
    - x: (N, C, H, W) input.
    - pool_param: dictionary with 'pool_height', 'pool_width' and 'stride'.

    Returns a tuple of:
    - out: (N, C, H', W') output of x's dtype, where
      H' = 1 + (H - pool_height) // stride and W' = 1 + (W - pool_width) // stride.
    - cache: object to give to max_pool_backward_fast.
    """
    out, cache = None, None
    # TODO: treat every channel as an image of one channel (reshape to
    # (N*C, 1, H, W)), unfold the pools with im2col_cython (padding 0), and
    # take the maximum (and remember where it is, np.argmax) over the pool axis.
    ### BEGIN SOLUTION max_pool_fast
    ph, pw, stride = (int(pool_param[k]) for k in ("pool_height", "pool_width", "stride"))
    N, C, H, W = x.shape
    Ho, Wo = _out_size(H, ph, 0, stride), _out_size(W, pw, 0, stride)
    xr = np.ascontiguousarray(x).reshape(N * C, 1, H, W)
    if xr.dtype not in (np.float32, np.float64):
        xr = xr.astype(np.float64)
    M, K, P = N * C, ph * pw, Ho * Wo
    # Which element of its pool is the maximum: the smallest integer type will do.
    idx = np.empty((M, P), dtype=np.min_scalar_type(max(K - 1, 0)))
    best = np.empty((M, P), dtype=xr.dtype)
    step = _chunk(K * P * xr.dtype.itemsize)
    buf = np.empty((min(step, M), K, P), dtype=xr.dtype)
    for m0 in range(0, M, step):  # a few channels at a time: bounded extra memory
        m1 = min(M, m0 + step)
        cols = im2col_cython(xr[m0:m1], ph, pw, 0, stride, buf[: m1 - m0])
        idx[m0:m1] = np.argmax(cols, axis=1)  # the first maximum, as in the naive version
        np.max(cols, axis=1, out=best[m0:m1])
    out = best.reshape(N, C, Ho, Wo).astype(x.dtype, copy=False)
    cache = (x.shape, idx, pool_param, xr.dtype.name)
    ### END SOLUTION
    return out, cache


def max_pool_backward_fast(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Fast backward pass of a max-pooling layer.

    The gradient of each pool goes to the position of its maximum (the first
    one in row-major order when there are ties); overlapping pools add up.

    Inputs:
    - dout: (N, C, H', W') upstream derivatives.
    - cache: from max_pool_forward_fast.

    Returns:
    - dx: (N, C, H, W) gradient with respect to the input.
    """
    dx = None
    # TODO: scatter dout into a zero column array at the positions of the
    # maxima, then fold it back with col2im_cython.
    ### BEGIN SOLUTION max_pool_fast
    (N, C, H, W), idx, pool_param, dtype = cache
    ph, pw, stride = (int(pool_param[k]) for k in ("pool_height", "pool_width", "stride"))
    dtype = np.result_type(dtype, dout)
    if dtype != np.float32:
        dtype = np.dtype(np.float64)
    M, K, P = N * C, ph * pw, idx.shape[1]
    d_flat = dout.reshape(M, 1, P).astype(dtype, copy=False)
    dx = np.empty((M, 1, H, W), dtype=dtype)
    step = _chunk(K * P * dtype.itemsize)
    dcols = np.empty((min(step, M), K, P), dtype=dtype)
    for m0 in range(0, M, step):
        m1 = min(M, m0 + step)
        part = dcols[: m1 - m0]
        part.fill(0)
        np.put_along_axis(part, idx[m0:m1, None, :].astype(np.intp), d_flat[m0:m1], axis=1)
        dx[m0:m1] = col2im_cython(part, m1 - m0, 1, H, W, ph, pw, 0, stride)
    dx = dx.reshape(N, C, H, W)
    ### END SOLUTION
    return dx


# The names the notebook and the sandwich layers use.
conv_forward_fast = conv_forward_im2col
conv_backward_fast = conv_backward_im2col
