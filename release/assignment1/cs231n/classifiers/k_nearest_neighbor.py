"""A k-nearest-neighbour classifier with L2 (Euclidean) distance."""

from __future__ import annotations

import numpy as np


class KNearestNeighbor:
    """A kNN classifier with L2 distance.

    Training only memorises the data; prediction compares each test point with
    every training point.
    """

    def __init__(self) -> None:
        self.X_train: np.ndarray | None = None
        self.y_train: np.ndarray | None = None

    def train(self, X: np.ndarray, y: np.ndarray) -> None:
        """Memorise the training data.

        Inputs:
        - X: (num_train, D) array of training points.
        - y: (num_train,) array of integer labels; y[i] is the label of X[i].
        """
        self.X_train = np.asarray(X)
        self.y_train = np.asarray(y)

    def predict(self, X: np.ndarray, k: int = 1, num_loops: int = 0) -> np.ndarray:
        """Predict labels for test data.

        Inputs:
        - X: (num_test, D) array of test points.
        - k: the number of nearest neighbours that vote for the label.
        - num_loops: which distance implementation to use (0, 1 or 2 Python loops).

        Returns:
        - y_pred: (num_test,) array of predicted labels; y_pred[i] is the label of X[i].
        """
        if num_loops == 0:
            dists = self.compute_distances_no_loops(X)
        elif num_loops == 1:
            dists = self.compute_distances_one_loop(X)
        elif num_loops == 2:
            dists = self.compute_distances_two_loops(X)
        else:
            raise ValueError(f"Invalid value {num_loops} for num_loops (use 0, 1 or 2)")
        return self.predict_labels(dists, k=k)

    def compute_distances_two_loops(self, X: np.ndarray) -> np.ndarray:
        """L2 distances between each test point and each training point, two loops.

        Inputs:
        - X: (num_test, D) array of test points.

        Returns:
        - dists: (num_test, num_train) array; dists[i, j] is the Euclidean
          distance between the i-th test point X[i] and the j-th training point
          self.X_train[j].
        """
        num_test = X.shape[0]
        num_train = self.X_train.shape[0]
        dists = np.zeros((num_test, num_train))
        for i in range(num_test):
            for j in range(num_train):
                # TODO: compute the L2 distance between the i-th test point and
                # the j-th training point and store it in dists[i, j]. Use numpy
                # on the two row vectors; do not loop over the dimension and do
                # not use np.linalg.norm().
                # TODO(knn_two_loops): your code here
                raise NotImplementedError("knn_two_loops: compute_distances_two_loops is not implemented yet (see the TODO above)")
        return dists

    def compute_distances_one_loop(self, X: np.ndarray) -> np.ndarray:
        """L2 distances between each test point and each training point, one loop.

        Inputs:
        - X: (num_test, D) array of test points.

        Returns:
        - dists: (num_test, num_train) array; dists[i, j] is the Euclidean
          distance between X[i] and self.X_train[j].
        """
        num_test = X.shape[0]
        num_train = self.X_train.shape[0]
        dists = np.zeros((num_test, num_train))
        for i in range(num_test):
            # TODO: compute the L2 distances between the i-th test point and all
            # training points at once (broadcasting), and store them in
            # dists[i, :]. Do not use np.linalg.norm().
            # TODO(knn_one_loop): your code here
            raise NotImplementedError("knn_one_loop: compute_distances_one_loop is not implemented yet (see the TODO above)")
        return dists

    def compute_distances_no_loops(self, X: np.ndarray) -> np.ndarray:
        """L2 distances between each test point and each training point, no loops.

        Inputs:
        - X: (num_test, D) array of test points.

        Returns:
        - dists: (num_test, num_train) array; dists[i, j] is the Euclidean
          distance between X[i] and self.X_train[j].
        """
        num_test = X.shape[0]
        num_train = self.X_train.shape[0]
        dists = np.zeros((num_test, num_train))
        # TODO: compute all the distances without any explicit Python loop and
        # store them in dists. Hint: expand ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2;
        # the cross term is a single matrix multiplication, the squared norms
        # broadcast. Rounding can make tiny squared distances slightly negative:
        # clamp them to 0 before the square root. Do not use np.linalg.norm()
        # or scipy.
        # TODO(knn_no_loops): your code here
        raise NotImplementedError("knn_no_loops: compute_distances_no_loops is not implemented yet (see the TODO above)")
        return dists

    def predict_labels(self, dists: np.ndarray, k: int = 1) -> np.ndarray:
        """Predict a label for each test point from its distances to the training points.

        The k training points nearest to the test point vote; the most common
        label among them wins. Ties between labels with the same number of votes
        are broken toward the SMALLER label.

        Inputs:
        - dists: (num_test, num_train) array; dists[i, j] is the distance
          between the i-th test point and the j-th training point.
        - k: the number of nearest neighbours that vote.

        Returns:
        - y_pred: (num_test,) array of predicted labels; y_pred[i] is the label
          of the i-th test point.
        """
        num_test = dists.shape[0]
        y_pred = np.zeros(num_test, dtype=self.y_train.dtype)
        for i in range(num_test):
            # TODO: find the labels of the k nearest training points of the i-th
            # test point (hint: np.argsort), then store the most common of those
            # labels in y_pred[i]. Break ties toward the smaller label.
            # TODO(knn_predict_labels): your code here
            raise NotImplementedError("knn_predict_labels: predict_labels is not implemented yet (see the TODO above)")
        return y_pred
