"""Adam / AdamW with per-variable learning-rate multipliers.

Keras 3 optimizers take one learning rate for every variable. The ALM's box
regressors (`box_kernel`, `box_bias` of every AttributeLocalization layer)
sometimes need their own: the bias of a box moves by at most about the
learning rate per Adam step, so in a short schedule (such as the demo's
ALM stage) a box can move only through its kernel, i.e. through the
image's features, and settles wherever the features first pull it. A
multiplier per variable name fixes that with ONE optimizer, so
checkpoints, resumes, loss scaling and distribution strategies are
unchanged.

A multiplier applies to the optimizer's update of the variables whose last
path component (the weight's name, e.g. `box_bias`) it names; 0 freezes
them. AdamW's decoupled decay is not scaled.

The update is Keras's Adam, op for op, with one difference in the graph it
builds: Keras computes the step's scalars (the cast learning rate, the bias
corrections `beta ** step` and `alpha`) again for every variable, about ten
ops each; here they are computed once per step for each (dtype, device,
multiplier). The trainer uses these classes with or without multipliers.
The values are bit for bit Keras's (tests/training/test_optimizers.py).
"""

from __future__ import annotations

from typing import Mapping, Optional

import keras
import tensorflow as tf

from alm_tf.training.config import check_lr_multiplier
# Weight names of the ALM box regressors (theta = kernel . features + bias).
from alm_tf.layers.attribute_localization import BOX_BIAS, BOX_KERNEL


def weight_name(variable) -> str:
    """The last component of a Keras variable's path (`st_3b/box_bias` -> `box_bias`)."""
    return str(getattr(variable, "path", variable.name)).split("/")[-1]


def _with_multipliers(base):
    class Scaled(base):
        def __init__(self, *args, lr_multipliers: Optional[Mapping[str, float]] = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.lr_multipliers = {str(name): check_lr_multiplier(f"lr_multipliers[{name!r}]", value)
                                   for name, value in dict(lr_multipliers or {}).items()}
            self._index_multipliers = ()
            self._step_scalars = None  # {(dtype, device, multiplier): alpha} during one update

        def build(self, variables):
            self._index_multipliers = tuple(
                self.lr_multipliers.get(weight_name(v), 1.0) for v in variables)
            super().build(variables)

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            self._step_scalars = {}
            try:
                super()._backend_update_step(grads, trainable_variables, learning_rate)
            finally:
                self._step_scalars = None

        def _alpha(self, learning_rate, dtype):
            # keras.optimizers.Adam.update_step's scalars, in its order.
            lr = tf.cast(learning_rate, dtype)
            local_step = tf.cast(self.iterations + 1, dtype)
            beta_1_power = tf.pow(tf.cast(self.beta_1, dtype), local_step)
            beta_2_power = tf.pow(tf.cast(self.beta_2, dtype), local_step)
            return lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)

        def update_step(self, gradient, variable, learning_rate):
            index = self._get_variable_index(variable)
            multiplier = self._index_multipliers[index]
            if multiplier != 1.0:
                learning_rate = learning_rate * multiplier
            if self._step_scalars is None or self.amsgrad:
                return super().update_step(gradient, variable, learning_rate)
            # keras.optimizers.Adam.update_step, the scalars computed once.
            key = (variable.dtype, variable.device, multiplier)
            alpha = self._step_scalars.get(key)
            if alpha is None:
                alpha = self._step_scalars[key] = self._alpha(learning_rate, variable.dtype)
            gradient = tf.cast(gradient, variable.dtype)
            m, v = self._momentums[index], self._velocities[index]
            self.assign_add(m, tf.multiply(tf.subtract(gradient, m), 1 - self.beta_1))
            self.assign_add(v, tf.multiply(tf.subtract(tf.square(gradient), v), 1 - self.beta_2))
            self.assign_sub(variable, tf.divide(tf.multiply(m, alpha), tf.add(tf.sqrt(v), self.epsilon)))

        def get_config(self):
            config = super().get_config()
            config["lr_multipliers"] = dict(self.lr_multipliers)
            return config

    Scaled.__name__ = Scaled.__qualname__ = f"{base.__name__}WithLRMultipliers"
    Scaled.__doc__ = f"`keras.optimizers.{base.__name__}` with `lr_multipliers` {{weight name: factor}}."
    return Scaled


AdamWithLRMultipliers = _with_multipliers(keras.optimizers.Adam)
AdamWWithLRMultipliers = _with_multipliers(keras.optimizers.AdamW)

__all__ = ["AdamWithLRMultipliers", "AdamWWithLRMultipliers", "BOX_BIAS", "BOX_KERNEL", "weight_name"]
