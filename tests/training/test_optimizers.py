"""Per-variable learning-rate multipliers (alm_tf.training.optimizers)."""

import keras
import numpy as np
import pytest

from alm_tf.training import optimizers


def _variables():
    return [keras.Variable(np.ones(3, np.float32), name="box_bias"),
            keras.Variable(np.full(3, 2.0, np.float32), name="cls_kernel")]


def _run(optimizer, variables, steps=3):
    optimizer.build(variables)
    for step in range(steps):
        grads = [np.array([0.5, -1.0, 2.0], np.float32) * (step + 1),
                 np.array([1.0, 0.25, -3.0], np.float32)]
        optimizer.apply_gradients(zip(grads, variables))
    return [v.numpy() for v in variables]


def test_multiplier_equals_a_scaled_learning_rate_for_the_named_weights_only():
    scaled = _run(optimizers.AdamWithLRMultipliers(learning_rate=0.01,
                                                   lr_multipliers={"box_bias": 10.0}), _variables())
    fast = _run(keras.optimizers.Adam(learning_rate=0.1), _variables())
    plain = _run(keras.optimizers.Adam(learning_rate=0.01), _variables())
    np.testing.assert_allclose(scaled[0], fast[0], rtol=1e-6)
    np.testing.assert_allclose(scaled[1], plain[1], rtol=1e-6)
    assert not np.allclose(fast[0], plain[0])


def test_zero_freezes_and_adamw_still_decays_unscaled():
    frozen = _run(optimizers.AdamWithLRMultipliers(learning_rate=0.01,
                                                   lr_multipliers={"box_bias": 0.0}), _variables())
    np.testing.assert_array_equal(frozen[0], np.ones(3))
    decayed = _run(optimizers.AdamWWithLRMultipliers(learning_rate=0.01, weight_decay=0.5,
                                                     lr_multipliers={"box_bias": 0.0}),
                   _variables(), steps=2)
    np.testing.assert_allclose(decayed[0], np.full(3, (1 - 0.01 * 0.5) ** 2), rtol=1e-6)


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_bad_multiplier_is_refused_by_name(value):
    with pytest.raises(ValueError, match="box_kernel"):
        optimizers.AdamWithLRMultipliers(learning_rate=0.01, lr_multipliers={"box_kernel": value})


def test_config_round_trip_keeps_the_multipliers():
    opt = optimizers.AdamWithLRMultipliers(learning_rate=0.01, lr_multipliers={"box_bias": 3.0})
    again = optimizers.AdamWithLRMultipliers.from_config(opt.get_config())
    assert again.lr_multipliers == {"box_bias": 3.0}
