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

Unknown labels (`alm_tf.data.labels.UNKNOWN`, -1; any negative label): the
mask is derived here from the labels, so callers pass the records' labels
as they are. An unknown element's term is dropped from the sum (selected
away with `tf.where`, so it gets no gradient, whatever its logit), and it
gets the weight of a negative inside `element_weights` only to keep the
dropped value finite. The divisor stays `global_batch_size * M`, every
label slot, known or not:
- on fully labelled data the loss is bit for bit the official one (the
  same elements summed in the same order, the same divisor);
- the divisor is global by construction: no per-replica count and no
  cross-replica all-reduce inside the loss, so it holds under any strategy
  and inside XLA-compiled steps; a replica whose batch is all unknown
  contributes 0, never 0 / 0;
- each known label keeps the weight 1 / (N * M) it has in the official
  loss, whatever the other labels of the batch are. Dividing by the number
  of known labels instead would scale every label's gradient by a factor
  that depends on how many OTHER labels happen to be unknown in the batch
  (a batch of PETA images, whose mapping leaves some PA-100K attributes
  unknown, would push the always-known attributes harder than a batch of
  PA-100K images). The price: the loss VALUE of a data set with unknowns
  is smaller than that of a fully labelled one (by the known fraction), so
  compare loss values only between runs on the same data.
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


def known_mask(labels: tf.Tensor) -> tf.Tensor:
    """True where a label is known (0 or 1), False where it is UNKNOWN (< 0)."""
    return tf.cast(labels, tf.float32) >= 0.0


def weighted_bce_sum(
    labels: tf.Tensor,
    logits: tf.Tensor,
    weights: tf.Tensor | None,
    known: tf.Tensor | None = None,
) -> tf.Tensor:
    """Sum over the known elements of weight * sigmoid cross-entropy (float32).

    `labels` must be 0/1 where `known` (None: everywhere) is True; the other
    elements are dropped with no gradient.
    """
    logits = tf.cast(logits, tf.float32)
    terms = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    if weights is not None:
        terms = terms * weights
    if known is not None:
        terms = tf.where(known, terms, tf.zeros_like(terms))
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
      labels: (N, M) labels (any numeric dtype): 0, 1, or UNKNOWN (-1, any
        negative value), which adds nothing to the loss and its gradient.
      outputs: the model's output dict; `level1..3` (those present) and
        `global` logits (N, M) are supervised; other keys are ignored.
      priors: (M,) positive ratio of each attribute in the training split.
      weighting: `"official"`, `"paper"` or `"none"` (see module docstring).
      global_batch_size: the divisor's batch part. None = this batch's N
        (plain mean); under a strategy pass the GLOBAL batch size. The
        divisor counts unknown labels too (see the module docstring).

    Returns:
      (total, per_branch): float32 scalars; total = sum of per_branch values.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(
            f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}"
        )
    labels = tf.cast(labels, tf.float32)
    known = known_mask(labels)
    labels = tf.where(known, labels, tf.zeros_like(labels))
    num_attributes = tf.shape(labels)[1]
    if global_batch_size is None:
        global_batch_size = tf.shape(labels)[0]
    denominator = tf.cast(global_batch_size, tf.float32) * tf.cast(
        num_attributes, tf.float32
    )
    weights = element_weights(labels, priors, weighting)
    per_branch = {}
    for name in supervised_branches(outputs):
        per_branch[name] = weighted_bce_sum(labels, outputs[name], weights, known) / denominator
    total = tf.add_n(list(per_branch.values()))
    return total, per_branch
