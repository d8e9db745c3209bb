"""Tests for alm_tf.losses against a hand-written numpy formula."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf import losses
from tests import fresh_python


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


# ---- unknown labels (-1) ---------------------------------------------------

def _old_alm_loss(labels, outputs, priors, weighting="official", global_batch_size=None):
    """The loss as it was before unknown labels (0/1 labels only), verbatim."""
    labels = tf.cast(labels, tf.float32)
    m = tf.shape(labels)[1]
    n = tf.shape(labels)[0] if global_batch_size is None else global_batch_size
    denominator = tf.cast(n, tf.float32) * tf.cast(m, tf.float32)
    p = tf.cast(priors, tf.float32)[tf.newaxis, :]
    weights = {"official": labels * tf.exp(1.0 - p) + (1.0 - labels),
               "paper": tf.broadcast_to(tf.exp(-p), tf.shape(labels)), "none": None}[weighting]
    per_branch = {}
    for name in losses.supervised_branches(outputs):
        terms = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=labels, logits=tf.cast(outputs[name], tf.float32))
        if weights is not None:
            terms = terms * weights
        per_branch[name] = tf.reduce_sum(terms) / denominator
    return tf.add_n(list(per_branch.values())), per_branch


def _unknown_example(seed=1, n=6, m=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(n, m)).astype(np.float32)
    unknown = rng.random((n, m)) < 0.3
    unknown[0, :] = True  # An image with no known label.
    unknown[1, :] = False
    labels_u = np.where(unknown, -1.0, labels).astype(np.float32)
    priors = rng.uniform(0.05, 0.9, size=m)
    outputs = {k: rng.normal(scale=2.0, size=(n, m)).astype(np.float32)
               for k in ("level1", "level2", "level3", "global", "logits")}
    return labels_u, unknown, priors, outputs


@pytest.mark.parametrize("weighting", ["official", "paper", "none"])
@pytest.mark.parametrize("global_batch_size", [None, 16])
@pytest.mark.parametrize("compiled", [False, True])
def test_fully_known_batch_gives_the_old_loss_to_the_last_digit(weighting, global_batch_size, compiled):
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=(8, 26)).astype(np.float32)
    priors = rng.uniform(0.01, 0.95, size=26).astype(np.float32)
    outputs = {k: tf.constant(rng.normal(scale=3.0, size=(8, 26)).astype(np.float32))
               for k in ("level1", "level2", "level3", "global", "logits")}
    new, old = losses.alm_loss, _old_alm_loss
    if compiled:
        new, old = tf.function(new), tf.function(old)
    total, branches = new(labels, outputs, priors, weighting, global_batch_size)
    old_total, old_branches = old(labels, outputs, priors, weighting, global_batch_size)
    np.testing.assert_array_equal(total.numpy(), old_total.numpy())
    for name in old_branches:
        np.testing.assert_array_equal(branches[name].numpy(), old_branches[name].numpy())


@pytest.mark.parametrize("weighting", ["official", "paper", "none"])
def test_unknown_labels_match_numpy_without_those_terms(weighting):
    labels, unknown, priors, outputs = _unknown_example()
    total, per_branch = losses.alm_loss(
        labels, {k: tf.constant(v) for k, v in outputs.items()}, priors, weighting)
    zeros = np.where(unknown, 0.0, labels)
    weights = _numpy_weights(zeros, priors, weighting) * ~unknown  # unknown: no term
    expected = {k: _numpy_bce_mean(zeros, outputs[k], weights)     # / (N * M), all slots
                for k in ("level1", "level2", "level3", "global")}
    for name, value in expected.items():
        np.testing.assert_allclose(per_branch[name].numpy(), value, rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), sum(expected.values()), rtol=1e-5)


def _loss_and_logit_grads(labels, outputs, priors):
    tensors = {k: tf.constant(v) for k, v in outputs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(tensors.values()))
        total, _ = losses.alm_loss(labels, tensors, priors)
    grads = tape.gradient(total, tensors, unconnected_gradients="zero")
    return total.numpy(), {k: g.numpy() for k, g in grads.items()}


def test_flipping_an_unknown_label_changes_neither_loss_nor_any_gradient():
    labels, unknown, priors, outputs = _unknown_example()
    total, grads = _loss_and_logit_grads(labels, outputs, priors)
    for name, g in grads.items():
        assert np.all(g[unknown] == 0.0), name  # No gradient from an unknown label.
    # Flip every branch's prediction on the unknown labels (and push them to
    # extremes): the loss and every gradient stay the same.
    flipped = {k: np.where(unknown, -50.0 * v, v).astype(np.float32) for k, v in outputs.items()}
    total_f, grads_f = _loss_and_logit_grads(labels, flipped, priors)
    assert total_f == total
    for name in grads:
        np.testing.assert_array_equal(grads_f[name], grads[name])
    # Any negative value means unknown, in any dtype.
    for encoded in (labels.astype(np.int64), np.where(unknown, -7.0, labels).astype(np.float32)):
        assert _loss_and_logit_grads(encoded, outputs, priors)[0] == total


def test_unknown_label_gives_no_gradient_to_model_weights():
    labels, unknown, priors, _ = _unknown_example(seed=4, n=4, m=3)
    x = np.random.default_rng(5).normal(size=(4, 7)).astype(np.float32)
    inputs = keras.Input((7,))
    model = keras.Model(inputs, {"global": keras.layers.Dense(3)(inputs)})

    def grads(batch_labels, batch_x):
        with tf.GradientTape() as tape:
            loss, _ = losses.alm_loss(batch_labels, model(batch_x), priors, global_batch_size=4)
        return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

    # Image 0 has no known label: removing its features changes no gradient.
    other_x = x.copy()
    other_x[0] = 100.0
    for a, b in zip(grads(labels, x), grads(labels, other_x)):
        np.testing.assert_array_equal(a, b)
    # An all-unknown batch: loss 0 and zero gradients, not NaN.
    everything_unknown = -np.ones_like(labels)
    assert all(np.all(g == 0.0) for g in grads(everything_unknown, x))


def test_replica_halves_with_unknowns_sum_to_the_global_loss():
    labels, _, priors, outputs = _unknown_example()
    tensors = {k: tf.constant(v) for k, v in outputs.items()}
    full, _ = losses.alm_loss(labels, tensors, priors)
    halves = [losses.alm_loss(labels[idx], {k: v[idx] for k, v in tensors.items()}, priors,
                              global_batch_size=6)[0]
              for idx in (slice(0, 1), slice(1, 6))]  # replica 0: one all-unknown image
    np.testing.assert_allclose(float(halves[0] + halves[1]), float(full), rtol=1e-6)


_STRATEGY_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
from alm_tf import losses
rng = np.random.default_rng(2)
labels = rng.integers(0, 2, size=(8, 4)).astype(np.float32)
labels[rng.random((8, 4)) < 0.4] = -1.0
labels[:4] = np.where(rng.random((4, 4)) < 0.8, -1.0, labels[:4])  # replica 0: mostly unknown
logits = rng.normal(size=(8, 4)).astype(np.float32)
priors = np.array([0.2, 0.4, 0.6, 0.8], np.float32)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
ds = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(8)
dist = iter(strategy.experimental_distribute_dataset(ds))

@tf.function
def step(batch):
    def replica(y, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, _ = losses.alm_loss(y, {"global": x}, priors, global_batch_size=8)
        return loss, tape.gradient(loss, x)
    loss, grad = strategy.run(replica, args=batch)
    return strategy.reduce("SUM", loss, axis=None), strategy.gather(grad, axis=0)

loss, grad = step(next(dist))
x = tf.constant(logits)
with tf.GradientTape() as tape:
    tape.watch(x)
    single, _ = losses.alm_loss(labels, {"global": x}, priors)
print(json.dumps([float(loss), float(single),
                  float(np.max(np.abs(grad.numpy() - tape.gradient(single, x).numpy())))]))
"""


def test_mirrored_strategy_with_unknowns_equals_one_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = fresh_python.run(["-c", _STRATEGY_SCRIPT], cwd=root, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    distributed, single, grad_diff = json.loads(proc.stdout.strip().splitlines()[-1])
    assert distributed == pytest.approx(single, rel=1e-6)
    assert grad_diff < 1e-7
