"""The train step: the optimizer, and one distributed forward/backward/update.

`make_train_step` is what `alm_tf.training.train` runs at every step, and
what studies and benchmarks call instead of writing their own step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from alm_tf import losses, metrics, names
from alm_tf.training import optimizers
from alm_tf.training.config import TrainConfig


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (L2 in the step, as PyTorch) or AdamW, with the box multipliers."""
    multipliers = {optimizers.BOX_KERNEL: config.box_lr_multiplier,
                   optimizers.BOX_BIAS: config.box_bias_lr_multiplier}
    multipliers = {k: v for k, v in multipliers.items() if v != 1.0}
    if config.optimizer == "adamw":
        cls = optimizers.AdamWWithLRMultipliers if multipliers else keras.optimizers.AdamW
        kwargs = {"weight_decay": config.weight_decay}
    else:  # L2 decay goes into the gradient in the step (PyTorch Adam).
        cls = optimizers.AdamWithLRMultipliers if multipliers else keras.optimizers.Adam
        kwargs = {}
    if multipliers:
        kwargs["lr_multipliers"] = multipliers
    opt = cls(learning_rate=config.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **kwargs)
    if config.mixed_precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """What a train step computes besides the model and the optimizer.

    Attributes:
        priors: (M,) train positive ratios (loss weighting).
        loss_weighting: `official`, `paper` or `none`.
        global_batch_size: the loss divisor's batch part (all replicas).
        l2: weight decay added to the gradient (PyTorch Adam); 0 for none
            (AdamW decays in the optimizer).
        loss_scaling: scale the loss (mixed_float16's LossScaleOptimizer).
        jit_compile: XLA-compile the per-replica forward/backward.
    """

    priors: np.ndarray
    loss_weighting: str
    global_batch_size: int
    l2: float = 0.0
    loss_scaling: bool = False
    jit_compile: bool = False

    @classmethod
    def from_config(cls, config: TrainConfig, priors) -> "StepSettings":
        return cls(priors=np.asarray(priors, np.float32), loss_weighting=config.loss_weighting,
                   global_batch_size=config.batch_size,
                   l2=config.weight_decay if config.optimizer == "adam" else 0.0,
                   loss_scaling=config.mixed_precision == "mixed_float16",
                   jit_compile=config.jit_compile)


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    settings: StepSettings, strategy: Optional[tf.distribute.Strategy] = None,
                    metric: Optional[metrics.ALMMetrics] = None) -> Callable:
    """A tf.function `step(batch) -> (loss, per-branch losses)`, summed over replicas.

    `batch` is `(images, labels)` (a distributed value under a strategy).
    The loss is `alm_tf.losses.alm_loss` divided by the global batch, plus
    `0.5 * l2 * ||w||^2` over the trainable weights (its gradient is PyTorch
    Adam's `weight_decay * w`; divided by the replicas, whose gradients the
    all-reduce sums). `metric`, when given, accumulates the batch counts.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    priors = tf.constant(settings.priors)
    train_vars = model.trainable_variables

    def forward_backward(images, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss, branches = losses.alm_loss(labels, outputs, priors, settings.loss_weighting,
                                             global_batch_size=settings.global_batch_size)
            objective = loss
            if settings.l2 > 0:  # d/dw = l2 * w / replicas; the all-reduce sums replicas.
                objective += (0.5 * settings.l2 / replicas) * tf.add_n(
                    [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in train_vars])
            if settings.loss_scaling:
                objective = optimizer.scale_loss(objective)
        grads = tape.gradient(objective, train_vars)
        return grads, loss, branches, outputs[names.FUSED_OUTPUT]

    if settings.jit_compile:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(images, labels):
        grads, loss, branches, logits = forward_backward(images, labels)
        optimizer.apply_gradients(zip(grads, train_vars))
        return loss, branches, metrics.batch_counts(labels, logits)

    def reduce(value):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    @tf.function
    def train_step(batch):
        loss, branches, counts = strategy.run(replica_step, args=batch)
        if metric is not None:
            metric.update_from_counts(tf.nest.map_structure(reduce, counts))
        return reduce(loss), tf.nest.map_structure(reduce, branches)

    return train_step
