"""Keras layers of the ALM model (registered for `.keras` loading)."""

from alm_tf.layers.attribute_localization import AttributeLocalization
from alm_tf.layers.fused_batch_norm import FusedBatchNormalization
from alm_tf.layers.logit_fusion import LogitFusion
from alm_tf.layers.torch_pooling_2d import TorchPooling2D

__all__ = ["AttributeLocalization", "FusedBatchNormalization", "LogitFusion", "TorchPooling2D"]
