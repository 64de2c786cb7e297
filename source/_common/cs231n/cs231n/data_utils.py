"""CIFAR-10 loading for the notebooks: thin wrappers around ``coursedata.cifar10``."""

from __future__ import annotations

from typing import Any

import numpy as np


def load_CIFAR10(ROOT: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the CIFAR-10 batches found in the folder ROOT.

    Returns a tuple of:
    - Xtr: (N_train, 32, 32, 3) float64 training images.
    - Ytr: (N_train,) int64 training labels.
    - Xte: (N_test, 32, 32, 3) float64 test images.
    - Yte: (N_test,) int64 test labels.
    """
    from coursedata import cifar10

    return cifar10.load(ROOT)


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
) -> dict[str, Any]:
    """Load CIFAR-10 from the course data directory and preprocess it for the classifiers.

    Returns a dict with X_train, y_train, X_val, y_val, X_test, y_test; images
    are channels-first (N, 3, 32, 32) float64, mean-subtracted when
    subtract_mean. Sizes larger than the data are clipped (with a warning).
    """
    from coursedata import cifar10

    return cifar10.prepare(
        num_training=num_training,
        num_validation=num_validation,
        num_test=num_test,
        subtract_mean=subtract_mean,
        channels_first=True,
    )
