"""Numerical building blocks of the ALM model: the box sampler and resizing.

The official ALM resamples each attribute's feature map with
`F.affine_grid` + `F.grid_sample(mode="bilinear", padding_mode="border",
align_corners=False)` under the diagonal transform [[sx, 0, tx], [0, sy, ty]]
and then averages it. Because the transform is diagonal the bilinear weights
factor into a row part and a column part, so "resample then average" is a
weighted sum with a rank-1 weight map `wy[h] * wx[w]`. This module computes
those separable weights (`axis_sampling_matrix`, `pooled_sampling_weights`),
the explicit resampler built from an independent gather-based path
(`bilinear_resample`, used for pictures and as the test oracle), and the
fixed interpolation matrices of the feature-pyramid upsampling
(`upsampling_matrix`).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf
from keras import ops

from alm_tf.names import UPSAMPLING_MODES


def _source_coordinates(scale, shift, out_size: int, in_size: int):
    """Border-clamped pixel coordinates sampled by `grid_sample`.

    Args:
        scale: tensor (...,), the transform's scale on this axis.
        shift: tensor (...,), the transform's translation on this axis.
        out_size: number of output samples along the axis.
        in_size: size of the input along the axis.

    Returns:
        Tensor (..., out_size) of source pixel coordinates in
        [0, in_size - 1] (align_corners=False, padding_mode="border").
    """
    dtype = scale.dtype
    base = (2.0 * np.arange(out_size, dtype=np.float64) + 1.0) / out_size - 1.0
    base = ops.cast(ops.convert_to_tensor(base.astype(np.float32)), dtype)
    coords = scale[..., None] * base + shift[..., None]
    pixels = ((coords + 1.0) * in_size - 1.0) / 2.0
    return ops.clip(pixels, 0.0, float(in_size - 1))


def _interpolation_rows(pixels, in_size: int):
    """Bilinear interpolation rows (..., S, in_size) of pixel coordinates (..., S).

    Row i holds weight 1 - frac at floor(pixels[i]) and frac at the next
    pixel: the weights and the gradient (through frac, with the floor held
    fixed) of `grid_sample`.
    """
    lower = ops.stop_gradient(ops.floor(pixels))
    frac = pixels - lower
    lower_idx = ops.cast(lower, "int32")
    # one_hot of an index equal to in_size is all zeros: that neighbour only
    # ever appears with weight 0 (at the clamped last pixel).
    w_lower = ops.one_hot(lower_idx, in_size, dtype=pixels.dtype)
    w_upper = ops.one_hot(lower_idx + 1, in_size, dtype=pixels.dtype)
    return (1.0 - frac)[..., None] * w_lower + frac[..., None] * w_upper


def axis_sampling_matrix(scale, shift, out_size: int, in_size: int):
    """Bilinear interpolation matrix of one axis of the box transform.

    Args:
        scale: tensor (...,) of scales (sx or sy).
        shift: tensor (...,) of translations (tx or ty).
        out_size: number of output samples.
        in_size: input size along the axis.

    Returns:
        Tensor (..., out_size, in_size): row i holds the two interpolation
        weights of output sample i (they sum to one).
    """
    return _interpolation_rows(
        _source_coordinates(scale, shift, out_size, in_size), in_size)


@functools.lru_cache(maxsize=None)
def _pixel_transform(height: int, width: int):
    """`_source_coordinates` of both axes as one affine map of theta.

    Returns `(matrix (4, height + width), offset, upper)`: the first
    `height` columns are the rows' source pixels (from sy, ty), the last
    `width` the columns' (from sx, tx), before clamping to [0, upper]:
    ((s * base + t + 1) * size - 1) / 2 = s * base * size / 2 + t * size / 2
    + (size - 1) / 2.
    """
    matrix = np.zeros((4, height + width), np.float64)
    offset, upper = [], []
    for (scale_row, shift_row), size, cols in (((1, 3), height, slice(0, height)),
                                               ((0, 2), width, slice(height, None))):
        base = (2.0 * np.arange(size, dtype=np.float64) + 1.0) / size - 1.0
        matrix[scale_row, cols] = base * size / 2.0
        matrix[shift_row, cols] = size / 2.0
        offset += [(size - 1) / 2.0] * size
        upper += [float(size - 1)] * size
    return matrix, np.array(offset), np.array(upper)


def pooled_sampling_weights(theta, height: int, width: int):
    """Separable weights of "resample the box, then average over it".

    Both axes' source pixels come from one small matmul of theta (the
    sampler's op count, not its arithmetic, is what costs at small batch).

    Args:
        theta: tensor (..., 4) of constrained box parameters
            (sx, sy, tx, ty) as the official code orders them; rank >= 2.
        height: feature map height (equal to the resampled height).
        width: feature map width.

    Returns:
        `(wy, wx)`: tensors (..., height) and (..., width); each sums to one,
        and `sum_hw wy[h] wx[w] X[h, w]` equals the mean of the resampled map.
    """
    matrix, offset, upper = _pixel_transform(height, width)
    pixels = ops.clip(_matmul_last_axis(theta, matrix) + ops.cast(offset, theta.dtype),
                      0.0, ops.cast(upper, theta.dtype))
    wy = ops.mean(_interpolation_rows(pixels[..., :height], height), axis=-2)
    wx = ops.mean(_interpolation_rows(pixels[..., height:], width), axis=-2)
    return wy, wx


def constrain_theta(raw):
    """(sigmoid, sigmoid, tanh, tanh) of the raw box regression (..., 4)."""
    return ops.concatenate(
        [ops.sigmoid(raw[..., :2]), ops.tanh(raw[..., 2:])], axis=-1
    )


# (sx, sy, tx, ty) -> [y1, x1, y2, x2] = theta @ _THETA_TO_BOXES + 0.5.
_THETA_TO_BOXES = np.array([[0.0, -0.5, 0.0, 0.5],
                            [-0.5, 0.0, 0.5, 0.0],
                            [0.0, 0.5, 0.0, 0.5],
                            [0.5, 0.0, 0.5, 0.0]])


def _matmul_last_axis(x, matrix):
    """x (..., k) @ matrix (k, j) as one 2-D matmul (a batched matmul that
    broadcasts a constant costs far more per call on oneDNN's CPU kernels)."""
    matrix = ops.cast(matrix, x.dtype)
    if len(x.shape) == 2:
        return ops.matmul(x, matrix)
    flat = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), matrix)
    return ops.reshape(flat, (-1, *x.shape[1:-1], matrix.shape[-1]))


def theta_to_boxes(theta):
    """Transform (sx, sy, tx, ty) to normalized [y1, x1, y2, x2] boxes.

    ((ty - sy + 1) / 2, (tx - sx + 1) / 2, (ty + sy + 1) / 2,
    (tx + sx + 1) / 2), as one matmul.
    """
    theta = ops.convert_to_tensor(theta)
    if len(theta.shape) == 1:
        return _matmul_last_axis(ops.expand_dims(theta, 0), _THETA_TO_BOXES)[0] + 0.5
    return _matmul_last_axis(theta, _THETA_TO_BOXES) + 0.5


def boxes_to_theta(boxes):
    """Inverse of `theta_to_boxes`: [y1, x1, y2, x2] -> (sx, sy, tx, ty)."""
    y1, x1, y2, x2 = (boxes[..., i] for i in range(4))
    return ops.stack(
        [x2 - x1, y2 - y1, x1 + x2 - 1.0, y1 + y2 - 1.0], axis=-1
    )


def bilinear_resample(images, theta, output_size=None):
    """Explicitly resample images or feature maps inside boxes.

    An independent implementation of `grid_sample(affine_grid(theta))` with
    bilinear interpolation, border padding and align_corners=False, through
    gathers of the four neighbours. It draws the localization pictures and is
    the oracle for the separable path in the tests.

    Args:
        images: tensor (N, H, W, C).
        theta: tensor (N, 4) of (sx, sy, tx, ty).
        output_size: `(out_h, out_w)`; defaults to (H, W).

    Returns:
        Tensor (N, out_h, out_w, C).
    """
    images = tf.convert_to_tensor(images)
    theta = tf.cast(tf.convert_to_tensor(theta), images.dtype)
    height, width = images.shape[1], images.shape[2]
    out_h, out_w = output_size if output_size is not None else (height, width)
    ys = _source_coordinates(theta[:, 1], theta[:, 3], out_h, height)
    xs = _source_coordinates(theta[:, 0], theta[:, 2], out_w, width)
    y0 = tf.floor(ys)
    x0 = tf.floor(xs)
    fy = (ys - y0)[:, :, None, None]
    fx = (xs - x0)[:, None, :, None]
    y0 = tf.cast(y0, tf.int32)
    x0 = tf.cast(x0, tf.int32)
    y1 = tf.minimum(y0 + 1, height - 1)
    x1 = tf.minimum(x0 + 1, width - 1)

    def gather(yi, xi):
        rows = tf.gather(images, yi, axis=1, batch_dims=1)  # N, out_h, W, C
        return tf.gather(rows, xi, axis=2, batch_dims=1)  # N, out_h, out_w, C

    top = gather(y0, x0) * (1.0 - fx) + gather(y0, x1) * fx
    bottom = gather(y1, x0) * (1.0 - fx) + gather(y1, x1) * fx
    return top * (1.0 - fy) + bottom * fy


def upsampling_matrix(in_size: int, out_size: int, mode: str) -> np.ndarray:
    """Interpolation matrix (out_size, in_size) of one axis of upsampling.

    `bilinear` is PyTorch's `F.interpolate(mode="bilinear",
    align_corners=False)` (half-pixel centres, negative source coordinates
    clamped to 0); `nearest` is its `mode="nearest"` (floor of dst * scale).
    """
    if mode not in UPSAMPLING_MODES:
        raise ValueError(
            f"`mode` must be one of {UPSAMPLING_MODES}. Received: mode={mode!r}"
        )
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    scale = in_size / out_size
    for i in range(out_size):
        if mode == "nearest":
            matrix[i, min(int(np.floor(i * scale)), in_size - 1)] = 1.0
            continue
        src = max((i + 0.5) * scale - 0.5, 0.0)
        lo = min(int(np.floor(src)), in_size - 1)
        hi = min(lo + 1, in_size - 1)
        frac = src - lo
        matrix[i, lo] += 1.0 - frac
        matrix[i, hi] += frac
    return matrix


def resize_features(features, size, mode: str):
    """Upsample (N, h, w, C) features to `size` with `upsampling_matrix`."""
    in_h, in_w = features.shape[1], features.shape[2]
    my = upsampling_matrix(in_h, size[0], mode).astype(np.float32)
    mx = upsampling_matrix(in_w, size[1], mode).astype(np.float32)
    my = ops.cast(my, features.dtype)
    mx = ops.cast(mx, features.dtype)
    out = ops.einsum("ih,nhwc->niwc", my, features)
    return ops.einsum("jw,niwc->nijc", mx, out)
