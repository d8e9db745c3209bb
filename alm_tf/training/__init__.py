"""Training of ALM, in parts: config, preparation, the train step, the loop.

- `config`: `TrainConfig` (holds the model's `ModelConfig`).
- `setup`: the plan the data decides, the run's config.json, the resume
  check, the model/optimizer/checkpoint state.
- `step`: the optimizer and `make_train_step` (one distributed step).
- `loop`: `train(config, callbacks=...)`, the resumable loop.
- `hooks`: what the loop does around its steps (TensorBoard, progress,
  validation and best model, the epoch's log line, Keras callbacks,
  checkpoints).

`train(TrainConfig(...))` is the library entry point; `pipelines/train.py`
(`alm-train`) turns flags into a TrainConfig and calls it.
"""

from alm_tf.training.config import ConfigError, TrainConfig
from alm_tf.training.loop import NonFiniteLossError, TrainResult, train

__all__ = ["ConfigError", "NonFiniteLossError", "TrainConfig", "TrainResult", "train"]
