"""Trainer configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Optional

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
OPTIMIZERS = ("adam", "adamw")
WEIGHTINGS = ("official", "paper", "none")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
# The model's choices live in one place: alm_tf.config.
from alm_tf.config import BACKBONES  # noqa: E402
from alm_tf.config import BOX_KERNEL_INITS, check_lr_multiplier  # noqa: E402
from alm_tf.config import FUSION_MODES as FUSIONS  # noqa: E402
from alm_tf.config import LEVELS as ALM_LEVELS  # noqa: E402
from alm_tf.config import TOP_DOWN_MODES as TOP_DOWN  # noqa: E402
from alm_tf.config import UPSAMPLING_MODES as UPSAMPLINGS  # noqa: E402

# Fields that change the trained function; a resumed run must keep them.
RESUME_KEYS = (
    "backbone", "image_height", "image_width", "batch_size", "alm_levels",
    "top_down", "channel_attention", "fusion", "upsampling", "train_split",
    "loss_weighting", "optimizer", "seed", "steps_per_epoch", "freeze_backbone",
)


class ConfigError(ValueError):
    """A user-facing configuration error; the message names the bad field."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `alm_tf.training.train` needs. Defaults = the paper's recipe.

    Args:
      data_dir: folder with `manifest.json` and TFRecord shards.
      model_dir: output folder (config.json, checkpoints/, logs/, *.keras).
      backbone: backbone name.
      image_height, image_width: network input size.
      batch_size: GLOBAL batch size, split evenly across replicas.
      epochs: number of epochs.
      steps_per_epoch: optional cap; default = train examples // batch_size.
      learning_rate: initial learning rate.
      decay_epochs: epochs at which the learning rate is multiplied by
        `decay_factor` (step decay).
      decay_factor: the step decay factor.
      optimizer: `adam` (L2 weight decay added to the gradient, as
        PyTorch's Adam applies `weight_decay`) or `adamw` (decoupled).
      weight_decay: the decay coefficient (0 disables).
      loss_weighting: `official`, `paper` or `none` (see alm_tf.losses).
      alm_levels, top_down, channel_attention, fusion, upsampling: model
        options (see alm_tf.build_model).
      train_split: split to train on (None = `train` when the manifest has
        it, else `trainval`).
      val_split: split validated after every epoch ("" = none; None = `val`
        when the manifest has it and the train split is not `trainval`).
      box_lr_multiplier: learning rate of the ALM box regressors' kernels
        (`box_kernel`) relative to `learning_rate`; 0 freezes them.
      box_bias_lr_multiplier: the same for the box biases (`box_bias`).
        A box's bias moves by about the learning rate per Adam step, so in
        a short schedule only the kernel (the image's features) can move a
        box; the demo's ALM stage raises this one (see alm_tf.demo).
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
      init_checkpoint: `.keras` file whose layers with matching names and
        shapes initialise the model.
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
    """

    data_dir: str
    model_dir: str
    backbone: str = "bn_inception"
    image_height: int = 256
    image_width: int = 128
    batch_size: int = 32
    epochs: int = 30
    steps_per_epoch: Optional[int] = None
    learning_rate: float = 1e-4
    decay_epochs: tuple[int, ...] = (10, 20)
    decay_factor: float = 0.1
    optimizer: str = "adam"
    weight_decay: float = 5e-4
    loss_weighting: str = "official"
    alm_levels: tuple[int, ...] = (1, 2, 3)
    top_down: str = "concat"
    channel_attention: bool = True
    fusion: str = "max"
    upsampling: str = "bilinear"
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    box_lr_multiplier: float = 1.0
    box_bias_lr_multiplier: float = 1.0
    box_kernel_init: str = "torch"
    freeze_backbone: bool = False
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

    def __post_init__(self):
        # Normalise sequences to tuples of ints (flags give lists of str).
        for name in ("decay_epochs", "alm_levels"):
            value = getattr(self, name)
            try:
                value = tuple(int(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{name} must be a list of integers. Received: {name}={value!r}"
                ) from None
            object.__setattr__(self, name, value)
        self._check_choice("backbone", BACKBONES)
        self._check_choice("optimizer", OPTIMIZERS)
        self._check_choice("loss_weighting", WEIGHTINGS)
        self._check_choice("strategy", STRATEGIES)
        self._check_choice("mixed_precision", PRECISIONS)
        self._check_choice("top_down", TOP_DOWN)
        self._check_choice("fusion", FUSIONS)
        self._check_choice("upsampling", UPSAMPLINGS)
        self._check_choice("box_kernel_init", BOX_KERNEL_INITS)
        if not self.data_dir:
            raise ConfigError("data_dir must be given. Received: data_dir=''")
        if not self.model_dir:
            raise ConfigError("model_dir must be given. Received: model_dir=''")
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            if value < 32 or value % 32:
                raise ConfigError(
                    f"{name} must be a positive multiple of 32. Received: {name}={value}"
                )
        self._check_positive("batch_size")
        self._check_positive("epochs")
        if self.steps_per_epoch is not None:
            self._check_positive("steps_per_epoch")
        if not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}"
            )
        if not 0 < self.decay_factor <= 1:
            raise ConfigError(
                f"decay_factor must be in (0, 1]. Received: decay_factor={self.decay_factor}"
            )
        if any(e < 1 for e in self.decay_epochs) or list(self.decay_epochs) != sorted(
            set(self.decay_epochs)
        ):
            raise ConfigError(
                "decay_epochs must be increasing positive epochs. "
                f"Received: decay_epochs={list(self.decay_epochs)}"
            )
        for name in ("box_lr_multiplier", "box_bias_lr_multiplier"):
            check_lr_multiplier(name, getattr(self, name), ConfigError)
        if not self.weight_decay >= 0:
            raise ConfigError(
                f"weight_decay must be >= 0. Received: weight_decay={self.weight_decay}"
            )
        if any(level not in ALM_LEVELS for level in self.alm_levels) or len(
            set(self.alm_levels)
        ) != len(self.alm_levels):
            raise ConfigError(
                f"alm_levels must be distinct values among {ALM_LEVELS}. "
                f"Received: alm_levels={list(self.alm_levels)}"
            )
        object.__setattr__(self, "alm_levels", tuple(sorted(self.alm_levels)))
        if self.checkpoint_every_steps < 0:
            raise ConfigError(
                "checkpoint_every_steps must be >= 0. "
                f"Received: checkpoint_every_steps={self.checkpoint_every_steps}"
            )
        self._check_positive("keep_checkpoints")
        if self.shuffle_buffer is not None:
            self._check_positive("shuffle_buffer")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0. Received: seed={self.seed}")
        if self.train_split is not None and not self.train_split:
            raise ConfigError("train_split must not be empty. Received: train_split=''")
        if self.init_checkpoint and not self.init_checkpoint.endswith(".keras"):
            raise ConfigError(
                "init_checkpoint must be a .keras file. "
                f"Received: init_checkpoint={self.init_checkpoint!r}"
            )

    def _check_choice(self, name, choices):
        value = getattr(self, name)
        if value not in choices:
            raise ConfigError(
                f"{name} must be one of {list(choices)}. Received: {name}={value!r}"
            )

    def _check_positive(self, name):
        value = getattr(self, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r}")

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image_height, self.image_width)

    def model_options(self) -> dict:
        """Keyword arguments of `alm_tf.build_model` besides num_attributes."""
        return {
            "backbone": self.backbone,
            "input_shape": (self.image_height, self.image_width, 3),
            "alm_levels": self.alm_levels,
            "top_down": self.top_down,
            "channel_attention": self.channel_attention,
            "fusion": self.fusion,
            "upsampling": self.upsampling,
        }

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
