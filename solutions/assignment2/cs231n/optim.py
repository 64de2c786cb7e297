"""First-order update rules used by the Solver.

Every update rule has the interface::

    def update(w, dw, config=None) -> (next_w, config)

Inputs:
- w: array of the current weights.
- dw: array of the same shape as w, the gradient of the loss with respect to w.
- config: dictionary of hyperparameters (learning rate, ...) and of any state
  the rule keeps between calls (velocity, moving averages, ...). A rule fills
  in its defaults with config.setdefault and stores its state in config, so
  that the Solver can hand the returned config to the next call.

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


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Stochastic gradient descent with momentum.

    v = momentum * v - learning_rate * dw, then w = w + v.

    config:
    - learning_rate: scalar learning rate (default 1e-2).
    - momentum: scalar between 0 and 1 (default 0.9); 0 gives plain sgd.
    - velocity: array of the same shape as w, the moving average of the
      gradients (zeros when absent). Store the new velocity here.
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))

    next_w = None
    # TODO: implement the momentum update; store the updated velocity in v.
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    return next_w, config


def rmsprop(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """RMSProp: a moving average of squared gradients sets a per-parameter step.

    cache = decay_rate * cache + (1 - decay_rate) * dw**2, then
    w = w - learning_rate * dw / (sqrt(cache) + epsilon).

    config:
    - learning_rate: scalar learning rate (default 1e-2).
    - decay_rate: scalar between 0 and 1, the decay of the squared-gradient
      average (default 0.99).
    - epsilon: small scalar that avoids dividing by zero (default 1e-8).
    - cache: array of the same shape as w, the moving average of the squared
      gradients (zeros when absent). Store the new cache in config['cache'].
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))

    next_w = None
    # TODO: implement the RMSProp update; store the new cache in config['cache'].
    decay = config["decay_rate"]
    config["cache"] = decay * config["cache"] + (1 - decay) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(config["cache"]) + config["epsilon"])
    return next_w, config


def adam(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adam: moving averages of the gradient and of its square, with bias correction.

    With t incremented first (t = t + 1):
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t)
    w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config:
    - learning_rate: scalar learning rate (default 1e-3).
    - beta1: decay of the first moment (default 0.9).
    - beta2: decay of the second moment (default 0.999).
    - epsilon: small scalar that avoids dividing by zero (default 1e-8).
    - m: array of the same shape as w, the first moment (zeros when absent).
    - v: array of the same shape as w, the second moment (zeros when absent).
    - t: the number of updates made so far (default 0).
    Store the new m, v and t in config.
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)

    next_w = None
    # TODO: implement the Adam update (increment t BEFORE the bias correction)
    # and store the new m, v and t in config.
    b1, b2 = config["beta1"], config["beta2"]
    config["t"] += 1
    t = config["t"]
    config["m"] = b1 * config["m"] + (1 - b1) * dw
    config["v"] = b2 * config["v"] + (1 - b2) * dw * dw
    m_hat = config["m"] / (1 - b1**t)
    v_hat = config["v"] / (1 - b2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return next_w, config
