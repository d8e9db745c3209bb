"""The feature cache (TrainConfig.cache_features): heads trained on cached backbone taps."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_helpers as h
from alm_tf import model as model_lib
from alm_tf.training import ConfigError, TrainConfig, feature_cache, train
from alm_tf.training.step import StepSettings, make_optimizer, make_train_step

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
import mini_model  # noqa: E402


def _mini(config=None, seed=0):
    m = 3 if config is None else config.num_attributes
    return mini_model.mini_alm_model(num_attributes=m, seed=seed)


def _normalized(n, seed):
    from alm_tf.data import preprocessing
    return preprocessing.normalize_images(tf.constant(mini_model.images(n, seed=seed)))


def test_heads_on_the_backbone_taps_compute_the_model():
    model = _mini()
    backbone, heads = feature_cache.split_model(model)
    assert len(backbone.outputs) == len(heads.inputs) == 3  # the three backbone taps
    x = _normalized(4, seed=1)
    whole = model(x, training=False)
    split = heads(backbone(x, training=False), training=False)
    for key in whole:
        np.testing.assert_allclose(split[key], whole[key], rtol=0, atol=1e-6, err_msg=key)
    assert {w.path for w in heads.weights} <= {w.path for w in model.weights}


def test_a_cached_step_is_the_uncached_step_on_the_same_images_and_flips():
    """Loss, branch losses and the updated weights: cached = uncached, same batch."""
    labels = np.array([[1, 0, -1], [0, 1, 1], [1, 1, 0], [0, -1, 1]], np.float32)
    views = np.array([0, 1, 1, 0])
    images = _normalized(4, seed=2)
    config = TrainConfig(data_dir="d", model_dir="m", learning_rate=1e-2,
                         freeze_backbone=True, cache_features=True)
    settings = StepSettings.from_config(config, priors=[0.4, 0.5, 0.6])
    results = []
    for cached in (False, True):
        model = _mini(seed=0)
        model_lib.freeze_backbone(model)
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        if cached:
            backbone, heads = feature_cache.split_model(model)
            ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)  # two batches
            cache = feature_cache.build_cache(backbone, ds, 4, progress=False)
            where = tf.stack([tf.range(4, dtype=tf.int64), tf.constant(views, tf.int64)], 1)
            batch = (tuple(tf.gather_nd(t, where) for t in cache.taps), tf.constant(labels))
            step = make_train_step(heads, optimizer, settings)
        else:
            flipped = tf.where(tf.constant(views, tf.bool)[:, None, None, None],
                               tf.image.flip_left_right(images), images)
            batch = (flipped, tf.constant(labels))
            step = make_train_step(model, optimizer, settings)
        loss, branches = step(batch)
        results.append((float(loss), {k: float(v) for k, v in branches.items()},
                        [v.numpy() for v in model.weights]))
    (loss0, branches0, weights0), (loss1, branches1, weights1) = results
    assert loss1 == pytest.approx(loss0, rel=1e-6, abs=1e-7)
    assert branches1 == pytest.approx(branches0, rel=1e-6, abs=1e-7)
    assert len(weights0) == len(weights1)
    for a, b in zip(weights0, weights1):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_cached_batches_are_a_pure_function_of_the_seed():
    taps = (tf.reshape(tf.range(2 * 2 * 6, dtype=tf.float32), (6, 2, 2, 1, 1)),)
    cache = feature_cache.FeatureCache(taps=taps, labels=tf.reshape(tf.range(6.0), (6, 1)))

    def batches(seed):
        ds = feature_cache.cached_dataset(cache, 4, seed)
        return [(b[0][0].numpy(), b[1].numpy()) for b in ds.take(6)]

    first, again, other = batches(7), batches(7), batches(8)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    for tap, lab in first:  # each row is its own example's tap, in one view
        index = lab[:, 0].astype(int)
        view = (tap[:, 0, 0, 0] - 4 * index).astype(int) // 2
        assert set(view) <= {0, 1}
        np.testing.assert_array_equal(tap, taps[0].numpy()[index, view])
    # Over the epochs both views of the examples turn up.
    assert len({(int(x), int(v)) for t, lab in first
                for x, v in zip(lab[:, 0], (t[:, 0, 0, 0] - 4 * lab[:, 0]) // 2)}) > 6


def test_training_on_cached_taps(data_dir, tmp_path):
    """A run with the cache trains the heads and leaves the backbone as it was."""
    kw = dict(epochs=2, freeze_backbone=True, cache_features=True, val_split="none")
    start = _mini()
    backbone_before = {w.path: w.numpy() for layer in model_lib.backbone_layers(start)
                       for w in layer.weights}
    first = train(h.train_config(data_dir, tmp_path / "a", **kw), model_builder=_mini)
    assert first.step == 2 * (48 // 8)
    assert os.path.exists(tmp_path / "a" / "final.keras")
    for layer in model_lib.backbone_layers(first.model):
        for w in layer.weights:
            np.testing.assert_array_equal(w.numpy(), backbone_before[w.path], err_msg=w.path)
    heads_moved = [not np.array_equal(w.numpy(), v.numpy())
                   for w, v in zip(first.model.trainable_weights, start.trainable_weights)]
    assert any(heads_moved)


def test_cache_settings_are_checked():
    with pytest.raises(ConfigError, match="cache_features needs freeze_backbone"):
        TrainConfig(data_dir="d", model_dir="m", cache_features=True)
    with pytest.raises(ConfigError, match="strategy='multi_worker'"):
        TrainConfig(data_dir="d", model_dir="m", cache_features=True, freeze_backbone=True,
                    strategy="multi_worker")


def test_a_backbone_that_trains_or_draws_random_numbers_is_refused():
    model = _mini()
    with pytest.raises(ValueError, match="needs a frozen backbone"):
        feature_cache.check_cacheable(model)
    model_lib.freeze_backbone(model)
    feature_cache.check_cacheable(model)

    inputs = keras.Input((16, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.Dropout(0.2, name="drop")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    dropout = keras.Model(inputs, {"logits": keras.layers.Dense(2, name="finalfc")(x)})
    model_lib.freeze_backbone(dropout)
    with pytest.raises(ValueError, match="layer 'drop' draws random numbers"):
        feature_cache.check_cacheable(dropout)


def test_a_cache_larger_than_half_the_memory_is_refused():
    backbone, _ = feature_cache.split_model(_mini())
    per_image = feature_cache.cache_bytes(backbone, 1)
    # Taps (2, 1, 32), (5, 3, 24), (9, 5, 16) in float32, two views.
    assert per_image == 2 * 4 * (2 * 1 * 32 + 5 * 3 * 24 + 9 * 5 * 16)
    assert feature_cache.check_memory(backbone, 100, memory=10**9) == 100 * per_image
    with pytest.raises(ValueError, match=r"the feature cache of 1000 images needs .* GiB"):
        feature_cache.check_memory(backbone, 1000, memory=per_image * 1000)
