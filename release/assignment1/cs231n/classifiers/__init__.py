"""Classifiers of Assignment 1."""

from .fc_net import TwoLayerNet
from .k_nearest_neighbor import KNearestNeighbor
from .linear_classifier import LinearClassifier, LinearSVM, Softmax
from .linear_svm import svm_loss_naive, svm_loss_vectorized
from .softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "KNearestNeighbor",
    "LinearClassifier",
    "LinearSVM",
    "Softmax",
    "TwoLayerNet",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "svm_loss_naive",
    "svm_loss_vectorized",
]
