"""A two-layer fully connected network with a modular design."""

from __future__ import annotations

import numpy as np

from ..layer_utils import affine_relu_backward, affine_relu_forward
from ..layers import affine_backward, affine_forward, softmax_loss


class TwoLayerNet:
    """A two-layer fully connected neural network with ReLU and a softmax loss.

    The architecture is affine - relu - affine - softmax, for inputs of
    dimension D, a hidden dimension of H and classification over C classes.

    The network does not run optimization itself: it works with a separate
    Solver object. Its learnable parameters are stored in the dictionary
    self.params, which maps parameter names to numpy arrays.
    """

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
    ) -> None:
        """Initialize a new network.

        Inputs:
        - input_dim: an integer D, the size of the input.
        - hidden_dim: an integer H, the size of the hidden layer.
        - num_classes: an integer C, the number of classes.
        - weight_scale: scalar, the standard deviation of the random
          initialization of the weights.
        - reg: scalar, L2 regularization strength.

        Sets self.params:
        - W1: (D, H) first-layer weights, b1: (H,) first-layer biases,
        - W2: (H, C) second-layer weights, b2: (C,) second-layer biases.
        """
        self.params: dict[str, np.ndarray] = {}
        self.reg = reg
        # TODO: initialize the weights W1 and W2 from a Gaussian centred at 0
        # with standard deviation weight_scale (weight_scale * np.random.randn)
        # and the biases b1 and b2 to zeros, with the shapes listed above, and
        # store all four in self.params under the keys 'W1', 'b1', 'W2', 'b2'.
        # TODO(two_layer_net_init): your code here
        raise NotImplementedError("two_layer_net_init: __init__ is not implemented yet (see the TODO above)")

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Compute the loss and gradient for a minibatch of data.

        Inputs:
        - X: (N, d_1, ..., d_k) array of input data (D = d_1 * ... * d_k).
        - y: (N,) array of labels; y[i] gives the label of X[i]. Optional.

        Returns:
        If y is None, run a test-time forward pass and return:
        - scores: (N, C) array of classification scores; scores[i, c] is the
          score of X[i] for class c.

        If y is not None, run a training-time forward and backward pass and
        return a tuple of:
        - loss: scalar value of the loss, including the L2 regularization
          0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2)).
        - grads: dictionary with the same keys as self.params, mapping
          parameter names to gradients of the loss with respect to those
          parameters (same shapes as the parameters).
        """
        scores = None
        # TODO: implement the forward pass of the two-layer net (use the
        # functions of layers.py / layer_utils.py) and store the class scores
        # in the variable scores.
        # TODO(two_layer_net_loss): your code here
        raise NotImplementedError("two_layer_net_loss: loss is not implemented yet (see the TODO above)")

        # If y is None then we are in test mode so just return scores
        if y is None:
            return scores

        loss, grads = 0.0, {}
        # TODO: implement the backward pass of the two-layer net. Store the loss
        # in loss and the gradients in grads (grads["W1"] is the gradient of the
        # loss with respect to self.params["W1"], and so on). Compute the data
        # loss with softmax, and add the L2 regularization
        # 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2)) and its gradient.
        # TODO(two_layer_net_loss): your code here
        raise NotImplementedError("two_layer_net_loss: loss is not implemented yet (see the TODO above)")
        return loss, grads
