"""FusedBatchNormalization computes what keras.layers.BatchNormalization does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf.layers import FusedBatchNormalization


def _pair(**kwargs):
    """A Keras and a fused layer with the same (non-trivial) weights."""
    rng = np.random.default_rng(1)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, **kwargs)
    fused = FusedBatchNormalization(epsilon=1e-5, momentum=0.9, **kwargs)
    for layer in (plain, fused):
        layer.build((None, 5, 4, 6))
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in plain.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # moving variance > 0
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def _x(dtype="float32"):
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(3, 5, 4, 6)).astype(np.float32)
    return tf.cast(x, dtype)


@pytest.mark.parametrize("training", [False, True])
def test_outputs_moving_statistics_and_gradients_match_keras(training):
    plain, fused = _pair()
    x = _x()
    results = []
    for layer in (plain, fused):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * tf.range(6, dtype=tf.float32))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y, grads, [w.copy() for w in layer.get_weights()]))
    (y0, g0, w0), (y1, g1, w1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(w1, w0):  # moving mean and (biased) variance updated alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = not np.allclose(w0[2], _pair()[0].get_weights()[2])
    assert moved == training


def test_frozen_layer_uses_moving_statistics_in_training():
    plain, fused = _pair()
    fused.trainable = False
    before = [w.copy() for w in fused.get_weights()]
    y = fused(_x(), training=True)
    np.testing.assert_allclose(y, plain(_x(), training=False), rtol=1e-5, atol=1e-5)
    for a, b in zip(fused.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_bfloat16_policy_matches_keras():
    plain, fused = _pair(dtype="mixed_bfloat16")
    x = _x("bfloat16")
    y0, y1 = plain(x, training=True), fused(x, training=True)
    assert y1.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y1, tf.float32), tf.cast(y0, tf.float32), atol=0.02)
    np.testing.assert_allclose(fused.get_weights()[3], plain.get_weights()[3], rtol=1e-3)


def test_jit_compiled_training_matches_eager():
    _, fused = _pair()
    eager = fused(_x(), training=True)
    _, fused = _pair()
    compiled = tf.function(lambda t: fused(t, training=True), jit_compile=True)(_x())
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)


def test_unfusable_input_falls_back_to_keras():
    fused = FusedBatchNormalization(epsilon=1e-5)
    plain = keras.layers.BatchNormalization(epsilon=1e-5)
    x = tf.constant(np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32))
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-6)


def test_serialization_round_trip_and_keras_weights_load(tmp_path):
    inputs = keras.Input((5, 4, 6))
    model = keras.Model(inputs, FusedBatchNormalization(epsilon=1e-5, name="bn")(inputs))
    plain, _ = _pair()
    model.get_layer("bn").set_weights(plain.get_weights())
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    assert isinstance(loaded.get_layer("bn"), keras.layers.BatchNormalization)
    np.testing.assert_allclose(loaded(_x()), plain(_x(), training=False), rtol=1e-5, atol=1e-5)
