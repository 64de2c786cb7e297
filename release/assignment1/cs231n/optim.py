"""First-order update rules used by the Solver.

Every update rule has the interface::

    def update(w, dw, config=None) -> (next_w, config)

Inputs:
- w: array of the current weights.
- dw: array of the same shape as w, the gradient of the loss with respect to w.
- config: dictionary of hyperparameters (learning rate, ...) and of any state
  the rule keeps between calls (momentum, ...).

Returns a tuple of:
- next_w: the weights after the update.
- config: the config dictionary to pass to the next call.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sgd(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Vanilla stochastic gradient descent.

    config:
    - learning_rate: scalar learning rate (default 1e-2).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config
