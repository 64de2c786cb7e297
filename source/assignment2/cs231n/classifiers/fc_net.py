"""A fully connected network of any depth, with optional normalization and dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layer_utils import (
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from ..layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)


class FullyConnectedNet:
    """A multi-layer fully connected neural network with a softmax loss.

    For a network with L layers the architecture is

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    where normalization and dropout are optional, and the block in braces is
    repeated L - 1 times. Its learnable parameters are stored in the
    dictionary self.params; it is trained with the Solver.
    """

    def __init__(
        self,
        hidden_dims: list[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        """Initialize a new FullyConnectedNet.

        Inputs:
        - hidden_dims: list of integers, the size of each hidden layer.
        - input_dim: an integer D, the size of the input.
        - num_classes: an integer C, the number of classes.
        - dropout_keep_ratio: scalar between 0 and 1, the probability of KEEPING
          a unit in dropout; 1 means no dropout at all.
        - normalization: None, 'batchnorm' or 'layernorm'.
        - reg: scalar, L2 regularization strength.
        - weight_scale: scalar, the standard deviation of the random
          initialization of the weights.
        - dtype: numpy dtype (or its name, e.g. "float64") of every parameter
          and of the computation:
          float32 is faster, float64 is needed for numerical gradient checks.
        - seed: if not None, passed to the dropout layers so that the model is
          deterministic (gradient checks rely on it).

        Sets self.params, for the layers i = 1, ..., L (L = len(hidden_dims) + 1):
        - 'W{i}': (in_dim, out_dim) weights, weight_scale * np.random.randn;
        - 'b{i}': (out_dim,) biases, zeros;
        - with normalization, for i = 1, ..., L - 1 only: 'gamma{i}' (out_dim,)
          ones and 'beta{i}' (out_dim,) zeros.
        Every parameter has the given dtype.
        """
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params: dict[str, np.ndarray] = {}

        # TODO: initialize the parameters described in the docstring and store
        # them in self.params.
        ### BEGIN SOLUTION fc_net_init
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = weight_scale * np.random.randn(dims[i - 1], dims[i])
            self.params[f"b{i}"] = np.zeros(dims[i])
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i])
                self.params[f"beta{i}"] = np.zeros(dims[i])
        ### END SOLUTION

        # The dropout layers share one dropout_param; the mode is set in loss().
        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        # Batch normalization keeps running means and variances: one bn_param
        # per normalized layer (self.bn_params[i - 1] for layer i). Layer
        # normalization uses the same list (its params hold only eps).
        self.bn_params: list[dict[str, Any]] = []
        if self.normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        if self.normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Compute the loss and gradient of the network.

        Inputs:
        - X: (N, d_1, ..., d_k) array of input data.
        - y: (N,) array of labels. Optional.

        Returns:
        If y is None, run a TEST-mode forward pass (batchnorm uses its running
        averages, dropout is off) and return:
        - scores: (N, C) array of class scores.

        If y is not None, run a TRAIN-mode forward pass and a backward pass and
        return a tuple of:
        - loss: scalar, the softmax loss plus the L2 regularization
          0.5 * reg * sum over i of np.sum(W{i} * W{i}) (weights only: no
          biases, gammas or betas).
        - grads: dictionary with the keys of self.params, the gradients of the
          loss with respect to the parameters (same shapes).
        """
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"

        # Set the train / test mode of the batchnorm params and of dropout.
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        scores = None
        # TODO: implement the forward pass of the network (the sandwich layers
        # of layer_utils.py help), and store the class scores in scores. Keep
        # every cache for the backward pass.
        ### BEGIN SOLUTION fc_net_loss
        caches = []
        h = X
        for i in range(1, self.num_layers):
            W, b = self.params[f"W{i}"], self.params[f"b{i}"]
            if self.normalization is None:
                h, cache = affine_relu_forward(h, W, b)
            else:
                h, cache = affine_norm_relu_forward(
                    h, W, b, self.params[f"gamma{i}"], self.params[f"beta{i}"],
                    self.bn_params[i - 1], self.normalization,
                )
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)
            caches.append((cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        ### END SOLUTION

        if mode == "test":
            return scores

        loss, grads = 0.0, {}
        # TODO: implement the backward pass: the softmax data loss plus the L2
        # regularization in loss, and the gradient of every parameter in grads.
        ### BEGIN SOLUTION fc_net_loss
        loss, dscores = softmax_loss(scores, y)
        for i in range(1, L + 1):
            W = self.params[f"W{i}"]
            loss += 0.5 * self.reg * float(np.sum(W * W))
        dh, dW, db = affine_backward(dscores, last_cache)
        grads[f"W{L}"], grads[f"b{L}"] = dW, db
        for i in range(L - 1, 0, -1):
            cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            if self.normalization is None:
                dh, dW, db = affine_relu_backward(dh, cache)
            else:
                dh, dW, db, dgamma, dbeta = affine_norm_relu_backward(dh, cache)
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
            grads[f"W{i}"], grads[f"b{i}"] = dW, db
        for i in range(1, L + 1):
            grads[f"W{i}"] = grads[f"W{i}"] + self.reg * self.params[f"W{i}"]
        ### END SOLUTION
        return loss, grads
