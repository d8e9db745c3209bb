"""What the training loop does around its steps, one hook per job.

The loop (`alm_tf.training.loop`) runs steps and keeps what the weights
depend on (the schedule, the data order, the step counter); everything
else it hands to hooks, as Model Garden's trainer hands summaries,
evaluation and checkpointing to its actions:

- `TensorBoardHook`: the scalars of every step and epoch (logs/train,
  logs/validation; the chief writes, other workers write nothing);
- `ProgressHook`: a progress bar per epoch (chief, `TrainConfig.progress`);
- `ValidationHook`: the validation split's metrics at every epoch end and
  best.keras when its mA improves;
- `EpochLogHook`: one log line per epoch;
- `KerasCallbacksHook`: the caller's Keras callbacks;
- `CheckpointHook`: a checkpoint at every epoch end and every
  `TrainConfig.checkpoint_every_steps` steps.

The loop calls, in the order of `make_hooks`: `on_begin()` once;
`on_epoch_begin(epoch, offset)`; `on_step_end(log)` after every step;
`on_epoch_end(epoch, record)` at an epoch's end (a hook may add to the
record: validation adds "val" before the hooks after it read it);
`on_save_point(step)` at every epoch end and checkpoint period;
`on_epoch_close()` when the epoch's steps are done or the run stops inside
it; `on_end(step)` once, after final.keras.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from typing import Optional

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tqdm import tqdm

from alm_tf import artifacts
from alm_tf.evaluation import metrics
from alm_tf.evaluation import report as evaluation
from alm_tf.training import setup
from alm_tf.training.config import TrainConfig

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def scalar_summary(name: str, value, step: int) -> None:
    """`tf.summary.scalar` without needing the tensorboard package installed."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_SCALAR_METADATA)


def save_keras(model: keras.Model, path: str, plan: setup.TrainingPlan) -> None:
    """A .keras file of the run that carries its attribute names, model config and groups."""
    artifacts.save_keras(model, path, artifacts.keras_description(plan.attributes, plan.model_config,
                                                                  groups=plan.groups))


@dataclasses.dataclass(frozen=True)
class StepLog:
    """One finished step: its number (1-based), loss and timing."""

    step: int
    epoch: int
    loss: float
    branches: dict  # loss of each branch (name -> scalar tensor)
    learning_rate: float
    input_seconds: float  # waiting for the batch
    step_seconds: float  # the whole step, input included


class Hook:
    """The loop's calls; every method does nothing unless a hook overrides it."""

    def on_begin(self) -> None:
        pass

    def on_epoch_begin(self, epoch: int, offset: int) -> None:
        pass

    def on_step_end(self, log: StepLog) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        pass

    def on_save_point(self, step: int) -> None:
        pass

    def on_epoch_close(self) -> None:
        pass

    def on_end(self, step: int) -> None:
        pass


class TensorBoardHook(Hook):
    """Loss, learning rate, speed per step; train and validation metrics per epoch."""

    def __init__(self, model_dir: str, chief: bool, batch_size: int):
        if chief:
            self._train = tf.summary.create_file_writer(artifacts.logs_dir(model_dir, "train"))
            self._val = tf.summary.create_file_writer(artifacts.logs_dir(model_dir, "validation"))
        else:
            self._train = self._val = tf.summary.create_noop_writer()
        self._batch_size = batch_size
        self._step = 0

    def on_step_end(self, log: StepLog) -> None:
        self._step = log.step
        seconds = max(log.step_seconds, 1e-9)
        with self._train.as_default(step=log.step):
            scalar_summary("loss/total", log.loss, log.step)
            for name, value in log.branches.items():
                scalar_summary(f"loss/{name}", float(value), log.step)
            scalar_summary("learning_rate", log.learning_rate, log.step)
            scalar_summary("images_per_second", self._batch_size / seconds, log.step)
            scalar_summary("input_wait_fraction", log.input_seconds / seconds, log.step)

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        step = record["step"]
        with self._train.as_default(step=step):
            scalar_summary("train_mA", record["train"]["mA"], step)
        if "val" in record:
            with self._val.as_default(step=step):
                for key, value in record["val"].items():
                    scalar_summary(key, value, step)

    def on_epoch_close(self) -> None:
        self._train.flush()
        self._val.flush()


class ProgressHook(Hook):
    """A tqdm bar per epoch with the loss and images per second."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self._config, self._steps_per_epoch = config, steps_per_epoch
        self._bar = None

    def on_epoch_begin(self, epoch: int, offset: int) -> None:
        self._bar = tqdm(total=self._steps_per_epoch, initial=offset, unit="step",
                         desc=f"epoch {epoch + 1}/{self._config.epochs}", leave=True)

    def on_step_end(self, log: StepLog) -> None:
        images_per_s = self._config.batch_size / max(log.step_seconds, 1e-9)
        self._bar.set_postfix(loss=f"{log.loss:.4f}", img_s=f"{images_per_s:.1f}")
        self._bar.update(1)

    def on_epoch_close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class ValidationHook(Hook):
    """The validation split's metrics at each epoch end; best.keras on a better mA."""

    def __init__(self, config: TrainConfig, plan: setup.TrainingPlan, state, data_module, chief: bool):
        self._config, self._plan, self._state = config, plan, state
        self._data_module, self._chief = data_module, chief
        model = state.model
        self._predict = tf.function(lambda x: model(x, training=False))

    def _summarize(self) -> dict:
        config, split = self._config, self._plan.val_split
        ds = self._data_module.make_dataset(config.data_dir, split, batch_size=config.batch_size,
                                            image_size=config.image_size, training=False,
                                            allow_corrupt_records=config.allow_corrupt_records,
                                            exif_orientation=config.model.exif_orientation)
        labels, outputs = evaluation.collect_outputs(self._predict, ds, data_dir=config.data_dir,
                                                     split=split)
        return evaluation.summarize(labels, outputs["logits"], from_logits=True)

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        result = self._summarize()
        record["val"] = {k: result[k] for k in metrics.SUMMARY_KEYS}
        if result["mA"] > float(self._state.best_mA.numpy()):
            self._state.best_mA.assign(result["mA"])
            if self._chief:
                save_keras(self._state.model, artifacts.weights_path(self._config.model_dir, "best"),
                           self._plan)


class EpochLogHook(Hook):
    """One log line per epoch: loss, train mA and, with validation, its mA and F1."""

    def __init__(self, val_split: Optional[str]):
        self._val_split = val_split

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        summary = (f"epoch {epoch + 1}: loss {record['train']['loss']:.4f}, train mA "
                   f"{record['train']['mA']:.4f}")
        if "val" in record:
            summary += (f"; {self._val_split} mA {record['val']['mA']:.4f}, "
                        f"F1 {record['val']['f1']:.4f}")
        logging.info(summary)


class KerasCallbacksHook(Hook):
    """The caller's Keras callbacks: studies watch or steer a run without copying the step."""

    def __init__(self, callbacks: Sequence[keras.callbacks.Callback], model: keras.Model):
        self._callbacks, self._model = list(callbacks), model

    def on_begin(self) -> None:
        for callback in self._callbacks:
            callback.set_model(self._model)
            callback.on_train_begin({})

    def on_step_end(self, log: StepLog) -> None:
        for callback in self._callbacks:
            callback.on_train_batch_end(log.step, {"loss": log.loss, "learning_rate": log.learning_rate})

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        for callback in self._callbacks:
            callback.on_epoch_end(epoch, record)

    def on_end(self, step: int) -> None:
        for callback in self._callbacks:
            callback.on_train_end({"step": step})


class CheckpointHook(Hook):
    """A checkpoint at every save point; `last_saved` names the newest one."""

    def __init__(self, state, chief: bool):
        self._state, self._chief = state, chief
        self.last_saved = state.resumed_from

    def on_save_point(self, step: int) -> None:
        self.last_saved = self._state.manager.save(checkpoint_number=int(self._state.step.numpy()))
        if not self._chief:
            shutil.rmtree(self._state.write_dir, ignore_errors=True)


def make_hooks(config: TrainConfig, plan: setup.TrainingPlan, state, data_module, chief: bool,
               callbacks: Sequence[keras.callbacks.Callback],
               checkpoints: CheckpointHook) -> list[Hook]:
    """The hooks of a run, in the order the loop calls them."""
    hooks: list[Hook] = []
    if plan.val_split:
        hooks.append(ValidationHook(config, plan, state, data_module, chief))
    hooks.append(TensorBoardHook(config.model_dir, chief, config.batch_size))
    if config.progress and chief:
        hooks.append(ProgressHook(config, plan.steps_per_epoch))
    hooks += [EpochLogHook(plan.val_split), KerasCallbacksHook(callbacks, state.model), checkpoints]
    return hooks
