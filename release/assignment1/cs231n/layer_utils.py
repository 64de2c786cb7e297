"""Convenience "sandwich" layers built from the layers in layers.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import affine_backward, affine_forward, relu_backward, relu_forward


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
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of the affine-relu convenience layer.

    Inputs:
    - dout: (N, M) upstream derivative.
    - cache: the cache from affine_relu_forward.

    Returns a tuple of:
    - dx: gradient with respect to x (same shape as x), dw: (D, M), db: (M,).
    """
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db
