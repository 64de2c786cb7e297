"""Helpers to visualize images and weights as grids (matplotlib is imported lazily)."""

from __future__ import annotations

from math import ceil, sqrt
from typing import Any

import numpy as np


def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Reshape a 4D tensor of image data to a grid for easy visualization.

    Inputs:
    - Xs: (N, H, W, C) array of image data.
    - ubound: each image is rescaled to the range [0, ubound].
    - padding: the number of blank pixels between elements of the grid.

    Returns:
    - grid: (G*H + (G-1)*padding, G*W + (G-1)*padding, C) array with
      G = ceil(sqrt(N)).
    """
    N, H, W, C = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    for idx in range(N):
        r, c = divmod(idx, grid_size)
        y0 = r * (H + padding)
        x0 = c * (W + padding)
        img = Xs[idx]
        low, high = np.min(img), np.max(img)
        span = high - low
        scaled = (img - low) / span if span > 0 else np.zeros_like(img, dtype=np.float64)
        grid[y0 : y0 + H, x0 : x0 + W] = ubound * scaled
    return grid


def vis_grid(Xs: np.ndarray) -> np.ndarray:
    """Visualize a grid of images, one-pixel separators, rescaled as a whole to [0, 1].

    Inputs:
    - Xs: (N, H, W, C) array of image data.

    Returns:
    - G: (A*H + A, A*W + A, C) array with A = ceil(sqrt(N)).
    """
    N, H, W, C = Xs.shape
    A = int(ceil(sqrt(N)))
    G = np.ones((A * H + A, A * W + A, C), Xs.dtype) * np.min(Xs)
    for n in range(N):
        y, x = divmod(n, A)
        G[y * H + y : (y + 1) * H + y, x * W + x : (x + 1) * W + x, :] = Xs[n]
    return _rescale01(G)


def vis_nn(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Visualize an array of arrays of images (e.g. each query with its nearest neighbours).

    Inputs:
    - rows: list of N lists of D images, each image (H, W, C).

    Returns:
    - G: (N*H + N, D*W + D, C) array rescaled to [0, 1].
    """
    N = len(rows)
    D = len(rows[0])
    H, W, C = rows[0][0].shape
    Xs = rows[0][0]
    G = np.ones((N * H + N, D * W + D, C), Xs.dtype)
    for y in range(N):
        for x in range(D):
            G[y * H + y : (y + 1) * H + y, x * W + x : (x + 1) * W + x, :] = rows[y][x]
    return _rescale01(G)


def _rescale01(G: np.ndarray) -> np.ndarray:
    """Rescale an array linearly to [0, 1] (constant arrays become zeros)."""
    G = np.asarray(G, dtype=np.float64)
    low, high = G.min(), G.max()
    if high > low:
        return (G - low) / (high - low)
    return np.zeros_like(G)


def show_net_weights(net: Any, channels_first: bool = True, image_size: int = 32) -> None:
    """Show the first-layer weights of a two-layer net as a grid of small images.

    Inputs:
    - net: a model whose params['W1'] has shape (3 * image_size**2, H).
    - channels_first: True when the network's inputs were flattened from
      (3, image_size, image_size) images (as get_CIFAR10_data returns them),
      False for (image_size, image_size, 3) images.
    - image_size: the side of the square input images.
    """
    import matplotlib.pyplot as plt

    W1 = np.asarray(net.params["W1"])
    s = image_size
    if channels_first:
        imgs = W1.reshape(3, s, s, -1).transpose(3, 1, 2, 0)
    else:
        imgs = W1.reshape(s, s, 3, -1).transpose(3, 0, 1, 2)
    plt.imshow(visualize_grid(imgs, padding=3).astype("uint8"))
    plt.gca().axis("off")
    plt.show()
