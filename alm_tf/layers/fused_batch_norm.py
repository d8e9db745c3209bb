"""BatchNormalization that runs as TensorFlow's one fused kernel.

Keras 3's `BatchNormalization` computes the batch moments and the
normalization as separate element-wise ops (mean, squared difference,
mean, rsqrt, mul, add, and as many again for the gradient): on a CPU
every one is a pass over the activation, and BN-Inception has a BatchNorm
after each of its 69 convolutions (BUILD_NOTES.md gives their share of a
training step's time). `FusedBatchNormalization` computes the same thing with
`FusedBatchNormV3` (one pass forward, one `FusedBatchNormGradV3` pass
backward, oneDNN kernels on CPU, cuDNN on GPU, supported by XLA and by
the ONNX, LiteRT and OpenVINO converters).

Same variables, names, configuration and results as the Keras layer
(subclass: `isinstance(layer, keras.layers.BatchNormalization)` holds, and
a checkpoint or `.keras` file of one loads into the other):
- normalization uses the biased batch variance, in float32 (inputs in
  bfloat16 or float16 are upcast first, as Keras does);
- the moving variance is updated with the biased batch variance, as
  Keras does (the fused kernel returns the Bessel-corrected one; it is
  scaled back by (n - 1) / n);
- a layer with `trainable=False` runs on its moving statistics even in
  training mode.
Anything else (masks, renorm, synchronized moments, an axis other than
the last of a 4-D input) runs the Keras layer's own code.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alm_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` as one fused op (4-D, channels last)."""

    def _can_fuse(self, inputs, mask) -> bool:
        return (mask is None and not self.renorm and not self.synchronized
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        if training and self.trainable:
            y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True)[:3]
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            variance = unbiased * ((count - 1.0) / count)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum))
        else:
            y = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, is_training=False)[0]
        return tf.cast(y, self.compute_dtype)
