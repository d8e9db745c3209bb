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

from alm_tf import losses, names
from alm_tf.evaluation import metrics
from alm_tf.training import optimizers
from alm_tf.training.config import TrainConfig


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (L2 in the step, as PyTorch) or AdamW, with the box multipliers."""
    multipliers = {optimizers.BOX_KERNEL: config.box_lr_multiplier,
                   optimizers.BOX_BIAS: config.box_bias_lr_multiplier}
    multipliers = {k: v for k, v in multipliers.items() if v != 1.0}
    if config.optimizer == "adamw":
        cls, kwargs = optimizers.AdamWWithLRMultipliers, {"weight_decay": config.weight_decay}
    else:  # L2 decay goes into the gradient in the step (PyTorch Adam).
        cls, kwargs = optimizers.AdamWithLRMultipliers, {}
    opt = cls(learning_rate=config.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
              lr_multipliers=multipliers, **kwargs)
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


def l2_gradients(grads, variables, decay: float, scale_loss: Optional[Callable] = None):
    """`grads` plus `decay * w`: PyTorch Adam's `weight_decay`, as its step adds it.

    It is the gradient of `0.5 * decay * sum ||w||^2` added to the loss (to
    float rounding), written out: 2 ops per variable instead of the about 12
    that autodiff builds for the term (about 3,700 ops fewer in BN-Inception's
    train step, so a shorter trace and graph optimisation). `scale_loss`, when
    the loss is scaled, scales the term as it scales the loss's gradients.
    """
    factor = tf.constant(decay, tf.float32)
    if scale_loss is not None:
        factor = scale_loss(factor)
    out = []
    for grad, variable in zip(grads, variables):
        term = tf.multiply(factor, tf.cast(variable, tf.float32))
        out.append(term if grad is None else tf.add(grad, term))
    return out


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    settings: StepSettings, strategy: Optional[tf.distribute.Strategy] = None,
                    metric: Optional[metrics.ALMMetrics] = None) -> Callable:
    """A tf.function `step(batch) -> (loss, per-branch losses)`, summed over replicas.

    `batch` is `(images, labels)` (a distributed value under a strategy).
    The loss is `alm_tf.losses.alm_loss` divided by the global batch; the
    gradients get PyTorch Adam's `weight_decay * w` (`l2_gradients`, the
    gradient of `0.5 * l2 * ||w||^2`), divided by the replicas, whose
    gradients the all-reduce sums. `metric`, when given, accumulates the
    batch counts.
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
            objective = optimizer.scale_loss(loss) if settings.loss_scaling else loss
        grads = tape.gradient(objective, train_vars)
        if settings.l2 > 0:  # d/dw = l2 * w / replicas; the all-reduce sums replicas.
            grads = l2_gradients(grads, train_vars, settings.l2 / replicas,
                                 optimizer.scale_loss if settings.loss_scaling else None)
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
