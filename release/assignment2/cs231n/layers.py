"""Forward and backward passes of the layers of Assignment 2.

Every layer follows one contract:

- ``<layer>_forward(inputs..., params...) -> (out, cache)``: the output and
  whatever the backward pass needs;
- ``<layer>_backward(dout, cache) -> gradients``: the gradient of the loss with
  respect to each input of the forward pass, given ``dout``, the gradient with
  respect to ``out``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# --------------------------------------------------------------------------- affine, ReLU


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of an affine (fully connected) layer.

    The input x has shape (N, d_1, ..., d_k): a minibatch of N examples, each
    example x[i] of shape (d_1, ..., d_k). Each example is reshaped into a vector
    of dimension D = d_1 * ... * d_k, then transformed to an output vector of
    dimension M.

    Inputs:
    - x: (N, d_1, ..., d_k) array of input data.
    - w: (D, M) array of weights.
    - b: (M,) array of biases.

    Returns a tuple of:
    - out: (N, M) array of outputs.
    - cache: (x, w, b), kept for the backward pass.
    """
    out = None
    # TODO: compute the affine forward pass and store the result in out. You
    # need to reshape the input into rows first.
    # TODO(affine_relu): your code here
    raise NotImplementedError("affine_relu: affine_forward is not implemented yet (see the TODO above)")
    cache = (x, w, b)
    return out, cache


def affine_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of an affine (fully connected) layer.

    Inputs:
    - dout: (N, M) array, the upstream derivative.
    - cache: the tuple (x, w, b) from affine_forward:
      - x: (N, d_1, ..., d_k) input data.
      - w: (D, M) weights.
      - b: (M,) biases.

    Returns a tuple of:
    - dx: (N, d_1, ..., d_k) gradient with respect to x (same shape as x).
    - dw: (D, M) gradient with respect to w.
    - db: (M,) gradient with respect to b.
    """
    x, w, b = cache
    dx, dw, db = None, None, None
    # TODO: implement the affine backward pass. dx must have the original shape
    # of x.
    # TODO(affine_relu): your code here
    raise NotImplementedError("affine_relu: affine_backward is not implemented yet (see the TODO above)")
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of a layer of rectified linear units (ReLUs).

    Inputs:
    - x: array of inputs, of any shape.

    Returns a tuple of:
    - out: array of outputs, of the same shape as x.
    - cache: x, kept for the backward pass.
    """
    out = None
    # TODO: implement the ReLU forward pass (elementwise max(0, x)).
    # TODO(affine_relu): your code here
    raise NotImplementedError("affine_relu: relu_forward is not implemented yet (see the TODO above)")
    cache = x
    return out, cache


def relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Backward pass of a layer of rectified linear units (ReLUs).

    Inputs:
    - dout: array of upstream derivatives, of any shape.
    - cache: x, the input of relu_forward, of the same shape as dout.

    Returns:
    - dx: array, gradient with respect to x, of the same shape as x.
    """
    dx, x = None, cache
    # TODO: implement the ReLU backward pass (the gradient flows where x > 0).
    # TODO(affine_relu): your code here
    raise NotImplementedError("affine_relu: relu_backward is not implemented yet (see the TODO above)")
    return dx


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss and gradient of softmax classification (cross-entropy).

    Inputs:
    - x: (N, C) array of scores; x[i, j] is the score of the j-th class for the
      i-th input.
    - y: (N,) array of integer labels; y[i] is the label of x[i], 0 <= y[i] < C.

    Returns a tuple of:
    - loss: (float) the cross-entropy loss averaged over the N examples.
    - dx: (N, C) array, gradient of the loss with respect to x.
    """
    loss, dx = None, None
    # TODO: compute the softmax loss and its gradient, numerically stable
    # (shift every row by its maximum), no regularization.
    # TODO(softmax_loss): your code here
    raise NotImplementedError("softmax_loss: softmax_loss is not implemented yet (see the TODO above)")
    return loss, dx


# --------------------------------------------------------------------------- normalization


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Forward pass of batch normalization.

    During training the sample mean and (biased) sample variance of the
    minibatch normalize the data, and running averages of them are kept::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var

    At test time the running averages normalize the data instead.

    Inputs:
    - x: (N, D) array of data.
    - gamma: (D,) scale parameter.
    - beta: (D,) shift parameter.
    - bn_param: dictionary with the keys:
      - mode: 'train' or 'test' (required).
      - eps: constant for numeric stability (default 1e-5).
      - momentum: constant for the running mean / variance (default 0.9).
      - running_mean: (D,) running mean of the features (zeros if absent).
      - running_var: (D,) running variance of the features (zeros if absent).
      The running averages are updated IN bn_param (train mode).

    Returns a tuple of:
    - out: (N, D) array, gamma * x_hat + beta.
    - cache: what batchnorm_backward needs (None in test mode).
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
        # TODO: compute the minibatch mean and variance, normalize x with them,
        # scale by gamma and shift by beta; update running_mean and running_var
        # with the momentum; store what the backward pass needs in cache.
        # TODO(batchnorm_forward): your code here
        raise NotImplementedError("batchnorm_forward: batchnorm_forward is not implemented yet (see the TODO above)")
    elif mode == "test":
        # TODO: normalize x with the running averages, then scale and shift.
        # TODO(batchnorm_forward): your code here
        raise NotImplementedError("batchnorm_forward: batchnorm_forward is not implemented yet (see the TODO above)")
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of batch normalization (train mode), step by step.

    Work through the computational graph of batchnorm_forward node by node
    (centering, variance, square root, division, scale, shift).

    Inputs:
    - dout: (N, D) upstream derivatives.
    - cache: the cache of batchnorm_forward.

    Returns a tuple of:
    - dx: (N, D) gradient with respect to x.
    - dgamma: (D,) gradient with respect to gamma.
    - dbeta: (D,) gradient with respect to beta.
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: backpropagate through the graph of batchnorm_forward.
    # TODO(batchnorm_backward): your code here
    raise NotImplementedError("batchnorm_backward: batchnorm_backward is not implemented yet (see the TODO above)")
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of batch normalization (train mode), in closed form.

    Same inputs and outputs as batchnorm_backward, but dx is computed with one
    simplified expression (derive it on paper first).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: compute dx in a single statement from dout, x_hat, gamma and the
    # inverse standard deviation.
    # TODO(batchnorm_backward_alt): your code here
    raise NotImplementedError("batchnorm_backward_alt: batchnorm_backward_alt is not implemented yet (see the TODO above)")
    return dx, dgamma, dbeta


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Forward pass of layer normalization.

    Every example (row) is normalized by its own mean and variance over the D
    features, the same way in training and at test time; no running averages.

    Inputs:
    - x: (N, D) array of data.
    - gamma: (D,) scale parameter.
    - beta: (D,) shift parameter.
    - ln_param: dictionary with the key 'eps' (default 1e-5).

    Returns a tuple of:
    - out: (N, D) array.
    - cache: what layernorm_backward needs.
    """
    out, cache = None, None
    eps = ln_param.get("eps", 1e-5)
    # TODO: normalize each row of x, then scale by gamma and shift by beta.
    # TODO(layernorm): your code here
    raise NotImplementedError("layernorm: layernorm_forward is not implemented yet (see the TODO above)")
    return out, cache


def layernorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of layer normalization.

    Inputs:
    - dout: (N, D) upstream derivatives.
    - cache: the cache of layernorm_forward.

    Returns a tuple of:
    - dx: (N, D) gradient with respect to x.
    - dgamma: (D,) gradient with respect to gamma.
    - dbeta: (D,) gradient with respect to beta.
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: implement the backward pass (compare with batch normalization: which
    # axis do the statistics run over now?).
    # TODO(layernorm): your code here
    raise NotImplementedError("layernorm: layernorm_backward is not implemented yet (see the TODO above)")
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- dropout


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Forward pass of (inverted) dropout.

    In training mode every unit is KEPT with probability p and zeroed
    otherwise; the kept units are divided by p so that the expected output
    equals the input and test time needs no scaling. At test time the input
    passes through unchanged.

    Inputs:
    - x: array of data, of any shape.
    - dropout_param: dictionary with the keys:
      - p: the probability of keeping each unit, 0 < p <= 1.
      - mode: 'train' or 'test'.
      - seed: if given, seed numpy's global generator with it first
        (np.random.seed(seed)) and draw the mask with np.random.rand, so that
        results are reproducible (gradient checks rely on it).

    Returns a tuple of:
    - out: array of the same shape as x.
    - cache: (dropout_param, mask); mask is None in test mode.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask, out = None, None
    if mode == "train":
        # TODO: draw the mask (np.random.rand(*x.shape) < p, rescaled by 1 / p)
        # and apply it to x.
        # TODO(dropout): your code here
        raise NotImplementedError("dropout: dropout_forward is not implemented yet (see the TODO above)")
    elif mode == "test":
        # TODO: the test-time forward pass.
        # TODO(dropout): your code here
        raise NotImplementedError("dropout: dropout_forward is not implemented yet (see the TODO above)")
    else:
        raise ValueError(f'Invalid forward dropout mode "{mode}"')

    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Backward pass of (inverted) dropout.

    Inputs:
    - dout: upstream derivatives, of any shape.
    - cache: (dropout_param, mask) from dropout_forward.

    Returns:
    - dx: gradient with respect to x, of the same shape as dout.
    """
    dropout_param, mask = cache
    mode = dropout_param["mode"]
    dx = None
    if mode == "train":
        # TODO: the training-time backward pass.
        # TODO(dropout): your code here
        raise NotImplementedError("dropout: dropout_backward is not implemented yet (see the TODO above)")
    elif mode == "test":
        dx = dout
    return dx


# --------------------------------------------------------------------------- convolution, pooling


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Naive forward pass of a convolutional layer (loops are fine here).

    The input has N examples of C channels, height H and width W. Each of the F
    filters spans all C channels and has height HH and width WW.

    Inputs:
    - x: (N, C, H, W) input data.
    - w: (F, C, HH, WW) filter weights.
    - b: (F,) biases.
    - conv_param: dictionary with the keys:
      - stride: the step, in pixels, between neighbouring receptive fields, in
        both directions.
      - pad: the number of zero pixels added on every side of the input
        (symmetrically, along height and width only). Do not modify x itself.

    Returns a tuple of:
    - out: (N, F, H', W') output, where
      H' = 1 + (H + 2 * pad - HH) // stride and
      W' = 1 + (W + 2 * pad - WW) // stride.
    - cache: (x, w, b, conv_param).
    """
    out = None
    # TODO: implement the convolutional forward pass (np.pad pads the input).
    # TODO(conv_forward_naive): your code here
    raise NotImplementedError("conv_forward_naive: conv_forward_naive is not implemented yet (see the TODO above)")
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Naive backward pass of a convolutional layer.

    Inputs:
    - dout: (N, F, H', W') upstream derivatives.
    - cache: (x, w, b, conv_param) from conv_forward_naive.

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x.
    - dw: (F, C, HH, WW) gradient with respect to w.
    - db: (F,) gradient with respect to b.
    """
    dx, dw, db = None, None, None
    # TODO: implement the convolutional backward pass.
    # TODO(conv_backward_naive): your code here
    raise NotImplementedError("conv_backward_naive: conv_backward_naive is not implemented yet (see the TODO above)")
    return dx, dw, db


def max_pool_forward_naive(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Naive forward pass of a max-pooling layer.

    No padding. The pools need not tile the input: the last rows / columns that
    no pool covers are ignored.

    Inputs:
    - x: (N, C, H, W) input data.
    - pool_param: dictionary with the keys 'pool_height', 'pool_width' and
      'stride'.

    Returns a tuple of:
    - out: (N, C, H', W') output, where
      H' = 1 + (H - pool_height) // stride and
      W' = 1 + (W - pool_width) // stride.
    - cache: (x, pool_param).
    """
    out = None
    # TODO: implement the max-pooling forward pass.
    # TODO(max_pool_naive): your code here
    raise NotImplementedError("max_pool_naive: max_pool_forward_naive is not implemented yet (see the TODO above)")
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Naive backward pass of a max-pooling layer.

    The gradient of each pool goes to the position of its maximum (the first
    one in row-major order when there are ties).

    Inputs:
    - dout: (N, C, H', W') upstream derivatives.
    - cache: (x, pool_param) from max_pool_forward_naive.

    Returns:
    - dx: (N, C, H, W) gradient with respect to x.
    """
    dx = None
    # TODO: implement the max-pooling backward pass.
    # TODO(max_pool_naive): your code here
    raise NotImplementedError("max_pool_naive: max_pool_backward_naive is not implemented yet (see the TODO above)")
    return dx


# --------------------------------------------------------------------------- spatial normalization


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Forward pass of spatial batch normalization.

    Each channel is normalized over the minibatch AND the spatial positions
    (N * H * W values per channel).

    Inputs:
    - x: (N, C, H, W) input data.
    - gamma: (C,) scale parameter.
    - beta: (C,) shift parameter.
    - bn_param: as for batchnorm_forward (mode, eps, momentum, running_mean
      (C,), running_var (C,)).

    Returns a tuple of:
    - out: (N, C, H, W) output.
    - cache: what spatial_batchnorm_backward needs.
    """
    out, cache = None, None
    # TODO: reshape x so that batchnorm_forward (above) does the work.
    # TODO(spatial_batchnorm): your code here
    raise NotImplementedError("spatial_batchnorm: spatial_batchnorm_forward is not implemented yet (see the TODO above)")
    return out, cache


def spatial_batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of spatial batch normalization.

    Inputs:
    - dout: (N, C, H, W) upstream derivatives.
    - cache: the cache of spatial_batchnorm_forward.

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x.
    - dgamma: (C,) gradient with respect to gamma.
    - dbeta: (C,) gradient with respect to beta.
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: reshape dout so that a batchnorm backward pass (above) does the work.
    # TODO(spatial_batchnorm): your code here
    raise NotImplementedError("spatial_batchnorm: spatial_batchnorm_backward is not implemented yet (see the TODO above)")
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Forward pass of spatial group normalization.

    The C channels are split into G consecutive groups of C // G channels;
    each example is normalized by the mean and variance of each of its groups
    (over the group's channels and all spatial positions), then every channel
    is scaled and shifted by its own gamma and beta. Same in train and test.

    Inputs:
    - x: (N, C, H, W) input data.
    - gamma: (1, C, 1, 1) scale parameter.
    - beta: (1, C, 1, 1) shift parameter.
    - G: the number of groups; it divides C.
    - gn_param: dictionary with the key 'eps' (default 1e-5).

    Returns a tuple of:
    - out: (N, C, H, W) output.
    - cache: what spatial_groupnorm_backward needs.
    """
    out, cache = None, None
    eps = gn_param.get("eps", 1e-5)
    # TODO: implement the group normalization forward pass.
    # TODO(spatial_groupnorm): your code here
    raise NotImplementedError("spatial_groupnorm: spatial_groupnorm_forward is not implemented yet (see the TODO above)")
    return out, cache


def spatial_groupnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of spatial group normalization.

    Inputs:
    - dout: (N, C, H, W) upstream derivatives.
    - cache: the cache of spatial_groupnorm_forward.

    Returns a tuple of:
    - dx: (N, C, H, W) gradient with respect to x.
    - dgamma: (1, C, 1, 1) gradient with respect to gamma.
    - dbeta: (1, C, 1, 1) gradient with respect to beta.
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: implement the group normalization backward pass.
    # TODO(spatial_groupnorm): your code here
    raise NotImplementedError("spatial_groupnorm: spatial_groupnorm_backward is not implemented yet (see the TODO above)")
    return dx, dgamma, dbeta
