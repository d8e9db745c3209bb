"""Fusion of the per-branch logit vectors (the paper's max voting)."""

from __future__ import annotations

import keras
from keras import ops

from alm_tf.names import FUSION_MODES


@keras.saving.register_keras_serializable(package="alm_tf")
class LogitFusion(keras.layers.Layer):
    """Element-wise fusion of several (N, M) logit vectors.

    Tang et al., ICCV 2019, Section 3.3: at inference the predictions of the
    three ALM levels and the global branch are fused by taking, per
    attribute, the maximum logit ("max voting"); `"mean"` averages instead
    (Table 1's alternative).

    Args:
        mode: `"max"` or `"mean"`.

    Call arguments:
        inputs: list of tensors (N, M).

    Returns:
        Tensor (N, M).
    """

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in FUSION_MODES:
            raise ValueError(
                f"`mode` must be one of {FUSION_MODES}. Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, inputs):
        stacked = ops.stack(list(inputs), axis=0)
        if self.mode == "max":
            return ops.max(stacked, axis=0)
        return ops.mean(stacked, axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
