"""PyTorch-semantics 2D pooling: ceil mode and padding that counts."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

POOL_TYPES = ("max", "avg")


def pooled_size(size: int, pool_size: int, stride: int, padding: int,
                ceil_mode: bool) -> int:
    """Output size of a PyTorch pool along one axis."""
    span = size + 2 * padding - pool_size
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch: the last window must start inside the input or left pad.
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def _edge_pad(x, before: int, after: int, axis: int):
    """Repeats the first / last row (or column) of `axis` at most once on each side."""
    if before > 1 or after > 1:
        raise ValueError(f"_edge_pad pads at most 1. Received: before={before}, after={after}")
    size = x.shape[axis]
    parts = []
    if before:
        parts.append(_slice(x, 0, 1, axis))
    parts.append(x)
    if after:
        parts.append(_slice(x, size - 1, size, axis))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=axis)


def _slice(x, start: int, stop: int, axis: int):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


@keras.saving.register_keras_serializable(package="alm_tf")
class TorchPooling2D(keras.layers.Layer):
    """Max or average pooling with PyTorch's `ceil_mode` and padding rules.

    Keras pools have no ceil mode and never count padded zeros in an
    average. BN-Inception (Ioffe & Szegedy, 2015), as the ALM paper's code
    runs it, uses `ceil_mode=True` everywhere and averages that count the
    padding (`count_include_pad=True`). This layer pads explicitly (-inf for
    max, zeros for average) and pools `valid`.

    Args:
        pool_type: `"max"` or `"avg"`.
        pool_size: int, square window.
        strides: int.
        padding: int, symmetric padding on both spatial axes.
        ceil_mode: bool, round the output size up (PyTorch's rule that the
            last window must start inside the input applies).

    Call arguments:
        inputs: tensor (N, H, W, C).

    Returns:
        Tensor (N, H_out, W_out, C).
    """

    def __init__(self, pool_type="max", pool_size=3, strides=2, padding=0,
                 ceil_mode=True, **kwargs):
        super().__init__(**kwargs)
        if pool_type not in POOL_TYPES:
            raise ValueError(
                f"`pool_type` must be one of {POOL_TYPES}. "
                f"Received: pool_type={pool_type!r}"
            )
        for arg, value, low in (("pool_size", pool_size, 1),
                                ("strides", strides, 1),
                                ("padding", padding, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(
                    f"`{arg}` must be an int >= {low}. Received: {arg}={value!r}"
                )
        if padding > pool_size // 2:
            raise ValueError(
                "`padding` must be at most half of `pool_size`. "
                f"Received: padding={padding}, pool_size={pool_size}"
            )
        self.pool_type = pool_type
        self.pool_size = pool_size
        self.strides = strides
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)

    def _pads(self, size):
        out = pooled_size(size, self.pool_size, self.strides, self.padding,
                          self.ceil_mode)
        needed = (out - 1) * self.strides + self.pool_size
        extra = max(needed - size - 2 * self.padding, 0)
        return out, extra

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"TorchPooling2D expects rank-4 NHWC input. "
                f"Received: input_shape={input_shape}"
            )
        for size in input_shape[1:3]:
            if size is None:
                raise ValueError(
                    "TorchPooling2D needs static spatial sizes. "
                    f"Received: input_shape={input_shape}"
                )
            _, extra = self._pads(size)
            if self.pool_type == "avg" and extra:
                # PyTorch shrinks the divisor of such windows; BN-Inception
                # never produces them (its average pools have stride 1).
                raise ValueError(
                    "Average pooling whose ceil-mode windows overhang the "
                    f"padded input is not supported. Received: "
                    f"input_shape={input_shape}, pool_size={self.pool_size}, "
                    f"strides={self.strides}"
                )

    def call(self, inputs):
        _, extra_h = self._pads(inputs.shape[1])
        _, extra_w = self._pads(inputs.shape[2])
        p = self.padding
        pads = [[0, 0], [p, p + extra_h], [p, p + extra_w], [0, 0]]
        if self.pool_type == "avg":
            inputs = ops.pad(inputs, pads, constant_values=0.0)
        elif max(p + extra_h, p + extra_w) == 1:
            # Every window that reaches a padded cell also holds the edge
            # cell it repeats, so edge padding gives PyTorch's -inf result.
            # (Padding bfloat16 with -inf gave sporadic garbage on CPU.)
            # Slices and a concatenation rather than a symmetric MirrorPad:
            # the same values, but ONNX has no symmetric pad (tf2onnx
            # emulates it with Compress/ScatterElements) and LiteRT's XNNPACK
            # does not take MIRROR_PAD.
            inputs = _edge_pad(inputs, p, p + extra_h, axis=1)
            inputs = _edge_pad(inputs, p, p + extra_w, axis=2)
        elif max(p + extra_h, p + extra_w) > 1:
            lowest = float(np.finfo(
                "float16" if inputs.dtype == "float16" else "float32").min)
            if str(inputs.dtype) == "bfloat16":
                lowest = -3.38e38
            inputs = ops.pad(inputs, pads, constant_values=lowest)
        pool = ops.max_pool if self.pool_type == "max" else ops.average_pool
        return pool(inputs, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        args = (self.pool_size, self.strides, self.padding, self.ceil_mode)
        return (n, pooled_size(h, *args), pooled_size(w, *args), c)

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_type=self.pool_type,
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
        )
        return config

