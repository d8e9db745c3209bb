"""Deep-supervision loss of ALM (Tang et al., ICCV 2019).

Sigmoid binary cross-entropy on every logit vector the model emits for
supervision (`level1`, `level2`, `level3` where present, and `global`),
summed over branches. The fused `logits` output is an inference-time
combination and is NOT supervised (as in the official code).

Weighting (p_m: positive ratio of attribute m in the training split):

- `"official"`: what the official code computes and what produced the
  published numbers: a positive label is weighted exp(1 - p_m), a negative
  label 1 (the intended exp(p_m) negative weight is lost to operator
  precedence in that code).
- `"paper"`: the paper's text: one weight exp(-p_m) on every term.
- `"none"`: every term weighted 1.

Reduction: PyTorch's `F.binary_cross_entropy_with_logits(x, y, weight=w,
reduction="mean")`, i.e. the SUM of w * bce over all N * M elements of a
branch divided by N * M (NOT divided by sum(w)); branches are then summed.
Under a distribution strategy each replica divides its local sum by
`global_batch_size * M`, so that summing the replicas' losses (what the
optimizer's gradient all-reduce does) gives exactly the global mean.
Everything is computed in float32, whatever the model's compute dtype.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

WEIGHTINGS = ("official", "paper", "none")
BRANCHES = ("level1", "level2", "level3", "global")


def supervised_branches(outputs: Mapping[str, tf.Tensor]) -> list[str]:
    """Names of the model outputs that carry a loss, in a fixed order."""
    names = [name for name in BRANCHES if name in outputs]
    if "global" not in names:
        raise ValueError(
            "The model outputs must contain a 'global' logit vector. "
            f"Received keys: {sorted(outputs)}"
        )
    return names


def element_weights(
    labels: tf.Tensor, priors: tf.Tensor, weighting: str
) -> tf.Tensor | None:
    """Per-element weights (N, M) for a weighting scheme (None = all ones)."""
    if weighting == "none":
        return None
    priors = tf.cast(priors, tf.float32)[tf.newaxis, :]
    if weighting == "official":
        return labels * tf.exp(1.0 - priors) + (1.0 - labels)
    if weighting == "paper":
        return tf.broadcast_to(tf.exp(-priors), tf.shape(labels))
    raise ValueError(
        f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}"
    )


def weighted_bce_sum(
    labels: tf.Tensor, logits: tf.Tensor, weights: tf.Tensor | None
) -> tf.Tensor:
    """Sum over all elements of weight * sigmoid cross-entropy (float32)."""
    logits = tf.cast(logits, tf.float32)
    terms = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    if weights is not None:
        terms = terms * weights
    return tf.reduce_sum(terms)


def alm_loss(
    labels: tf.Tensor,
    outputs: Mapping[str, tf.Tensor],
    priors: Sequence[float] | np.ndarray | tf.Tensor,
    weighting: str = "official",
    global_batch_size: int | tf.Tensor | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Deep-supervision loss.

    Args:
      labels: (N, M) 0/1 labels (any numeric dtype).
      outputs: the model's output dict; `level1..3` (those present) and
        `global` logits (N, M) are supervised; other keys are ignored.
      priors: (M,) positive ratio of each attribute in the training split.
      weighting: `"official"`, `"paper"` or `"none"` (see module docstring).
      global_batch_size: the divisor's batch part. None = this batch's N
        (plain mean); under a strategy pass the GLOBAL batch size.

    Returns:
      (total, per_branch): float32 scalars; total = sum of per_branch values.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(
            f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}"
        )
    labels = tf.cast(labels, tf.float32)
    num_attributes = tf.shape(labels)[1]
    if global_batch_size is None:
        global_batch_size = tf.shape(labels)[0]
    denominator = tf.cast(global_batch_size, tf.float32) * tf.cast(
        num_attributes, tf.float32
    )
    weights = element_weights(labels, priors, weighting)
    per_branch = {}
    for name in supervised_branches(outputs):
        per_branch[name] = weighted_bce_sum(labels, outputs[name], weights) / denominator
    total = tf.add_n(list(per_branch.values()))
    return total, per_branch
