"""Adam / AdamW with per-variable learning-rate multipliers.

Keras 3 optimizers take one learning rate for every variable. The ALM's box
regressors (`box_kernel`, `box_bias` of every AttributeLocalization layer)
sometimes need their own: the bias of a box moves by at most about the
learning rate per Adam step, so in a short schedule (the demo's few hundred
steps at 1e-4) a box can move only through its kernel, i.e. through the
image's features, and settles wherever the features first pull it (see
BUILD_NOTES, "Demo, pictures, predictions"). A multiplier per variable name
fixes that with ONE optimizer, so checkpoints, resumes, loss scaling and
distribution strategies are unchanged.

A multiplier applies to the optimizer's update of the variables whose last
path component (the weight's name, e.g. `box_bias`) it names; 0 freezes
them. AdamW's decoupled decay is not scaled.
"""

from __future__ import annotations

from typing import Mapping, Optional

import keras

from alm_tf.config import check_lr_multiplier
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

        def build(self, variables):
            self._index_multipliers = tuple(
                self.lr_multipliers.get(weight_name(v), 1.0) for v in variables)
            super().build(variables)

        def update_step(self, gradient, variable, learning_rate):
            multiplier = self._index_multipliers[self._get_variable_index(variable)]
            if multiplier != 1.0:
                learning_rate = learning_rate * multiplier
            return super().update_step(gradient, variable, learning_rate)

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
