"""All Attribute Localization Modules of one pyramid level, vectorized."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from alm_tf import ops as alm_ops
from alm_tf.names import COMBINE_MODES, UPSAMPLING_MODES

#: The layer's weight names (the checkpoint import and the optimizer's
#: learning-rate multipliers refer to them).
LATERAL_KERNEL, LATERAL_BIAS = "lateral_kernel", "lateral_bias"
ATT_KERNEL1, ATT_BIAS1 = "att_kernel1", "att_bias1"
ATT_KERNEL2, ATT_BIAS2 = "att_kernel2", "att_bias2"
BOX_KERNEL, BOX_BIAS = "box_kernel", "box_bias"
CLS_KERNEL, CLS_BIAS = "cls_kernel", "cls_bias"


def _torch_uniform(fan_in):
    """PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    limit = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-limit, limit)


@keras.saving.register_keras_serializable(package="alm_tf")
class AttributeLocalization(keras.layers.Layer):
    """The M Attribute Localization Modules (ALMs) of one feature level.

    Tang et al., "Improving Pedestrian Attribute Recognition With
    Weakly-Supervised Multi-Scale Attribute-Specific Localization", ICCV 2019,
    Section 3.2. For each attribute m and the level's feature map X:
    SE-style channel attention a_m with a residual (X_m = X * a_m + X), a box
    (sx, sy, tx, ty) regressed from the pooled X_m, X_m resampled bilinearly
    inside the box (border clamping, align_corners=False) to the same size,
    averaged, and classified to one logit.

    Every attribute's weights carry a leading attribute axis: there is no
    loop over attributes. "Resample then average" is computed as a weighted
    sum with the separable (rank-1) bilinear weights, so no per-attribute
    resampled map (N, M, H, W, C) ever exists.

    The level map X is given implicitly by its parts, coarse to fine, as the
    feature pyramid builds it: X = combine(up(...up(part_0)...), ...,
    part_last), where each `up` is one upsampling step to the next part's
    size and `combine` is a concatenation (the official order: upsampled
    higher level first), a sum, or (`"none"`) the last part alone. Because
    pooling is linear, the upsampling matrices are folded into the pooling
    weights and the upsampled maps never exist. With `lateral_units`, the
    last part is a raw backbone tap whose lateral 1x1 conv (this layer's
    `lateral_kernel`, `lateral_bias`) is applied after pooling: the pooling
    weights sum to one, so the conv commutes with the pooling.

    Args:
        num_attributes: int, M.
        combine: `"concat"`, `"add"` or `"none"` (how the parts combine).
        upsampling: `"bilinear"` (PyTorch align_corners=False) or
            `"nearest"`.
        channel_attention: bool; False drops the attention (X_m = X).
        reduction: int, the attention bottleneck is C // reduction.
        lateral_units: int or None; project the last part to this many
            channels with a 1x1 conv after pooling.

    Call arguments:
        inputs: list of tensors (N, h_k, w_k, c_k), coarse to fine; the last
            one sets the level's size (H, W).

    Returns:
        `[logits (N, M), boxes (N, M, 4)]`, boxes as normalized
        [y1, x1, y2, x2] from the transform (sx, sy, tx, ty):
        ((ty - sy + 1) / 2, (tx - sx + 1) / 2, (ty + sy + 1) / 2,
        (tx + sx + 1) / 2), unclipped; `alm_tf.ops.boxes_to_theta` inverts it.
    """

    def __init__(self, num_attributes, combine="concat", upsampling="bilinear",
                 channel_attention=True, reduction=16, lateral_units=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_attributes, int) or num_attributes < 1:
            raise ValueError(
                "`num_attributes` must be a positive int. "
                f"Received: num_attributes={num_attributes!r}"
            )
        if combine not in COMBINE_MODES:
            raise ValueError(
                f"`combine` must be one of {COMBINE_MODES}. "
                f"Received: combine={combine!r}"
            )
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(
                f"`upsampling` must be one of {UPSAMPLING_MODES}. "
                f"Received: upsampling={upsampling!r}"
            )
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(
                f"`reduction` must be a positive int. Received: "
                f"reduction={reduction!r}"
            )
        if lateral_units is not None and (
                not isinstance(lateral_units, int) or lateral_units < 1):
            raise ValueError(
                "`lateral_units` must be None or a positive int. "
                f"Received: lateral_units={lateral_units!r}"
            )
        self.num_attributes = num_attributes
        self.combine = combine
        self.upsampling = upsampling
        self.channel_attention = bool(channel_attention)
        self.reduction = reduction
        self.lateral_units = lateral_units

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        shapes = self._check_parts(input_shape)
        self._fold_upsampling([(s[1], s[2]) for s in shapes])
        self._add_weights(c_in=shapes[-1][3])

    def _check_parts(self, input_shape) -> list:
        """Checks the parts' shapes; sets the level's size and channels."""
        shapes = [tuple(s) for s in input_shape]
        if not shapes or any(len(s) != 4 for s in shapes):
            raise ValueError(
                "AttributeLocalization expects a list of rank-4 NHWC maps. "
                f"Received: input_shape={input_shape}"
            )
        if any(d is None for s in shapes for d in s[1:]):
            raise ValueError(
                "AttributeLocalization needs static spatial sizes and "
                f"channels. Received: input_shape={input_shape}"
            )
        if self.combine == "none" and len(shapes) != 1:
            raise ValueError(
                "combine='none' takes exactly one part. "
                f"Received: {len(shapes)} parts"
            )
        self.part_shapes = shapes
        self.height, self.width = shapes[-1][1], shapes[-1][2]
        channels = [s[3] for s in shapes]
        if self.lateral_units:
            channels[-1] = self.lateral_units
        if self.combine == "add" and len(set(channels)) != 1:
            raise ValueError(
                "combine='add' needs parts with equal channels. "
                f"Received: channels={channels}"
            )
        self.part_channels = channels
        self.channels = channels[0] if self.combine == "add" else sum(channels)
        return shapes

    def _fold_upsampling(self, sizes) -> None:
        """The chain of upsampling steps from each part to the level, folded.

        None for the last part (the identity); `_mean_weights` is the plain
        mean of the level map as weights on each part.
        """
        self._fold_y, self._fold_x, self._mean_weights = [], [], []
        for k in range(len(sizes)):
            my = np.eye(sizes[k][0])
            mx = np.eye(sizes[k][1])
            for step in range(k + 1, len(sizes)):
                my = alm_ops.upsampling_matrix(
                    sizes[step - 1][0], sizes[step][0], self.upsampling) @ my
                mx = alm_ops.upsampling_matrix(
                    sizes[step - 1][1], sizes[step][1], self.upsampling) @ mx
            last = k == len(sizes) - 1
            self._fold_y.append(None if last else my.astype(np.float32))
            self._fold_x.append(None if last else mx.astype(np.float32))
            # mean_hw (My X Mx^T) = sum_ab mean_h(My)[a] mean_w(Mx)[b] X[a, b].
            self._mean_weights.append(np.outer(my.mean(0), mx.mean(0)).reshape(
                1, 1, -1).astype(np.float32))

    def _add_weights(self, c_in: int) -> None:
        """The layer's weights. Keras saves a layer's variables by position
        (`vars/0`, `vars/1`, ...), so their order is part of every saved file."""
        m, c = self.num_attributes, self.channels
        if self.lateral_units:
            self.lateral_kernel = self.add_weight(
                name=LATERAL_KERNEL, shape=(c_in, self.lateral_units),
                initializer=_torch_uniform(c_in))
            self.lateral_bias = self.add_weight(
                name=LATERAL_BIAS, shape=(self.lateral_units,),
                initializer=_torch_uniform(c_in))
        if self.channel_attention:
            r = c // self.reduction
            if r < 1:
                raise ValueError(
                    f"Channel attention needs channels >= reduction. "
                    f"Received: channels={c}, reduction={self.reduction}")
            self.att_kernel1 = self.add_weight(
                name=ATT_KERNEL1, shape=(m, c, r),
                initializer=_torch_uniform(c))
            self.att_bias1 = self.add_weight(
                name=ATT_BIAS1, shape=(m, r), initializer=_torch_uniform(c))
            self.att_kernel2 = self.add_weight(
                name=ATT_KERNEL2, shape=(m, r, c),
                initializer=_torch_uniform(r))
            self.att_bias2 = self.add_weight(
                name=ATT_BIAS2, shape=(m, c), initializer=_torch_uniform(r))
        self.box_kernel = self.add_weight(
            name=BOX_KERNEL, shape=(m, c, 4), initializer=_torch_uniform(c))
        self.box_bias = self.add_weight(
            name=BOX_BIAS, shape=(m, 4), initializer=_torch_uniform(c))
        self.cls_kernel = self.add_weight(
            name=CLS_KERNEL, shape=(m, c), initializer=_torch_uniform(c))
        self.cls_bias = self.add_weight(
            name=CLS_BIAS, shape=(m,), initializer=_torch_uniform(c))

    # ------------------------------------------------------------------- call
    def _lateral(self, pooled):
        return ops.matmul(pooled, self.lateral_kernel) + self.lateral_bias

    def _combine(self, pooled):
        if self.combine == "add":
            return sum(pooled[1:], pooled[0])
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, -1)

    def call(self, inputs):
        dtype = self.compute_dtype
        last = len(inputs) - 1
        flats = [ops.reshape(ops.cast(p, dtype), (-1, p.shape[1] * p.shape[2], p.shape[3]))
                 for p in inputs]  # N, h*w, c
        # The level map's plain mean: one broadcast matmul per part with
        # constant weights (the folded upsampling's), no transpose of a map.
        means = [ops.matmul(ops.cast(w, dtype), flat)
                 for w, flat in zip(self._mean_weights, flats)]  # N, 1, c
        if self.lateral_units:
            means[last] = self._lateral(means[last])
        mean = ops.reshape(self._combine(means), (1, -1, self.channels))
        # Attribute axis first: batched matmuls over M. The mean is tiled
        # over M rather than broadcast inside a matmul: the same products,
        # but OpenVINO's CPU plugin (2026.4) fails on a batched matmul that
        # broadcasts its batch axis.
        tiled = ops.tile(mean, (self.num_attributes, 1, 1))  # M, N, C
        if self.channel_attention:
            hidden = ops.relu(ops.matmul(tiled, self.att_kernel1)
                              + ops.expand_dims(self.att_bias1, 1))  # M, N, R
            scale = 1.0 + ops.sigmoid(
                ops.matmul(hidden, self.att_kernel2)
                + ops.expand_dims(self.att_bias2, 1))  # M, N, C
            attended_mean = tiled * scale
        else:
            scale = None
            attended_mean = tiled
        raw = ops.matmul(attended_mean, self.box_kernel) + ops.expand_dims(self.box_bias, 1)
        theta = ops.transpose(alm_ops.constrain_theta(raw), (1, 0, 2))  # N,M,4
        wy, wx = alm_ops.pooled_sampling_weights(theta, self.height, self.width)
        pooled = []
        for k, flat in enumerate(flats):
            wy_k = wy if k == last else ops.matmul(wy, ops.cast(self._fold_y[k], dtype))
            wx_k = wx if k == last else ops.matmul(wx, ops.cast(self._fold_x[k], dtype))
            weights = ops.reshape(ops.expand_dims(wy_k, -1) * ops.expand_dims(wx_k, -2),
                                  (-1, self.num_attributes, flat.shape[1]))
            pooled.append(ops.matmul(weights, flat))  # N, M, c
        if self.lateral_units:
            pooled[last] = self._lateral(pooled[last])
        # One transpose to the attribute-major layout of `scale`, then
        # sum_c features[m, n, c] * cls_kernel[m, c] as a batched matmul
        # over M (OpenVINO 2026.4's CPU plugin miscomputes the multiply +
        # reduce_sum form when no attention scale sits in between).
        features = ops.transpose(self._combine(pooled), (1, 0, 2))  # M, N, C
        if scale is not None:
            features = features * scale
        logits = ops.matmul(features, ops.expand_dims(self.cls_kernel, -1))  # M, N, 1
        logits = ops.transpose(ops.reshape(logits, (self.num_attributes, -1))) + self.cls_bias
        return [logits, alm_ops.theta_to_boxes(theta)]

    def compute_output_shape(self, input_shape):
        n = input_shape[0][0]
        return [(n, self.num_attributes), (n, self.num_attributes, 4)]

    def get_config(self):
        config = super().get_config()
        config.update(
            num_attributes=self.num_attributes,
            combine=self.combine,
            upsampling=self.upsampling,
            channel_attention=self.channel_attention,
            reduction=self.reduction,
            lateral_units=self.lateral_units,
        )
        return config
