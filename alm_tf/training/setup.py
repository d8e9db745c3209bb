"""Preparation of a training run: the plan the data decides, the run's
config.json, the resume check, and the trainable state.

`make_plan` reads the manifest and checks every setting against it before
anything is written; `check_resume` compares a run being resumed with the
one on disk; `build_state` creates the model (backbone weights, box
initialisation, init checkpoint, frozen backbone), the optimizer and the
checkpoint that holds them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from alm_tf import artifacts, model as model_lib
from alm_tf import groups as groups_lib
from alm_tf.config import ModelConfig
from alm_tf.data import fingerprint
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.data.manifest import MANIFEST, split_info
from alm_tf.training import distribution, lock
from alm_tf.training.config import CHANGEABLE_ON_RESUME, RESUMABLE_CHANGES, ConfigError, TrainConfig
from alm_tf.training.step import make_optimizer


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What the data and the config decide before any model exists."""

    manifest: dict
    attributes: tuple[str, ...]
    train_split: str
    val_split: Optional[str]
    priors: np.ndarray  # (M,) train positive ratios (loss weighting)
    steps_per_epoch: int
    total_steps: int
    model_config: ModelConfig  # num_attributes set
    #: The attribute groups description (alm_tf.groups.for_data): declared
    #: for the data, else the known groups of its attribute list.
    groups: Optional[dict] = None
    #: What the run reads of its data (`alm_tf.data.fingerprint.of_splits`).
    fingerprint: Optional[dict] = None


def resolve_train_split(manifest: dict, config: TrainConfig) -> str:
    if config.train_split is not None:
        if split_info(manifest, config.train_split) is None:
            raise ConfigError(
                f"train_split {config.train_split!r} is not in the manifest of "
                f"{config.data_dir}. Received: train_split={config.train_split!r}")
        return config.train_split
    for name in ("train", "trainval"):
        if split_info(manifest, name) is not None:
            return name
    raise ConfigError(
        f"The manifest of {config.data_dir} has neither a 'train' nor a 'trainval' "
        "split; name one. Received: train_split=None")


def resolve_val_split(manifest: dict, config: TrainConfig, train_split: str) -> Optional[str]:
    if config.val_split is not None:
        if config.val_split in ("", "none"):
            return None
        if split_info(manifest, config.val_split) is None:
            raise ConfigError(
                f"val_split {config.val_split!r} is not in the manifest of "
                f"{config.data_dir}. Received: val_split={config.val_split!r}")
        return config.val_split
    if train_split != "trainval" and split_info(manifest, "val") is not None:
        return "val"
    return None


def make_plan(config: TrainConfig, manifest: dict, replicas: int = 1) -> TrainingPlan:
    """Checks `config` against the data's manifest; raises ConfigError naming the setting."""
    if config.batch_size % replicas:
        raise ConfigError(f"batch_size must be divisible by the {replicas} replicas. "
                          f"Received: batch_size={config.batch_size}")
    attributes = tuple(manifest["attributes"])
    train_split = resolve_train_split(manifest, config)
    info = split_info(manifest, train_split)
    val_split = resolve_val_split(manifest, config, train_split)
    steps_per_epoch = config.steps_per_epoch or info["num_examples"] // config.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(
            f"The {train_split} split has {info['num_examples']} examples, fewer than one "
            f"batch. Received: batch_size={config.batch_size}")
    try:
        model_config = config.model.with_num_attributes(len(attributes))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        groups = groups_lib.for_data(manifest, config.data_dir).description()
    except groups_lib.GroupsError as e:
        raise ConfigError(f"attribute groups of the data in {config.data_dir}: {e}") from None
    used = fingerprint.of_splits(config.data_dir, manifest, [s for s in (train_split, val_split) if s])
    return TrainingPlan(manifest, attributes, train_split, val_split,
                        np.asarray(info["positive_ratio"], np.float32), steps_per_epoch,
                        config.epochs * steps_per_epoch, model_config, groups, used)


def data_identity(manifest: dict, train_split: str) -> dict:
    """What a resumed run must find again in its data: names and the train split's size."""
    info = split_info(manifest, train_split)
    return {"attributes": list(manifest["attributes"]), "train_split": train_split,
            "train_examples": int(info["num_examples"])}


def run_config(config: TrainConfig, plan: TrainingPlan, runs: Optional[list] = None) -> dict:
    """The model dir's config.json (format in `alm_tf.artifacts`).

    `train` holds the settings in force from the last run on; `runs` (one
    entry per start of `train`: `from_step`, and `changed`, each setting
    that differs from the run before, {"from": old, "to": new}) says which
    steps ran with which values, so the file never claims a value for steps
    that did not use it.
    """
    return {
        "format_version": artifacts.CONFIG_FORMAT,
        "model": plan.model_config.to_dict(),
        "attributes": list(plan.attributes),
        "preprocessing": preprocessing.description(*plan.model_config.image_size,
                                                   plan.model_config.exif_orientation),
        "data": {
            "data_dir": os.path.abspath(config.data_dir),
            "manifest": os.path.abspath(os.path.join(config.data_dir, MANIFEST)),
            "dataset": plan.manifest.get("dataset"),
            "train_split": plan.train_split,
            "val_split": plan.val_split,
            "priors": plan.priors.tolist(),
            "identity": data_identity(plan.manifest, plan.train_split),
            fingerprint.KEY: plan.fingerprint,
        },
        "train": config.training_fields(),
        "runs": list(runs) if runs is not None else [{"from_step": 0}],
        "threshold": artifacts.DEFAULT_THRESHOLD,
        artifacts.GROUPS_KEY: plan.groups,
    }


def next_runs(config: TrainConfig, saved: dict, from_step: int) -> list:
    """The `runs` history of a resumed run: the saved one plus this start."""
    runs = list(saved.get("runs") or [{"from_step": 0}])  # older files: one run so far
    _, train, _ = _saved_settings(saved)
    changed = {key: {"from": train.get(key), "to": new} for key, new in config.training_fields().items()
               if key in train and train[key] != new and key not in ("progress",)}
    entry = {"from_step": int(from_step)}
    if changed:
        entry["changed"] = changed
    return runs + [entry]


def _saved_settings(saved: dict) -> tuple[dict, dict, Optional[dict]]:
    """(model fields, training fields, data identity) of a config.json, format 1 or 2.

    Format 1 stored the model's fields inside `train` too, and no identity.
    Runs started before data fingerprints existed have an identity without one.
    """
    model = dict(saved.get("model", {}))
    train = dict(saved.get("train", {}))
    if saved.get("format_version", 1) < 2:
        for key in [f.name for f in dataclasses.fields(ModelConfig)]:
            train.pop(key, None)
        return model, train, None
    return model, train, saved.get("data", {}).get("identity")


def check_resume(config: TrainConfig, plan: TrainingPlan, saved: dict) -> dict:
    """Refuses to resume a run whose settings or data differ (one line naming the setting).

    The settings of `CHANGEABLE_ON_RESUME` may differ when
    `config.allow_changed_settings`.

    Returns:
        {setting: (saved value, new value)} of those changed settings.
    """
    model, train, identity = _saved_settings(saved)
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for key, new in plan.model_config.to_dict().items():
        old = model.get(key, defaults.get(key))  # a key the saved run predates had its default
        if key == "backbone_weights" and old is not None and new is None:
            continue  # the flag may be dropped on a resume: the checkpoint holds the weights
        if old != new:
            raise ConfigError(f"{key} differs from the run in model_dir {config.model_dir} "
                              f"({old!r}); resuming needs the same value. Received: {key}={new!r}")
    train_defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                      if f.default is not dataclasses.MISSING}
    changed = {}
    for key, new in config.training_fields().items():
        if key in RESUMABLE_CHANGES:
            continue
        old = train.get(key, train_defaults.get(key))
        if old == new:
            continue
        if key in CHANGEABLE_ON_RESUME:
            if config.allow_changed_settings:
                changed[key] = (old, new)
                continue
            raise ConfigError(f"{key} differs from the run in model_dir {config.model_dir} "
                              f"({old!r}); resuming needs the same value, or "
                              f"--allow_changed_settings to change it from this step on. "
                              f"Received: {key}={new!r}")
        raise ConfigError(f"{key} differs from the run in model_dir {config.model_dir} "
                          f"({old!r}); resuming needs the same value. Received: {key}={new!r}")
    _check_same_data(config, plan, identity, saved.get("data", {}))
    return changed


def _check_same_data(config: TrainConfig, plan: TrainingPlan, identity: Optional[dict], saved_data: dict) -> None:
    """Refuses a resume on other data: the attribute list, the train split's
    size, and (for runs that recorded a fingerprint) every read shard's
    content hash and the train split's positive ratios (the loss weights)."""
    differs = None
    if identity is not None:
        now = data_identity(plan.manifest, plan.train_split)
        differs = next((f"its {key} differs" for key, value in now.items() if identity.get(key) != value), None)
    saved_fingerprint = saved_data.get(fingerprint.KEY)
    if differs is None and saved_fingerprint and plan.fingerprint:
        differs = fingerprint.difference(saved_fingerprint, plan.fingerprint)
        if differs is None and saved_data.get("priors") != plan.priors.tolist():
            differs = f"the positive_ratio of split {plan.train_split!r} in its manifest.json differs"
    if differs:
        raise ConfigError(f"the data in {config.data_dir} is not the data of the run in "
                          f"model_dir {config.model_dir}: {differs}")


def saved_step(model_dir: str) -> Optional[int]:
    """The step of the last checkpoint in `model_dir`, or None (read without building a model)."""
    ckpt_dir = artifacts.checkpoints_dir(model_dir)
    latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
    if not latest:
        return None
    return int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE"))


def check_model_dir_is_a_folder(model_dir: str) -> None:
    """A model dir is a folder, or nothing yet."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ConfigError(f"model_dir exists and is not a folder. Received: model_dir={model_dir!r}")


def check_fresh_model_dir(model_dir: str) -> None:
    """A fresh run (no config.json) needs a new or empty folder (but for its own
    lock file): nothing of another kind is mixed in."""
    check_model_dir_is_a_folder(model_dir)
    if os.path.isdir(model_dir) and set(os.listdir(model_dir)) - {lock.LOCK_NAME}:
        raise ConfigError(f"model_dir is not empty and holds no run to resume (no "
                          f"{artifacts.CONFIG_NAME}); give a new or empty folder. "
                          f"Received: model_dir={model_dir!r}")


@dataclasses.dataclass
class TrainingState:
    """The model, the optimizer and everything a checkpoint restores."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    epoch: tf.Variable
    best_mA: tf.Variable
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    write_dir: str
    resumed_from: Optional[str]
    init_matched: Optional[tuple[int, int]]


def load_matching_weights(model: keras.Model, path: str) -> tuple[int, int]:
    """Copies every layer whose name and weight shapes match from a .keras file.

    Returns (matched, skipped): counts of the model's layers with weights
    that were loaded / left as initialised.
    """
    source = artifacts.load_keras_model(path)
    source_layers = {layer.name: layer for layer in artifacts.leaf_layers(source)}
    matched, skipped = 0, 0
    for layer in artifacts.leaf_layers(model):
        if not layer.weights:
            continue
        other = source_layers.get(layer.name)
        ok = other is not None and [tuple(w.shape) for w in other.weights] == [
            tuple(w.shape) for w in layer.weights]
        if ok:
            layer.set_weights(other.get_weights())
            matched += 1
        else:
            skipped += 1
            logging.info("init_checkpoint: skipped layer %s", layer.name)
    logging.info("init_checkpoint %s: %d layers matched, %d skipped", path, matched, skipped)
    return matched, skipped


def build_state(config: TrainConfig, plan: TrainingPlan, strategy: tf.distribute.Strategy,
                model_builder: Optional[Callable[[ModelConfig], keras.Model]] = None,
                say: Callable[[str], None] = print) -> TrainingState:
    """The model and optimizer in `strategy`'s scope, restored from the last checkpoint.

    A fresh run starts from `model.backbone_weights`, then the box kernel
    initialisation, then `init_checkpoint`; a resumed run from its
    checkpoint alone (the backbone weights are not read again).
    """
    ckpt_dir = artifacts.checkpoints_dir(config.model_dir)
    latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
    model_config = plan.model_config
    if latest:
        model_config = model_config.replace(backbone_weights=None)
    builder = model_builder or model_lib.build_model_from_config
    with strategy.scope():
        model = builder(model_config)
        if config.box_kernel_init == "zeros":
            say(f"box_kernel_init=zeros: the box kernels of {model_lib.zero_box_kernels(model)} ALM "
                "layers start at zero")
        init_matched = None
        if not latest and config.init_checkpoint:
            init_matched = load_matching_weights(model, config.init_checkpoint)
            say(f"init_checkpoint: {init_matched[0]} layers matched, {init_matched[1]} skipped")
        if config.freeze_backbone:
            frozen = model_lib.freeze_backbone(model)
            say(f"freeze_backbone: {frozen:,} backbone weights frozen, "
                f"{model_lib.count_params(model):,} trained")
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        best = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_mA")
    # State for any randomness drawn inside the loop (none at present: the
    # data order and flips are seeded by (seed, epoch) in the input pipeline).
    rng = tf.random.Generator.from_seed(config.seed)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch,
                                     best_mA=best, rng=rng)
    if distribution.is_chief(strategy):
        write_dir = ckpt_dir
    else:
        task_type, task_id = distribution.worker_info(strategy)
        write_dir = os.path.join(ckpt_dir, f".tmp_{task_type}_{task_id}")
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=config.keep_checkpoints,
                                         checkpoint_name="ckpt")
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        logging.info("Resuming from %s (step %d)", latest, int(step.numpy()))
    return TrainingState(model, optimizer, step, epoch, best, checkpoint, manager, write_dir,
                         latest, init_matched)
