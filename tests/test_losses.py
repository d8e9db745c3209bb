"""Tests for alm_tf.losses against a hand-written numpy formula."""

import numpy as np
import pytest
import tensorflow as tf

from alm_tf import losses


def _numpy_bce_mean(labels, logits, weights):
    # PyTorch: l = -w [y log s(x) + (1 - y) log(1 - s(x))], mean over all.
    s = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    terms = -(labels * np.log(s) + (1.0 - labels) * np.log(1.0 - s))
    return float(np.mean(weights * terms))


def _numpy_weights(labels, priors, weighting):
    if weighting == "official":
        return np.where(labels == 1, np.exp(1.0 - priors)[None, :], 1.0)
    if weighting == "paper":
        return np.broadcast_to(np.exp(-priors)[None, :], labels.shape)
    return np.ones_like(labels)


def _example(levels=("level1", "level2", "level3")):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(5, 4)).astype(np.float32)
    priors = np.array([0.1, 0.5, 0.8, 0.03])
    outputs = {
        name: rng.normal(scale=2.0, size=(5, 4)).astype(np.float32)
        for name in (*levels, "global", "logits")
    }
    return labels, priors, outputs


@pytest.mark.parametrize("weighting", ["official", "paper", "none"])
@pytest.mark.parametrize(
    "levels", [("level1", "level2", "level3"), (), ("level2",)]
)
def test_loss_matches_numpy(weighting, levels):
    labels, priors, outputs = _example(levels)
    total, per_branch = losses.alm_loss(
        labels, {k: tf.constant(v) for k, v in outputs.items()}, priors, weighting
    )
    weights = _numpy_weights(labels, priors, weighting)
    expected = {
        name: _numpy_bce_mean(labels, outputs[name], weights)
        for name in (*levels, "global")
    }
    assert sorted(per_branch) == sorted(expected)  # fused `logits` not used
    for name, value in expected.items():
        np.testing.assert_allclose(per_branch[name].numpy(), value, rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), sum(expected.values()), rtol=1e-5)


def test_official_weight_by_hand():
    # One element: y = 1, x = 0, p = 0.25 -> exp(0.75) * log(2).
    total, _ = losses.alm_loss(
        np.array([[1.0]]), {"global": tf.zeros((1, 1))}, [0.25], "official"
    )
    np.testing.assert_allclose(total.numpy(), np.exp(0.75) * np.log(2.0), rtol=1e-6)
    # y = 0: weight 1.
    total, _ = losses.alm_loss(
        np.array([[0.0]]), {"global": tf.zeros((1, 1))}, [0.25], "official"
    )
    np.testing.assert_allclose(total.numpy(), np.log(2.0), rtol=1e-6)
    # paper: exp(-0.25) on a negative too.
    total, _ = losses.alm_loss(
        np.array([[0.0]]), {"global": tf.zeros((1, 1))}, [0.25], "paper"
    )
    np.testing.assert_allclose(total.numpy(), np.exp(-0.25) * np.log(2.0), rtol=1e-6)


def test_global_batch_divisor_splits_across_replicas():
    labels, priors, outputs = _example()
    tensors = {k: tf.constant(v) for k, v in outputs.items()}
    full, _ = losses.alm_loss(labels, tensors, priors)
    halves = [
        losses.alm_loss(
            labels[idx], {k: v[idx] for k, v in tensors.items()}, priors,
            global_batch_size=5,
        )[0]
        for idx in (slice(0, 2), slice(2, 5))
    ]
    np.testing.assert_allclose(float(halves[0] + halves[1]), float(full), rtol=1e-6)


def test_float16_logits_computed_in_float32():
    labels, priors, outputs = _example()
    total, per_branch = losses.alm_loss(
        labels, {k: tf.constant(v, tf.float16) for k, v in outputs.items()}, priors
    )
    assert total.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in per_branch.values())


def test_extreme_logits_are_finite():
    total, _ = losses.alm_loss(
        np.array([[1.0, 0.0]]), {"global": tf.constant([[-1e4, 1e4]])}, [0.5, 0.5]
    )
    assert np.isfinite(total.numpy())


def test_bad_arguments():
    with pytest.raises(ValueError, match="weighting"):
        losses.alm_loss(np.zeros((1, 1)), {"global": tf.zeros((1, 1))}, [0.5], "bogus")
    with pytest.raises(ValueError, match="global"):
        losses.alm_loss(np.zeros((1, 1)), {"logits": tf.zeros((1, 1))}, [0.5])
