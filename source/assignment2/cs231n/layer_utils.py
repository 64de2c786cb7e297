"""Convenience "sandwich" layers built from the layers in layers.py.

Each sandwich layer has the same contract as a layer: ``*_forward(...) ->
(out, cache)`` and ``*_backward(dout, cache) -> gradients``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    conv_backward_naive,
    conv_forward_naive,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

# ---------------------------------------------------------------------------
# The convolution and pooling implementations the conv sandwich layers use.
# This is the ONLY place to change to switch them (e.g. to fast_layers): the
# sandwich functions below look these names up at call time.
conv_forward = conv_forward_naive
conv_backward = conv_backward_naive
max_pool_forward = max_pool_forward_naive
max_pool_backward = max_pool_backward_naive
# ---------------------------------------------------------------------------


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """An affine transform followed by a ReLU.

    Inputs:
    - x: (N, d_1, ..., d_k) input to the affine layer.
    - w: (D, M) weights and b: (M,) biases of the affine layer.

    Returns a tuple of:
    - out: (N, M) output of the ReLU.
    - cache: object to give to the backward pass.
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of affine_relu: returns dx (shape of x), dw (D, M), db (M,)."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def affine_norm_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    norm_param: dict[str, Any],
    normalization: str,
) -> tuple[np.ndarray, Any]:
    """An affine transform, a normalization, then a ReLU.

    Inputs:
    - x: (N, d_1, ..., d_k) input; w: (D, M) weights; b: (M,) biases.
    - gamma, beta: (M,) scale and shift of the normalization.
    - norm_param: bn_param (batchnorm) or ln_param (layernorm).
    - normalization: 'batchnorm' or 'layernorm'.

    Returns a tuple of:
    - out: (N, M) output of the ReLU.
    - cache: object to give to the backward pass.
    """
    a, fc_cache = affine_forward(x, w, b)
    if normalization == "batchnorm":
        an, norm_cache = batchnorm_forward(a, gamma, beta, norm_param)
    elif normalization == "layernorm":
        an, norm_cache = layernorm_forward(a, gamma, beta, norm_param)
    else:
        raise ValueError(f'Unknown normalization "{normalization}"')
    out, relu_cache = relu_forward(an)
    return out, (fc_cache, norm_cache, relu_cache, normalization)


def affine_norm_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """Backward pass of affine_norm_relu: returns dx, dw, db, dgamma, dbeta."""
    fc_cache, norm_cache, relu_cache, normalization = cache
    dan = relu_backward(dout, relu_cache)
    if normalization == "batchnorm":
        da, dgamma, dbeta = batchnorm_backward(dan, norm_cache)
    else:
        da, dgamma, dbeta = layernorm_backward(dan, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """A convolution followed by a ReLU.

    Inputs:
    - x: (N, C, H, W) input; w: (F, C, HH, WW) filters; b: (F,) biases.
    - conv_param: the convolution's stride and pad.

    Returns a tuple of:
    - out: (N, F, H', W') output of the ReLU.
    - cache: object to give to the backward pass.
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of conv_relu: returns dx, dw, db."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward(da, conv_cache)


def conv_bn_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    conv_param: dict[str, Any],
    bn_param: dict[str, Any],
) -> tuple[np.ndarray, Any]:
    """A convolution, spatial batch normalization, then a ReLU.

    gamma, beta: (F,) scale and shift of the spatial batch normalization.
    Returns (out, cache) with out of shape (N, F, H', W').
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """Backward pass of conv_bn_relu: returns dx, dw, db, dgamma, dbeta."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    conv_param: dict[str, Any],
    pool_param: dict[str, Any],
) -> tuple[np.ndarray, Any]:
    """A convolution, a ReLU, then max pooling.

    Inputs:
    - x: (N, C, H, W) input; w: (F, C, HH, WW) filters; b: (F,) biases.
    - conv_param: the convolution's stride and pad.
    - pool_param: the pooling's pool_height, pool_width and stride.

    Returns a tuple of:
    - out: output of the pooling layer.
    - cache: object to give to the backward pass.
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of conv_relu_pool: returns dx, dw, db."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward(da, conv_cache)
