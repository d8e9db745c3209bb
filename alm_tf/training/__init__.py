"""Training of ALM: config, custom distributed loop, checkpoints, model dir.

`train(TrainConfig(...))` is the library entry point; `pipelines/train.py`
(`alm-train`) turns flags into a TrainConfig and calls it.
"""

from alm_tf.training.config import ConfigError, TrainConfig
from alm_tf.training.loop import NonFiniteLossError, TrainResult, train

__all__ = ["ConfigError", "NonFiniteLossError", "TrainConfig", "TrainResult", "train"]
