"""A three-layer convolutional network."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from ..layers import affine_backward, affine_forward, softmax_loss


class ThreeLayerConvNet:
    """A three-layer convolutional network with the architecture

        conv - relu - 2x2 max pool - affine - relu - affine - softmax

    The network operates on minibatches of data of shape (N, C, H, W): N
    images, each of height H and width W with C input channels. The
    convolution keeps the spatial size (stride 1, zero padding
    (filter_size - 1) // 2, filter_size odd); the pooling halves it (pools of
    2x2 with stride 2, a last odd row or column is dropped).

    The convolution and pooling used are those of layer_utils (the naive ones,
    unless the notebook switches layer_utils to the fast layers).
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
    ) -> None:
        """Initialize a new network.

        Inputs:
        - input_dim: tuple (C, H, W), the size of one input image.
        - num_filters: F, the number of filters of the convolutional layer.
        - filter_size: the (odd) width and height of the filters.
        - hidden_dim: the number of units of the hidden affine layer.
        - num_classes: the number of scores the final affine layer produces.
        - weight_scale: the standard deviation of the random initialization of
          the weights.
        - reg: scalar, L2 regularization strength.
        - dtype: numpy dtype (or its name) of the parameters and of the
          computation (float64 for gradient checks).

        Sets self.params:
        - 'W1': (F, C, filter_size, filter_size) filters, 'b1': (F,);
        - 'W2': (F * (H // 2) * (W // 2), hidden_dim) weights, 'b2': (hidden_dim,);
        - 'W3': (hidden_dim, num_classes) weights, 'b3': (num_classes,);
        weights weight_scale * np.random.randn(...), biases zeros, every
        parameter of the given dtype.
        """
        self.params: dict[str, np.ndarray] = {}
        self.reg = reg
        self.dtype = dtype
        # TODO: initialize the weights and biases as the docstring says.
        # TODO(three_layer_convnet): your code here
        raise NotImplementedError("three_layer_convnet: __init__ is not implemented yet (see the TODO above)")
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores, or the loss and the gradients, for a minibatch.

        Inputs:
        - X: (N, C, H, W) array of input data.
        - y: (N,) array of integer labels in [0, num_classes), or None.

        Returns:
        If y is None:
        - scores: (N, num_classes) array of class scores.
        If y is not None, a tuple of:
        - loss: scalar, the softmax loss plus
          0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3))
          (weights only, no biases).
        - grads: dictionary with the same keys as self.params, the gradient of
          the loss with respect to each parameter (same shape and dtype).
        """
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        W3, b3 = self.params["W3"], self.params["b3"]
        filter_size = W1.shape[2]
        conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        X = X.astype(self.dtype, copy=False)

        scores = None
        # TODO: the forward pass: conv_relu_pool_forward, affine_relu_forward,
        # affine_forward (layer_utils.py and layers.py); store the class
        # scores in scores.
        # TODO(three_layer_convnet): your code here
        raise NotImplementedError("three_layer_convnet: loss is not implemented yet (see the TODO above)")

        if y is None:
            return scores

        loss, grads = 0.0, {}
        # TODO: the backward pass: softmax_loss, then the backward functions
        # in reverse order; add the L2 regularization (loss and gradients).
        # TODO(three_layer_convnet): your code here
        raise NotImplementedError("three_layer_convnet: loss is not implemented yet (see the TODO above)")
        return loss, grads
