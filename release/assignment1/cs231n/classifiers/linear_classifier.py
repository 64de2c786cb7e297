"""Linear classifiers trained with minibatch stochastic gradient descent."""

from __future__ import annotations

import numpy as np

from .linear_svm import svm_loss_vectorized
from .softmax import softmax_loss_vectorized


class LinearClassifier:
    """Base class of the linear classifiers: scores = X.dot(W), W of shape (D, C)."""

    def __init__(self) -> None:
        self.W: np.ndarray | None = None

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        learning_rate: float = 1e-3,
        reg: float = 1e-5,
        num_iters: int = 100,
        batch_size: int = 200,
        verbose: bool = False,
    ) -> list[float]:
        """Train this linear classifier with stochastic gradient descent.

        Inputs:
        - X: (N, D) array of training data; there are N training samples each of
          dimension D.
        - y: (N,) array of training labels; y[i] = c means that X[i] has label
          0 <= c < C for C classes.
        - learning_rate: (float) learning rate for optimization.
        - reg: (float) regularization strength.
        - num_iters: (integer) number of steps to take when optimizing.
        - batch_size: (integer) number of training examples to use at each step.
        - verbose: (boolean) if true, print progress during optimization.

        Returns:
        - loss_history: list of length num_iters, the loss at each iteration.
        """
        num_train, dim = X.shape
        num_classes = int(np.max(y)) + 1  # y takes values 0...K-1 where K is the number of classes
        if self.W is None:
            # lazily initialize W
            self.W = 0.001 * np.random.randn(dim, num_classes)

        loss_history: list[float] = []
        for it in range(num_iters):
            X_batch = None
            y_batch = None
            # TODO: sample batch_size elements from the training data and their
            # labels into X_batch (batch_size, D) and y_batch (batch_size,).
            # Sample WITH replacement, using
            # np.random.choice(num_train, batch_size, replace=True) exactly once
            # per iteration (it is faster than sampling without replacement).
            # TODO(linear_train): your code here
            raise NotImplementedError("linear_train: train is not implemented yet (see the TODO above)")

            # evaluate loss and gradient
            loss, grad = self.loss(X_batch, y_batch, reg)
            loss_history.append(float(loss))

            # TODO: update the weights self.W with one vanilla gradient-descent
            # step, using the gradient grad and the learning rate.
            # TODO(linear_train): your code here
            raise NotImplementedError("linear_train: train is not implemented yet (see the TODO above)")

            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")

        return loss_history

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict labels for data points with the trained weights of this classifier.

        Inputs:
        - X: (N, D) array of data; there are N samples each of dimension D.

        Returns:
        - y_pred: (N,) array of predicted labels; y_pred[i] is the predicted
          class of X[i] (an integer in [0, C)).
        """
        y_pred = np.zeros(X.shape[0], dtype=np.int64)
        # TODO: compute the class scores with self.W and store the index of the
        # highest score of each row in y_pred.
        # TODO(linear_predict): your code here
        raise NotImplementedError("linear_predict: predict is not implemented yet (see the TODO above)")
        return y_pred

    def loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, reg: float
    ) -> tuple[float, np.ndarray]:
        """Compute the loss function and its derivative (subclasses override this).

        Inputs:
        - X_batch: (N, D) array of N data points, each of dimension D.
        - y_batch: (N,) array of labels for the minibatch.
        - reg: (float) regularization strength.

        Returns a tuple of:
        - loss: (float) the loss.
        - gradient: (D, C) array, the gradient of the loss with respect to self.W.
        """
        raise NotImplementedError("LinearClassifier.loss: use LinearSVM or Softmax")


class LinearSVM(LinearClassifier):
    """A linear classifier that uses the multiclass SVM loss function."""

    def loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, reg: float
    ) -> tuple[float, np.ndarray]:
        """Multiclass SVM loss and gradient of self.W on the minibatch."""
        return svm_loss_vectorized(self.W, X_batch, y_batch, reg)


class Softmax(LinearClassifier):
    """A linear classifier that uses the softmax + cross-entropy loss function."""

    def loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, reg: float
    ) -> tuple[float, np.ndarray]:
        """Softmax loss and gradient of self.W on the minibatch."""
        return softmax_loss_vectorized(self.W, X_batch, y_batch, reg)
