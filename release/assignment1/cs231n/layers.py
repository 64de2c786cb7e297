"""Forward and backward passes of the basic layers, and the classification losses."""

from __future__ import annotations

from typing import Any

import numpy as np


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of an affine (fully connected) layer.

    The input x has shape (N, d_1, ..., d_k): a minibatch of N examples, each
    example x[i] of shape (d_1, ..., d_k). Each example is reshaped into a vector
    of dimension D = d_1 * ... * d_k, then transformed to an output vector of
    dimension M.

    Inputs:
    - x: (N, d_1, ..., d_k) array of input data.
    - w: (D, M) array of weights.
    - b: (M,) array of biases.

    Returns a tuple of:
    - out: (N, M) array of outputs.
    - cache: (x, w, b), kept for the backward pass.
    """
    out = None
    # TODO: compute the affine forward pass and store the result in out. You
    # need to reshape the input into rows first.
    # TODO(affine_forward): your code here
    raise NotImplementedError("affine_forward: affine_forward is not implemented yet (see the TODO above)")
    cache = (x, w, b)
    return out, cache


def affine_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of an affine (fully connected) layer.

    Inputs:
    - dout: (N, M) array, the upstream derivative.
    - cache: the tuple (x, w, b) from affine_forward:
      - x: (N, d_1, ..., d_k) input data.
      - w: (D, M) weights.
      - b: (M,) biases.

    Returns a tuple of:
    - dx: (N, d_1, ..., d_k) gradient with respect to x (same shape as x).
    - dw: (D, M) gradient with respect to w.
    - db: (M,) gradient with respect to b.
    """
    x, w, b = cache
    dx, dw, db = None, None, None
    # TODO: implement the affine backward pass. dx must have the original shape
    # of x.
    # TODO(affine_backward): your code here
    raise NotImplementedError("affine_backward: affine_backward is not implemented yet (see the TODO above)")
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of a layer of rectified linear units (ReLUs).

    Inputs:
    - x: array of inputs, of any shape.

    Returns a tuple of:
    - out: array of outputs, of the same shape as x.
    - cache: x, kept for the backward pass.
    """
    out = None
    # TODO: implement the ReLU forward pass (elementwise max(0, x)).
    # TODO(relu_forward): your code here
    raise NotImplementedError("relu_forward: relu_forward is not implemented yet (see the TODO above)")
    cache = x
    return out, cache


def relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Backward pass of a layer of rectified linear units (ReLUs).

    Inputs:
    - dout: array of upstream derivatives, of any shape.
    - cache: x, the input of relu_forward, of the same shape as dout.

    Returns:
    - dx: array, gradient with respect to x, of the same shape as x.
    """
    dx, x = None, cache
    # TODO: implement the ReLU backward pass (the gradient flows where x > 0).
    # TODO(relu_backward): your code here
    raise NotImplementedError("relu_backward: relu_backward is not implemented yet (see the TODO above)")
    return dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss and gradient of the multiclass SVM (hinge loss, delta = 1).

    Inputs:
    - x: (N, C) array of scores; x[i, j] is the score of the j-th class for the
      i-th input.
    - y: (N,) array of integer labels; y[i] is the label of x[i], 0 <= y[i] < C.

    Returns a tuple of:
    - loss: (float) the hinge loss averaged over the N examples.
    - dx: (N, C) array, gradient of the loss with respect to x.
    """
    loss, dx = None, None
    # TODO: compute the multiclass SVM loss and its gradient (no regularization
    # here: the model adds it).
    # TODO(svm_loss): your code here
    raise NotImplementedError("svm_loss: svm_loss is not implemented yet (see the TODO above)")
    return loss, dx


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss and gradient of softmax classification (cross-entropy).

    Inputs:
    - x: (N, C) array of scores; x[i, j] is the score of the j-th class for the
      i-th input.
    - y: (N,) array of integer labels; y[i] is the label of x[i], 0 <= y[i] < C.

    Returns a tuple of:
    - loss: (float) the cross-entropy loss averaged over the N examples.
    - dx: (N, C) array, gradient of the loss with respect to x.
    """
    loss, dx = None, None
    # TODO: compute the softmax loss and its gradient, numerically stable
    # (shift every row by its maximum), no regularization.
    # TODO(softmax_loss): your code here
    raise NotImplementedError("softmax_loss: softmax_loss is not implemented yet (see the TODO above)")
    return loss, dx
