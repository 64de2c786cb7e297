# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""im2col / col2im in Cython: the data movement under the fast convolution.

Layout used throughout (one block of columns per image, so that a batch of
images can be processed a few images at a time):

    cols[n, k, p] = x_padded[n, c, oh * stride + i, ow * stride + j]

with the row index k = (c * field_height + i) * field_width + j (the order of
``w.reshape(F, -1)`` for filters of shape (F, C, field_height, field_width))
and the column index p = oh * W_out + ow. ``x_padded`` is x with ``padding``
zeros on each side of both spatial axes; the padding is never materialised.

    H_out = (H + 2 * padding - field_height) // stride + 1
    W_out = (W + 2 * padding - field_width) // stride + 1

Build the extension from the folder that holds ``cs231n`` (Cython 3 and a C
compiler needed): ``python build_ext.py`` (or ``python setup.py build_ext
--inplace``).
"""

import numpy as np

ctypedef fused real:
    float
    double


def output_size(int size, int field, int padding, int stride):
    """Number of positions of a window of length ``field`` along an axis of
    length ``size`` padded by ``padding`` on each side, moved by ``stride``."""
    if stride < 1 or padding < 0 or field < 1:
        raise ValueError(f"invalid window: field {field}, padding {padding}, stride {stride}")
    if size + 2 * padding < field:
        raise ValueError(f"a window of {field} does not fit in {size} + 2 * {padding}")
    return (size + 2 * padding - field) // stride + 1


def im2col_cython(x, int field_height, int field_width, int padding, int stride, out=None):
    """Unfold every receptive field of ``x`` into a column.

    Inputs:
    - x: (N, C, H, W) array, float32 or float64.
    - field_height, field_width: size of the receptive field (HH, WW).
    - padding: zeros added on each side of both spatial axes.
    - stride: step between neighbouring receptive fields.
    - out: optional C-contiguous (N, C * HH * WW, H_out * W_out) array of x's
      dtype to write into (no allocation).

    Returns:
    - cols: (N, C * HH * WW, H_out * W_out) array of x's dtype, laid out as the
      module docstring says (padding positions hold zeros).
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.shape}")
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    H_out = output_size(H, field_height, padding, stride)
    W_out = output_size(W, field_width, padding, stride)
    shape = (N, C * field_height * field_width, H_out * W_out)
    if out is None:
        cols = np.empty(shape, dtype=x.dtype)
    else:
        cols = out
        if cols.shape != shape or cols.dtype != x.dtype or not cols.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {shape} array of {x.dtype}")
    if cols.size:
        im2col_fill(x, cols, field_height, field_width, padding, stride, W_out)
    return cols


def im2col_fill(const real[:, :, :, ::1] x, real[:, :, ::1] cols, int field_height,
                int field_width, int padding, int stride, int W_out):
    """Write every receptive field of ``x`` into ``cols`` (both already allocated).

    Inputs:
    - x: (N, C, H, W) C-contiguous array.
    - cols: (N, C * field_height * field_width, H_out * W_out) C-contiguous
      array of x's dtype, to be overwritten entirely (padding positions get 0).
    - field_height, field_width, padding, stride: as for im2col_cython.
    - W_out: number of receptive fields along the width (H_out follows from
      cols.shape[2] // W_out).
    """
    # TODO: fill cols[n, k, p] as the module docstring says. Loop over the
    # images n, the rows k = (c, i, j) and the output positions (oh, ow);
    # positions that fall into the padding are 0. Type your loop variables
    # (cdef Py_ssize_t ...) and release the GIL (with nogil:) so that the
    # loops compile to plain C.
    # TODO(im2col_cython): your code here
    raise NotImplementedError("im2col_cython: im2col_fill is not implemented yet (see the TODO above)")


def col2im_cython(cols, int N, int C, int H, int W, int field_height, int field_width,
                  int padding, int stride):
    """The adjoint of im2col_cython: add every column back onto its receptive field.

    Where receptive fields overlap, the contributions add up; values that fall
    into the padding are dropped. This is the backward pass of im2col: if
    cols = im2col_cython(x, ...), then for an upstream gradient dcols of cols'
    shape, col2im_cython(dcols, ...) is the gradient with respect to x.

    Inputs:
    - cols: (N, C * HH * WW, H_out * W_out) array, float32 or float64, laid
      out as the module docstring says.
    - N, C, H, W: the shape of the image batch to rebuild.
    - field_height, field_width, padding, stride: as for im2col_cython.

    Returns:
    - x: (N, C, H, W) array of cols' dtype.
    """
    cols = np.asarray(cols)
    if cols.dtype != np.float32:
        cols = cols.astype(np.float64, copy=False)
    cols = np.ascontiguousarray(cols)
    H_out = output_size(H, field_height, padding, stride)
    W_out = output_size(W, field_width, padding, stride)
    shape = (N, C * field_height * field_width, H_out * W_out)
    if cols.shape != shape:
        raise ValueError(f"cols must have shape {shape}, got {cols.shape}")
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    if cols.size:
        col2im_fill(cols, x, field_height, field_width, padding, stride, W_out)
    return x


def col2im_fill(const real[:, :, ::1] cols, real[:, :, :, ::1] x, int field_height,
                int field_width, int padding, int stride, int W_out):
    """Add every column of ``cols`` onto its receptive field in ``x``.

    Inputs:
    - cols: (N, C * field_height * field_width, H_out * W_out) C-contiguous array.
    - x: (N, C, H, W) C-contiguous array of cols' dtype, filled with zeros by
      the caller; contributions are added (+=) to it, those falling into the
      padding are dropped.
    - field_height, field_width, padding, stride, W_out: as for im2col_fill.
    """
    # TODO: the same loops as im2col_fill, but adding cols[n, k, p] into x
    # (x[...] += ...) instead of reading x, and skipping padding positions.
    # TODO(col2im_cython): your code here
    raise NotImplementedError("col2im_cython: col2im_fill is not implemented yet (see the TODO above)")
