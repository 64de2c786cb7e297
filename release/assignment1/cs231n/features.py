"""Hand-crafted image features: histogram of oriented gradients and hue histograms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def extract_features(
    imgs: np.ndarray,
    feature_fns: Sequence[Callable[[np.ndarray], np.ndarray]],
    verbose: bool = False,
) -> np.ndarray:
    """Compute features for every image and stack them into a matrix.

    Inputs:
    - imgs: (N, H, W, C) array of pixel data for N images.
    - feature_fns: list of k feature functions. The i-th function takes one
      (H, W, C) image and returns a one-dimensional array of length F_i.
    - verbose: if True, print progress.

    Returns:
    - imgs_features: (N, F) float64 array, F = F_1 + ... + F_k; each row is the
      concatenation of all the features of one image.
    """
    num_images = imgs.shape[0]
    if num_images == 0:
        return np.array([])

    # Use the first image to determine the feature dimensions
    first = [np.asarray(fn(imgs[0]), dtype=np.float64).ravel() for fn in feature_fns]
    dims = [f.size for f in first]
    bounds = np.concatenate(([0], np.cumsum(dims)))
    imgs_features = np.zeros((num_images, int(bounds[-1])))
    imgs_features[0] = np.concatenate(first) if first else imgs_features[0]

    for i in range(1, num_images):
        for fn, start, stop in zip(feature_fns, bounds[:-1], bounds[1:], strict=True):
            imgs_features[i, start:stop] = np.asarray(fn(imgs[i]), dtype=np.float64).ravel()
        if verbose and i % 1000 == 999:
            print(f"Done extracting features for {i + 1} / {num_images} images")
    return imgs_features


def rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """Convert an RGB image to grayscale (ITU-R 601 luma weights).

    Inputs:
    - rgb: (H, W, C) RGB image (extra channels beyond the first three are ignored).

    Returns:
    - gray: (H, W) grayscale image.
    """
    return np.dot(rgb[..., :3], [0.299, 0.587, 0.114])


def hog_feature(im: np.ndarray) -> np.ndarray:
    """Histogram of oriented gradients (HOG) feature of an image.

    The image is converted to grayscale; horizontal and vertical gradients are
    taken with forward differences. Each pixel votes with its gradient
    magnitude into one of 9 unsigned orientation bins (20 degrees each over
    [0, 180)), and the votes are averaged over non-overlapping 8x8 cells.

    Adapted in spirit from Dalal and Triggs, "Histograms of Oriented Gradients
    for Human Detection", CVPR 2005 (no block normalization).

    Inputs:
    - im: (H, W, 3) RGB image or (H, W) grayscale image.

    Returns:
    - feat: one-dimensional array of length (H // 8) * (W // 8) * 9.
    """
    image = rgb2gray(im) if im.ndim == 3 else np.atleast_2d(im)
    image = np.asarray(image, dtype=np.float64)
    sy, sx = image.shape
    orientations = 9
    cy, cx = 8, 8
    n_cellsy, n_cellsx = sy // cy, sx // cx

    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    magnitude = np.sqrt(gx**2 + gy**2)
    angle = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0)  # unsigned, in [0, 180)
    bins = np.minimum((angle * (orientations / 180.0)).astype(np.intp), orientations - 1)

    # Crop to whole cells, then sum the magnitude votes per (cell, bin).
    magnitude = magnitude[: n_cellsy * cy, : n_cellsx * cx]
    bins = bins[: n_cellsy * cy, : n_cellsx * cx]
    rows = np.arange(n_cellsy * cy) // cy
    cols = np.arange(n_cellsx * cx) // cx
    cell = rows[:, None] * n_cellsx + cols[None, :]
    flat_index = (cell * orientations + bins).ravel()
    hist = np.bincount(
        flat_index, weights=magnitude.ravel(), minlength=n_cellsy * n_cellsx * orientations
    )
    return hist / (cy * cx)


def color_histogram_hsv(
    im: np.ndarray,
    nbin: int = 10,
    xmin: float = 0,
    xmax: float = 255,
    normalized: bool = True,
) -> np.ndarray:
    """Color histogram of an image, using the hue channel of its HSV representation.

    Inputs:
    - im: (H, W, C) RGB image with values in [xmin, xmax].
    - nbin: number of histogram bins (default 10).
    - xmin: minimum pixel value (default 0).
    - xmax: maximum pixel value (default 255).
    - normalized: whether to normalize the histogram so that it sums to 1.

    Returns:
    - imhist: one-dimensional array of length nbin, the hue histogram.
    """
    from matplotlib.colors import rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(np.asarray(im, dtype=np.float64)[..., :3] / xmax, 0.0, 1.0)) * xmax
    edges = np.linspace(xmin, xmax, nbin + 1)
    imhist, _ = np.histogram(hsv[..., 0], bins=edges)
    imhist = imhist.astype(np.float64)
    if normalized:
        total = imhist.sum()
        if total > 0:
            imhist /= total
    return imhist
