"""Softmax (cross-entropy) loss for a linear classifier, naive and vectorized."""

from __future__ import annotations

import numpy as np


def softmax_loss_naive(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient, naive implementation (with loops).

    Inputs have dimension D, there are C classes, and we operate on minibatches
    of N examples.

    Inputs:
    - W: (D, C) array of weights.
    - X: (N, D) array; X[i] is one example.
    - y: (N,) array of integer labels; y[i] = c means X[i] has label c, 0 <= c < C.
    - reg: (float) regularization strength.

    Returns a tuple of:
    - loss: (float) the cross-entropy loss averaged over the N examples plus
      reg * np.sum(W * W).
    - dW: (D, C) array, the gradient of the loss with respect to W.
    """
    loss = 0.0
    dW = np.zeros(W.shape)
    # TODO: loop over the examples (and classes) to compute the softmax loss and
    # its gradient. Keep it numerically stable: subtract the maximum score of a
    # row from its scores before exponentiating. Average over the N examples,
    # then add reg * np.sum(W * W) to the loss and 2 * reg * W to dW.
    # TODO(softmax_loss_naive): your code here
    raise NotImplementedError("softmax_loss_naive: softmax_loss_naive is not implemented yet (see the TODO above)")
    return loss, dW


def softmax_loss_vectorized(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient, vectorized implementation (no loops).

    Inputs and outputs are the same as softmax_loss_naive:
    - W: (D, C) array of weights.
    - X: (N, D) array of examples.
    - y: (N,) array of integer labels in [0, C).
    - reg: (float) regularization strength.

    Returns a tuple of:
    - loss: (float) averaged cross-entropy loss plus reg * np.sum(W * W).
    - dW: (D, C) array, the gradient of the loss with respect to W.
    """
    loss = 0.0
    dW = np.zeros(W.shape)
    # TODO: compute the softmax loss and its gradient without any explicit loop.
    # Keep it numerically stable (shift every row of scores by its maximum).
    # Do not forget the regularization terms.
    # TODO(softmax_loss_vectorized): your code here
    raise NotImplementedError("softmax_loss_vectorized: softmax_loss_vectorized is not implemented yet (see the TODO above)")
    return loss, dW
