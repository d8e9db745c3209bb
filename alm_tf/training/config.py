"""Trainer configuration: one frozen dataclass that HOLDS the model's config.

`TrainConfig.model` is the one `alm_tf.config.ModelConfig` (its
`num_attributes` comes from the data); the trainer's own fields are the
recipe, the data and the run. Config flows flags -> TrainConfig (validated
here) -> `alm_tf.training.train`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from alm_tf.config import ModelConfig
from alm_tf.losses import WEIGHTINGS

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
#: Strategies `cache_features` runs under: one process holds the whole cache.
CACHE_STRATEGIES = ("default", "mirrored")
#: Initialisations of the ALM box regressors' kernels (`TrainConfig.box_kernel_init`).
BOX_KERNEL_INITS = ("torch", "zeros")

#: Fields a resumed run may change: they change where and how the run is
#: kept or shown, or how long it goes on, not what a step computes. Every
#: other field (and the model config) must equal the run being resumed.
#: `data_dir` itself may move; the data is compared through its manifest.
#: `allow_corrupt_records` only says whether bad records may be skipped;
#: the records themselves are checked at every start.
RESUMABLE_CHANGES = ("data_dir", "model_dir", "epochs", "strategy", "jit_compile",
                     "checkpoint_every_steps", "keep_checkpoints", "progress",
                     "allow_corrupt_records", "allow_changed_settings")
#: Fields a resumed run may change only with `allow_changed_settings`
#: (fine-tuning-style restarts: a lower learning rate, another schedule...):
#: they change what the following steps compute but neither the model, the
#: optimizer's variables, the step/epoch arithmetic nor the data, so the
#: checkpoint still restores. config.json's `runs` records each change and
#: the step it took effect at.
CHANGEABLE_ON_RESUME = ("learning_rate", "decay_epochs", "decay_factor", "weight_decay",
                        "loss_weighting", "seed", "deterministic", "shuffle_buffer",
                        "cache_features")


def check_lr_multiplier(name: str, value: Any, error: type = ValueError) -> float:
    """A learning-rate multiplier as a float; `error` naming `name` unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise error(f"{name} must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


class ConfigError(ValueError):
    """A user-facing configuration error; the message names the bad field."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `alm_tf.training.train` needs. Defaults = the paper's recipe.

    Args:
      data_dir: folder with `manifest.json` and TFRecord shards.
      model_dir: output folder (config.json, checkpoints/, logs/, *.keras).
      model: the model (`ModelConfig`; its `num_attributes` is set from
        the data, its `backbone_weights` start the backbone).
      batch_size: GLOBAL batch size, split evenly across replicas.
      epochs: number of epochs (a resumed run may raise it).
      steps_per_epoch: optional cap; default = train examples // batch_size.
      learning_rate: initial learning rate.
      decay_epochs: epochs at which the learning rate is multiplied by
        `decay_factor` (step decay).
      decay_factor: the step decay factor.
      optimizer: `adam` (L2 weight decay added to the gradient, as
        PyTorch's Adam applies `weight_decay`) or `adamw` (decoupled).
      weight_decay: the decay coefficient (0 disables).
      loss_weighting: `official`, `paper` or `none` (see alm_tf.losses).
      train_split: split to train on (None = `train` when the manifest has
        it, else `trainval`).
      val_split: split validated after every epoch ("" or "none" = none;
        None = `val` when the manifest has it and the train split is not
        `trainval`).
      box_lr_multiplier: learning rate of the ALM box regressors' kernels
        (`box_kernel`) relative to `learning_rate`; 0 freezes them.
      box_bias_lr_multiplier: the same for the box biases (`box_bias`).
        A box's bias moves by about the learning rate per Adam step, so in
        a short schedule only the kernel (the image's features) can move a
        box; the demo's ALM stage raises this one (see alm_tf.demo.run).
      box_kernel_init: `torch` (PyTorch's default, as the official code)
        or `zeros`: every box regressor's kernel starts at zero, so every
        image starts with the same box and the boxes first learn where an
        attribute is, before the kernels can make them differ per image
        (the Spatial Transformer paper's initialisation of its regression
        layer). Applied to a fresh model before `init_checkpoint`, so
        loaded ALM weights win.
      freeze_backbone: train only the heads (laterals, ALMs, global
        classifier); the backbone keeps its (e.g. `init_checkpoint`)
        weights and its BatchNormalization runs on moving statistics.
        Model Garden's `freeze_backbone`; the demo's ALM stage uses it.
      cache_features: with `freeze_backbone`, compute the backbone's taps
        for every training image and its mirror once, and train the heads
        on them (`alm_tf.training.feature_cache`): a step's loss and
        gradients are those of the uncached step on the same images and
        flips; the example order differs. Needs room for the cache on the
        model dir's disk (it is removed when training ends), a backbone
        without dropout, and the `default` or `mirrored` strategy.
      init_checkpoint: `.keras` file whose layers with matching names and
        shapes initialise the model (after `model.backbone_weights`).
      strategy: `default`, `mirrored`, `multi_worker` (cluster from
        TF_CONFIG) or `tpu`.
      mixed_precision: `none`, `mixed_float16` (dynamic loss scaling) or
        `mixed_bfloat16`.
      jit_compile: XLA-compile the per-replica forward/backward pass.
      seed: seed of initialisation and data order.
      deterministic: enable op determinism (bitwise-reproducible resumes).
      checkpoint_every_steps: checkpoint period in steps (0 = epoch ends only).
      keep_checkpoints: how many checkpoints CheckpointManager keeps.
      shuffle_buffer: input shuffle buffer (None = the data pipeline's default).
      progress: show a tqdm bar.
      allow_corrupt_records: go on when the data's shards hold fewer usable
        records than the manifest says (skipping them, logged) instead of
        failing (`alm_tf.data.records`).
      allow_changed_settings: let a resumed run change the settings in
        `CHANGEABLE_ON_RESUME` (recorded in config.json's `runs`).
    """

    data_dir: str
    model_dir: str
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batch_size: int = 32
    epochs: int = 30
    steps_per_epoch: Optional[int] = None
    learning_rate: float = 1e-4
    decay_epochs: tuple[int, ...] = (10, 20)
    decay_factor: float = 0.1
    optimizer: str = "adam"
    weight_decay: float = 5e-4
    loss_weighting: str = "official"
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    box_lr_multiplier: float = 1.0
    box_bias_lr_multiplier: float = 1.0
    box_kernel_init: str = "torch"
    freeze_backbone: bool = False
    cache_features: bool = False
    init_checkpoint: Optional[str] = None
    strategy: str = "default"
    mixed_precision: str = "none"
    jit_compile: bool = False
    seed: int = 0
    deterministic: bool = False
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    shuffle_buffer: Optional[int] = None
    progress: bool = True
    allow_corrupt_records: bool = False
    allow_changed_settings: bool = False

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"model must be a ModelConfig. Received: model={self.model!r}")
        try:
            value = tuple(int(v) for v in self.decay_epochs)
        except (TypeError, ValueError):
            raise ConfigError("decay_epochs must be a list of integers. "
                              f"Received: decay_epochs={self.decay_epochs!r}") from None
        object.__setattr__(self, "decay_epochs", value)
        self._check_choice("optimizer", OPTIMIZERS)
        self._check_choice("loss_weighting", WEIGHTINGS)
        self._check_choice("strategy", STRATEGIES)
        self._check_choice("mixed_precision", PRECISIONS)
        self._check_choice("box_kernel_init", BOX_KERNEL_INITS)
        if not self.data_dir:
            raise ConfigError("data_dir must be given. Received: data_dir=''")
        if not self.model_dir:
            raise ConfigError("model_dir must be given. Received: model_dir=''")
        self._check_positive("batch_size")
        self._check_positive("epochs")
        if self.steps_per_epoch is not None:
            self._check_positive("steps_per_epoch")
        if not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}")
        if not 0 < self.decay_factor <= 1:
            raise ConfigError(
                f"decay_factor must be in (0, 1]. Received: decay_factor={self.decay_factor}")
        if any(e < 1 for e in self.decay_epochs) or list(self.decay_epochs) != sorted(
                set(self.decay_epochs)):
            raise ConfigError("decay_epochs must be increasing positive epochs. "
                              f"Received: decay_epochs={list(self.decay_epochs)}")
        for name in ("box_lr_multiplier", "box_bias_lr_multiplier"):
            check_lr_multiplier(name, getattr(self, name), ConfigError)
        if not self.weight_decay >= 0:
            raise ConfigError(
                f"weight_decay must be >= 0. Received: weight_decay={self.weight_decay}")
        if self.checkpoint_every_steps < 0:
            raise ConfigError("checkpoint_every_steps must be >= 0. "
                              f"Received: checkpoint_every_steps={self.checkpoint_every_steps}")
        self._check_positive("keep_checkpoints")
        if self.shuffle_buffer is not None:
            self._check_positive("shuffle_buffer")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0. Received: seed={self.seed}")
        if self.train_split is not None and not self.train_split:
            raise ConfigError("train_split must not be empty. Received: train_split=''")
        if self.cache_features and not self.freeze_backbone:
            raise ConfigError("cache_features needs freeze_backbone: a backbone that trains computes "
                              "other taps at every step. Received: cache_features=True, "
                              "freeze_backbone=False")
        if self.cache_features and self.strategy not in CACHE_STRATEGIES:
            raise ConfigError(f"cache_features works with the strategies {list(CACHE_STRATEGIES)} "
                              f"(one process). Received: strategy={self.strategy!r}")
        if self.init_checkpoint and not self.init_checkpoint.endswith(".keras"):
            raise ConfigError("init_checkpoint must be a .keras file. "
                              f"Received: init_checkpoint={self.init_checkpoint!r}")

    def _check_choice(self, name, choices):
        value = getattr(self, name)
        if value not in choices:
            raise ConfigError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")

    def _check_positive(self, name):
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r}")

    @property
    def image_size(self) -> tuple[int, int]:
        return self.model.image_size

    def training_fields(self) -> dict[str, Any]:
        """Every field but the model, JSON-ready (config.json's `train`)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        data["decay_epochs"] = list(self.decay_epochs)
        return data

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": self.training_fields()}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> "TrainConfig":
        """From `to_json()`'s output."""
        return cls(model=ModelConfig.from_dict(payload["model"]), **payload["train"])
