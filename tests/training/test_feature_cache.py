"""The feature cache (TrainConfig.cache_features): heads trained on cached backbone taps."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf import model as model_lib
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.training import ConfigError, TrainConfig, feature_cache, train
from alm_tf.training.step import StepSettings, make_optimizer, make_train_step
from alm_tf.testing import mini_model
from tests.training import train_helpers as h


def _mini(config=None, seed=0):
    m = 3 if config is None else config.num_attributes
    return mini_model.mini_alm_model(num_attributes=m, seed=seed)


def _normalized(n, seed):
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


def _read_batch(cache, indices, views):
    """The taps of (index, view) pairs from the cache files, stacked per tap."""
    rows = [cache.read(int(i), int(v)) for i, v in zip(indices, views)]
    return tuple(tf.constant(np.stack(tap)) for tap in zip(*rows))


def test_a_cached_step_is_the_uncached_step_on_the_same_images_and_flips(tmp_path):
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
            cache = feature_cache.build_cache(backbone, ds, 4, str(tmp_path / "c"), progress=False)
            batch = (_read_batch(cache, range(4), views), tf.constant(labels))
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


def _cache_of(directory, taps, labels):
    """A FeatureCache whose files hold `taps` ((N, 2, ...) arrays), as the docstring says:
    one file per (example, view), the taps one after the other, C order, little-endian."""
    os.makedirs(directory, exist_ok=True)
    specs = tuple(feature_cache.TapSpec(t.shape[2:], t.dtype) for t in taps)
    cache = feature_cache.FeatureCache(str(directory), specs, tf.constant(labels))
    for i in range(len(labels)):
        for v in range(feature_cache.VIEWS):
            with open(cache.path(i, v), "wb") as f:
                f.write(b"".join(t[i, v].astype(t.dtype.newbyteorder("<")).tobytes() for t in taps))
    return cache


def test_cached_batches_are_a_pure_function_of_the_seed(tmp_path):
    taps = (np.arange(2 * 2 * 6, dtype=np.float32).reshape(6, 2, 2, 1, 1),)
    cache = _cache_of(tmp_path, taps, np.arange(6.0, dtype=np.float32).reshape(6, 1))

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
        np.testing.assert_array_equal(tap, taps[0][index, view])
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
    assert not os.path.exists(feature_cache.cache_dir(str(tmp_path / "a")))  # removed at the end
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


def test_a_cache_larger_than_the_free_disk_is_refused(tmp_path):
    backbone, _ = feature_cache.split_model(_mini())
    per_image = feature_cache.cache_bytes(backbone, 1)
    # Taps (2, 1, 32), (5, 3, 24), (9, 5, 16) in float32, two views.
    assert per_image == 2 * 4 * (2 * 1 * 32 + 5 * 3 * 24 + 9 * 5 * 16)
    where = str(tmp_path / "m" / feature_cache.DIRECTORY)  # not there yet: its disk is checked
    assert feature_cache.check_disk(backbone, 100, where) == 100 * per_image
    assert feature_cache.check_disk(backbone, 100, where, free=100 * per_image) == 100 * per_image
    with pytest.raises(ValueError, match=r"the feature cache of 1000 images needs .* GiB on disk"):
        feature_cache.check_disk(backbone, 1000, where, free=per_image * 1000 - 1)


def test_the_disk_cache_gives_the_losses_of_an_in_memory_float32_cache(tmp_path):
    """Per-batch losses of training steps: files on disk = float32 taps held in memory, bit for bit.

    The in-memory reference is the former form of the cache: the backbone's
    float32 taps in arrays, gathered in the order `example_order` gives.
    """
    n, batch_size, steps = 12, 4, 5
    images = _normalized(n, seed=3)
    labels = np.random.default_rng(0).integers(-1, 2, (n, 3)).astype(np.float32)
    config = TrainConfig(data_dir="d", model_dir="m", learning_rate=1e-2,
                         freeze_backbone=True, cache_features=True)
    settings = StepSettings.from_config(config, priors=[0.4, 0.5, 0.6])
    losses = []
    for on_disk in (False, True):
        model = _mini(seed=0)
        model_lib.freeze_backbone(model)
        backbone, heads = feature_cache.split_model(model)
        optimizer = make_optimizer(config)
        optimizer.build(heads.trainable_variables)
        step = make_train_step(heads, optimizer, settings)
        if on_disk:
            ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(5)
            cache = feature_cache.build_cache(backbone, ds, n, str(tmp_path / "c"), progress=False)
            batches = feature_cache.cached_dataset(cache, batch_size, seed=11)
        else:
            both = [np.stack([p.numpy(), m.numpy()], axis=1) for p, m in zip(
                backbone(images, training=False),
                backbone(tf.reverse(images, axis=[2]), training=False))]
            order, _ = feature_cache.example_order(n, batch_size, seed=11)
            batches = order.batch(batch_size).map(lambda i, v: (
                tuple(tf.gather_nd(t, tf.stack([i, v], 1)) for t in both), tf.gather(labels, i)))
        losses.append([float(step(batch)[0]) for batch in batches.take(steps)])
    assert losses[1] == losses[0]  # exact: the taps are stored as computed

    # What is stored: one file per (example, view), the float32 taps as the backbone gave them.
    specs = feature_cache.tap_specs(backbone)
    assert [s.dtype for s in specs] == [np.dtype(np.float32)] * 3
    files = sorted(os.listdir(cache.directory))
    assert len(files) == n * feature_cache.VIEWS
    sizes = [os.path.getsize(os.path.join(cache.directory, f)) for f in files]
    assert set(sizes) == {sum(s.nbytes for s in specs)}
    assert sum(sizes) == feature_cache.cache_bytes(backbone, n)
    stored = cache.read(5, 1)
    for tap, expected in zip(stored, backbone(tf.reverse(images[5:6], axis=[2]), training=False)):
        assert tap.dtype == np.float32
        np.testing.assert_array_equal(tap, expected.numpy()[0])
    # What is held in memory: the labels and the file names, not the taps.
    graph = batches._as_serialized_graph().numpy()
    assert len(graph) < feature_cache.cache_bytes(backbone, n) / 10
    assert [f.name for f in dataclasses.fields(cache)] == ["directory", "specs", "labels"]


def test_a_stale_cache_folder_is_replaced_and_a_failed_build_leaves_none(tmp_path):
    backbone, _ = feature_cache.split_model(_mini())
    where = tmp_path / feature_cache.DIRECTORY
    where.mkdir()
    (where / "0000000-0.taps").write_bytes(b"stale")
    images = _normalized(3, seed=4)
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros((3, 3), np.float32))).batch(2)
    cache = feature_cache.build_cache(backbone, ds, 3, str(where), progress=False)
    assert len(os.listdir(where)) == 3 * feature_cache.VIEWS
    assert os.path.getsize(cache.path(0, 0)) == feature_cache.cache_bytes(backbone, 1) // 2
    with pytest.raises(ValueError, match="more than the 2 images"):
        feature_cache.build_cache(backbone, ds, 2, str(where), progress=False)
    assert not os.path.exists(where)
