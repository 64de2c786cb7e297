"""Multiclass SVM (hinge) loss for a linear classifier, naive and vectorized."""

from __future__ import annotations

import numpy as np


def svm_loss_naive(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Structured SVM loss and gradient, naive implementation (with loops).

    Inputs have dimension D, there are C classes, and we operate on minibatches
    of N examples.

    Inputs:
    - W: (D, C) array of weights.
    - X: (N, D) array; X[i] is one example.
    - y: (N,) array of integer labels; y[i] = c means X[i] has label c, 0 <= c < C.
    - reg: (float) regularization strength.

    Returns a tuple of:
    - loss: (float) the data loss averaged over the N examples plus
      reg * np.sum(W * W).
    - dW: (D, C) array, the gradient of the loss with respect to W.
    """
    dW = np.zeros(W.shape)
    loss = 0.0
    # TODO: loop over the examples i and the classes j. For every j != y[i],
    # the margin is scores[j] - scores[y[i]] + 1 (delta = 1) with
    # scores = X[i].dot(W); each positive margin adds to the loss and to the
    # gradient (X[i] to column j of dW, -X[i] to column y[i]). Average the loss
    # and dW over the N examples, then add the regularization
    # reg * np.sum(W * W) to the loss and its gradient 2 * reg * W to dW.
    # TODO(svm_loss_naive): your code here
    raise NotImplementedError("svm_loss_naive: svm_loss_naive is not implemented yet (see the TODO above)")
    return loss, dW


def svm_loss_vectorized(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Structured SVM loss and gradient, vectorized implementation (no loops).

    Inputs and outputs are the same as svm_loss_naive:
    - W: (D, C) array of weights.
    - X: (N, D) array of examples.
    - y: (N,) array of integer labels in [0, C).
    - reg: (float) regularization strength.

    Returns a tuple of:
    - loss: (float) averaged hinge loss plus reg * np.sum(W * W).
    - dW: (D, C) array, the gradient of the loss with respect to W.
    """
    loss = 0.0
    dW = np.zeros(W.shape)
    # TODO: compute the loss and the gradient without any explicit loop.
    # Hint: compute the (N, C) score matrix, the (N, C) margins (zero for the
    # correct classes), then an (N, C) coefficient matrix saying how much each
    # example row contributes to each column of dW; dW is then one matrix
    # product. Do not forget the regularization terms.
    # TODO(svm_loss_vectorized): your code here
    raise NotImplementedError("svm_loss_vectorized: svm_loss_vectorized is not implemented yet (see the TODO above)")
    return loss, dW
