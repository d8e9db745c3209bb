"""The demo's recipe: one named, validated config (`DemoConfig`).

`DemoConfig()` is the full demo (what `make demo` runs); `tiny_demo_config`
the smallest sizes that still run every stage (tests, `alm-demo --tiny`).
The figures the recipe reaches, and the measurements behind each choice,
are in BUILD_NOTES.md ("Demo").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from alm_tf.config import ModelConfig
from alm_tf.training.config import BOX_KERNEL_INITS, check_lr_multiplier
from alm_tf.data import synth

__all__ = ["DemoConfig", "TINY_IMAGE_SIZE", "default_demo_config", "stage_schedule",
           "tiny_demo_config"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes and options of the demo (defaults: the full demo, a few minutes on 2 CPU cores).

    Args:
        output_dir: D, where everything goes.
        num_images: synthetic images (70% train, 10% val, 20% test).
        crop: how the synthetic crops frame the person
            (`alm_tf.data.synth.CROPS`): `"tight"` like the annotated boxes
            of the real data sets, or `"loose"` like a detector's box.
        model: the ALM model (`ModelConfig`: backbone and its start
            weights, input size, Table 1 options; its ALM levels must not
            be empty); the baseline is the same model without ALM levels.
        batch_size: training batch size.
        baseline_steps: baseline training steps.
        alm_steps: ALM training steps (initialised from the baseline).
        alm_freeze_backbone: in the ALM stage, train only the heads on the
            baseline's frozen backbone (TrainConfig.freeze_backbone). With
            minutes of training from scratch, a backbone that keeps
            training drags the boxes off the body; frozen, the stage is
            also about twice as fast per step.
        alm_cache_features: with `alm_freeze_backbone`, the ALM stage
            trains the heads on the backbone's taps of every training image
            and its mirror, computed once (TrainConfig.cache_features;
            files in the stage's model dir while it trains, not memory):
            the same loss and gradients per batch, a step costs the heads
            alone.
        alm_box_kernel_init: the ALM stage's `TrainConfig.box_kernel_init`.
            `zeros`: every image starts with the same box.
        alm_box_lr_multiplier, alm_box_bias_lr_multiplier: the ALM stage's
            learning-rate multipliers of the box kernels and biases. An
            Adam step moves a box's bias by about the learning rate, so in
            a few hundred steps at the base rate the boxes could move only
            through the image features and stay where those first pull
            them; boxes that start equal, with a fast bias and a slow
            kernel, find where each attribute is. They hardly follow each
            person: theta is linear in globally pooled features.
        learning_rate: Adam learning rate (both stages; /10 for the last
            `decay_fraction` of each stage).
        baseline_learning_rate: the baseline stage's rate instead, when set.
            The baseline trains BN-Inception from scratch: a higher rate
            gets in half the steps the features the base rate gives. The
            ALM stage keeps `learning_rate`, for which its box multipliers
            are set.
        decay_fraction: share of each stage's steps at the decayed rate.
        num_pictures: held-out images with a localization picture.
        seed: data and initialisation seed.
        keep_data: keep D/synth and D/records when they already exist with
            the same settings (faster re-runs).
        progress: show progress bars.
    """

    output_dir: str = "demo_output"
    num_images: int = 1200
    crop: str = synth.SynthConfig.crop
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batch_size: int = 32
    baseline_steps: int = 55
    alm_steps: int = 320
    alm_freeze_backbone: bool = True
    alm_cache_features: bool = True
    alm_box_kernel_init: str = "zeros"
    alm_box_lr_multiplier: float = 0.1
    alm_box_bias_lr_multiplier: float = 100.0
    learning_rate: float = 1e-4
    baseline_learning_rate: Optional[float] = 1e-3
    decay_fraction: float = 0.0
    num_pictures: int = 6
    seed: int = 0
    keep_data: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir must be set")
        if self.num_images < 20:
            raise ValueError(f"num_images must be >= 20. Received: num_images={self.num_images}")
        synth.check_crop(self.crop)
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig. Received: model={self.model!r}")
        if self.model.is_baseline:
            raise ValueError("the demo trains the baseline and then ALM: alm_levels must not be "
                             "empty. Received: alm_levels=[]")
        for name in ("batch_size", "baseline_steps", "alm_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}")
        if self.baseline_learning_rate is not None and not self.baseline_learning_rate > 0:
            raise ValueError("baseline_learning_rate must be > 0. "
                             f"Received: baseline_learning_rate={self.baseline_learning_rate}")
        for name in ("alm_box_lr_multiplier", "alm_box_bias_lr_multiplier"):
            check_lr_multiplier(name, getattr(self, name))
        if self.alm_box_kernel_init not in BOX_KERNEL_INITS:
            raise ValueError(f"alm_box_kernel_init must be one of {BOX_KERNEL_INITS}. "
                             f"Received: alm_box_kernel_init={self.alm_box_kernel_init!r}")
        if not 0 <= self.decay_fraction < 1:
            raise ValueError(f"decay_fraction must be in [0, 1). Received: decay_fraction={self.decay_fraction}")
        if self.num_pictures < 0:
            raise ValueError(f"num_pictures must be >= 0. Received: num_pictures={self.num_pictures}")


def stage_schedule(total: int, decay_fraction: float) -> tuple[int, int, tuple[int, ...]]:
    """(epochs, steps_per_epoch, decay_epochs) giving `total` steps with a late decay.

    Two "epochs" of the trainer: the second (decay_fraction of the steps)
    at lr / 10. Without decay, one epoch of `total` steps.
    """
    decayed = int(round(total * decay_fraction))
    if decayed < 1 or decayed >= total:
        return 1, total, (10**6,)
    # Equal-length trainer epochs: pick a period dividing both parts.
    period = math.gcd(total - decayed, decayed)
    epochs = total // period
    return epochs, period, ((total - decayed) // period,)


def default_demo_config(output_dir: str = DemoConfig.output_dir, **overrides: Any) -> DemoConfig:
    """The full demo's settings (see DemoConfig), with overrides."""
    return DemoConfig(output_dir=output_dir, **overrides)


#: The tiny demo's input size (height, width).
TINY_IMAGE_SIZE = (64, 32)


def tiny_demo_config(output_dir: str, **overrides: Any) -> DemoConfig:
    """Smallest sizes that exercise every stage (tests)."""
    options = dict(num_images=60, model=ModelConfig(image_height=TINY_IMAGE_SIZE[0],
                                                    image_width=TINY_IMAGE_SIZE[1]), batch_size=8,
                   baseline_steps=2, alm_steps=2, num_pictures=2, progress=False)
    options.update(overrides)
    return DemoConfig(output_dir=output_dir, **options)
