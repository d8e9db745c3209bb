"""Per-variable learning-rate multipliers (alm_tf.training.optimizers)."""

import keras
import tensorflow as tf
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


def _model_variables(seed):
    rng = np.random.default_rng(seed)
    return [keras.Variable(rng.normal(size=shape).astype(np.float32), name=name)
            for shape, name in (((3, 3, 4, 8), "kernel"), ((8,), "box_bias"), ((8,), "gamma"))]


ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def _apply_four_steps(optimizer, variables, compiled):
    optimizer.build(variables)
    rng = np.random.default_rng(7)
    grads = [[rng.normal(size=v.shape).astype(np.float32) for v in variables] for _ in range(4)]

    def apply(gs):
        optimizer.apply_gradients(zip(gs, variables))
    apply_fn = tf.function(apply) if compiled else apply
    for gs in grads:
        apply_fn([tf.constant(g) for g in gs])
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("ours,keras_cls,kwargs", [
    (optimizers.AdamWithLRMultipliers, keras.optimizers.Adam, {}),
    (optimizers.AdamWWithLRMultipliers, keras.optimizers.AdamW, {"weight_decay": 5e-4})])
def test_update_is_bit_for_bit_keras_adam(ours, keras_cls, kwargs, compiled):
    """The scalars computed once per step change the graph, not one bit of the values."""
    got = _apply_four_steps(ours(learning_rate=3e-3, **ADAM, **kwargs), _model_variables(0), compiled)
    want = _apply_four_steps(keras_cls(learning_rate=3e-3, **ADAM, **kwargs), _model_variables(0),
                             compiled)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert not np.array_equal(got[0], _model_variables(0)[0].numpy())


@pytest.mark.parametrize("compiled", [False, True])
def test_with_a_multiplier_the_other_weights_are_bit_for_bit_keras_adam(compiled):
    got = _apply_four_steps(optimizers.AdamWithLRMultipliers(
        learning_rate=3e-3, lr_multipliers={"box_bias": 10.0}, **ADAM), _model_variables(0), compiled)
    plain = _apply_four_steps(keras.optimizers.Adam(learning_rate=3e-3, **ADAM),
                              _model_variables(0), compiled)
    fast = _apply_four_steps(keras.optimizers.Adam(learning_rate=3e-2, **ADAM),
                             _model_variables(0), compiled)
    np.testing.assert_array_equal(got[0], plain[0])
    np.testing.assert_array_equal(got[2], plain[2])
    np.testing.assert_allclose(got[1], fast[1], rtol=1e-6)  # 3e-3 * 10 vs 3e-2: one rounding


def test_the_step_scalars_are_traced_once_per_step():
    variables = _model_variables(1)
    counts = {}
    for name, optimizer in (("keras", keras.optimizers.Adam(1e-3)),
                            ("ours", optimizers.AdamWithLRMultipliers(learning_rate=1e-3))):
        optimizer.build(variables)
        fn = tf.function(lambda gs, o=optimizer: o.apply_gradients(zip(gs, variables)))
        graph = fn.get_concrete_function([tf.TensorSpec(v.shape) for v in variables]).graph
        counts[name] = sum(op.type == "Pow" for op in graph.get_operations())
    assert counts == {"keras": 2 * len(variables), "ours": 2}


@pytest.mark.parametrize("keras_class, ours", [
    (keras.optimizers.Adam, optimizers.AdamWithLRMultipliers),
    (keras.optimizers.AdamW, optimizers.AdamWWithLRMultipliers)])
def test_checkpoints_of_keras_adam_resume_into_ours(tmp_path, keras_class, ours):
    """Model dirs trained when the trainer used Keras's classes (no multipliers) resume."""
    old_vars = _variables()
    old = keras_class(learning_rate=0.01)
    _run(old, old_vars)
    path = tf.train.Checkpoint(optimizer=old, v0=old_vars[0], v1=old_vars[1]).save(str(tmp_path / "c"))
    new_vars = _variables()
    new = ours(learning_rate=0.01, lr_multipliers={})
    new.build(new_vars)
    tf.train.Checkpoint(optimizer=new, v0=new_vars[0], v1=new_vars[1]).restore(path).assert_consumed()
    assert len(new.variables) == len(old.variables)
    for a, b in zip(old.variables, new.variables):
        np.testing.assert_array_equal(b.numpy(), a.numpy())
