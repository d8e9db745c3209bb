"""A KerasHub-style `run_layer_test`: the checks every layer must pass."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run_layer_test(layer_cls, init_kwargs, inputs, tmp_path,
                   expected_num_trainable_weights=None,
                   expected_output_shapes=None):
    """Config round trip, symbolic vs eager shapes, `.keras` reload equal
    outputs, and a finite non-None gradient for every trainable variable."""
    layer = layer_cls(**init_kwargs)
    outputs = _as_list(layer(inputs))
    # Config round trip.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    # Symbolic shapes equal eager shapes and compute_output_shape.
    sym_inputs = [keras.Input(shape=tuple(x.shape[1:]), batch_size=x.shape[0])
                  for x in _as_list(inputs)]
    sym = _as_list(layer_cls(**init_kwargs)(
        sym_inputs if isinstance(inputs, (list, tuple)) else sym_inputs[0]))
    eager_shapes = [tuple(o.shape) for o in outputs]
    assert [tuple(s.shape) for s in sym] == eager_shapes
    computed = layer.compute_output_shape(
        [tuple(x.shape) for x in _as_list(inputs)]
        if isinstance(inputs, (list, tuple)) else tuple(inputs.shape))
    computed = computed if isinstance(computed, list) else [computed]
    assert [tuple(c) for c in computed] == eager_shapes
    if expected_output_shapes is not None:
        assert eager_shapes == [tuple(s) for s in expected_output_shapes]
    # .keras save / reload gives equal outputs.
    model_inputs = [keras.Input(shape=tuple(x.shape[1:]))
                    for x in _as_list(inputs)]
    model = keras.Model(
        model_inputs,
        layer(model_inputs if isinstance(inputs, (list, tuple))
              else model_inputs[0]))
    path = str(tmp_path / f"{layer_cls.__name__}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for a, b in zip(_as_list(model(_as_list(inputs))),
                    _as_list(reloaded(_as_list(inputs)))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    # Every trainable variable gets a finite, non-None gradient.
    if layer.trainable_weights:
        with tf.GradientTape() as tape:
            outs = _as_list(layer(inputs))
            loss = sum(tf.reduce_sum(tf.square(o)) for o in outs)
        grads = tape.gradient(loss, layer.trainable_weights)
        for var, grad in zip(layer.trainable_weights, grads):
            assert grad is not None, var.path
            assert np.all(np.isfinite(np.asarray(grad))), var.path
            assert np.any(np.asarray(grad) != 0), var.path
    return layer
