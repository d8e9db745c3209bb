"""Training the heads on cached backbone taps (`TrainConfig.cache_features`).

With a frozen backbone (`TrainConfig.freeze_backbone`) nothing in the
backbone trains and its BatchNormalization runs on moving statistics, so
it computes the same taps for an image at every step. The training
pipeline's only augmentation is the random horizontal flip, so each
training image has exactly two possible sets of taps: the image's and its
mirror's. `build_cache` runs the backbone once over the training split
for both views; the trainer then runs its usual train step on the heads
alone (`split_model`), fed batches of cached taps. A step costs the
heads' forward and backward pass instead of the whole network's forward
and the heads', and its loss and gradients are those of the uncached step
on the same images and flips (tests/training/test_feature_cache.py).

What differs from the uncached run: the order of the examples and the
flips (`cached_dataset`: a pure function of the seed and the epoch, as in
the uncached pipeline, but not the same function), so the two runs see
the same images per epoch in another order. Use: a new attribute set or
new data on a trained backbone (fine-tuning the heads), the second stage
of the demo.

The cache lives in memory, in the backbone's output dtype: N x 2 views x
the taps' sizes (BN-Inception at 256x128: 1.1 MB per view in float32, so
1.8 GB for 840 images). `check_memory` refuses a cache larger than half
of the machine's memory, naming both sizes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from alm_tf import artifacts, model as model_lib

#: The share of the machine's memory a cache may take.
MAX_MEMORY_FRACTION = 0.5
#: Number of views cached per image: the image and its horizontal mirror.
VIEWS = 2


def _draws_random(layer) -> bool:
    """Dropout-like layers (keras.applications' stochastic depth is a Dropout, or
    ConvNeXt's `StochasticDepth` with its `drop_path_rate`)."""
    if isinstance(layer, (keras.layers.Dropout, keras.layers.SpatialDropout2D,
                          keras.layers.GaussianDropout, keras.layers.AlphaDropout)):
        return layer.rate > 0
    if isinstance(layer, keras.layers.GaussianNoise):
        return layer.stddev > 0
    return float(getattr(layer, "drop_path_rate", 0) or 0) > 0


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(backbone, heads) sharing `model`'s layers and weights.

    `backbone` maps the images to the taps the heads read (a list, in the
    order of `heads.inputs`); `heads` maps those taps to `model`'s
    outputs. Training `heads` trains `model`'s head layers.

    Raises:
        ValueError: the model has no backbone tap (nothing to cache).
    """
    backbone = {id(layer) for layer in model_lib.backbone_layers(model)}
    head_layers = [layer for layer in model.layers if id(layer) not in backbone]
    taps, seen = [], set()
    for layer in head_layers:
        # Keras keeps each call of a layer as an inbound node; the model
        # calls every head layer once.
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                if id(producer) in backbone and not isinstance(producer, keras.layers.InputLayer) \
                        and id(tensor) not in seen:
                    seen.add(id(tensor))
                    taps.append(tensor)
    if not taps:
        raise ValueError(f"model {model.name!r} has no backbone output feeding its heads: "
                         "nothing to cache")
    return (keras.Model(model.inputs, taps, name=f"{model.name}_backbone"),
            keras.Model(taps, model.output, name=f"{model.name}_heads"))


def check_cacheable(model: keras.Model) -> None:
    """Raises ValueError when the backbone is not frozen or draws random numbers.

    A backbone with dropout or stochastic depth (efficientnetv2_s) computes
    other taps at every training step; cached taps would be its
    inference-mode ones, so the cache refuses it.
    """
    layers = model_lib.backbone_layers(model)
    trainable = [w.path for layer in layers for w in layer.trainable_weights]
    if trainable:
        raise ValueError("cache_features needs a frozen backbone (freeze_backbone); trainable: "
                         f"{trainable[0]} and {len(trainable) - 1} more")
    leaves = [leaf for layer in layers
              for leaf in (artifacts.leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])]
    random = [leaf.name for leaf in leaves if _draws_random(leaf)]
    if random:
        raise ValueError("cache_features needs a backbone that computes the same taps at every "
                         f"step; layer {random[0]!r} draws random numbers in training "
                         "(dropout / stochastic depth): train without cache_features")


def cache_bytes(backbone: keras.Model, num_examples: int) -> int:
    """Bytes the cache of `num_examples` images takes (both views)."""
    per_view = sum(math.prod(t.shape[1:]) * tf.as_dtype(t.dtype).size for t in backbone.outputs)
    return int(num_examples) * VIEWS * int(per_view)


def _physical_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(backbone: keras.Model, num_examples: int,
                 memory: Optional[int] = None) -> int:
    """The cache's size in bytes; ValueError when it exceeds MAX_MEMORY_FRACTION of `memory`."""
    need = cache_bytes(backbone, num_examples)
    memory = _physical_memory() if memory is None else memory
    if memory and need > MAX_MEMORY_FRACTION * memory:
        raise ValueError(
            f"the feature cache of {num_examples} images needs {need / 2**30:.1f} GiB "
            f"(2 views x {need / num_examples / VIEWS / 2**20:.2f} MiB), more than "
            f"{MAX_MEMORY_FRACTION:.0%} of this machine's {memory / 2**30:.1f} GiB: train "
            "without cache_features, or on fewer images")
    return need


@dataclasses.dataclass
class FeatureCache:
    """The taps of every training image and its mirror.

    Attributes:
        taps: one tensor per backbone tap, (N, 2, h, w, c): view 0 is the
            image, view 1 its horizontal mirror.
        labels: (N, M) float32 labels (-1 unknown).
    """

    taps: tuple
    labels: tf.Tensor

    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])


def build_cache(backbone: keras.Model, dataset: tf.data.Dataset, num_examples: int,
                progress: bool = True) -> FeatureCache:
    """Runs `backbone` on every (image, labels) batch of `dataset` and its mirror.

    `dataset` yields the training images as the training pipeline makes
    them before the flip (normalized, at the model size), unshuffled, at
    most `num_examples` of them. One trace serves every batch size (the
    last batch is smaller); a batch and its mirror go through the backbone
    as one batch; the taps are written into arrays allocated once.
    """
    image_spec = tf.TensorSpec([None, *backbone.inputs[0].shape[1:]], backbone.inputs[0].dtype)

    @tf.function(input_signature=[image_spec])
    def views(images):
        count = tf.shape(images)[0]
        both = backbone(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
        return [(tap[:count], tap[count:]) for tap in both]

    taps = [np.empty((num_examples, VIEWS, *t.shape[1:]), tf.as_dtype(t.dtype).as_numpy_dtype)
            for t in backbone.outputs]
    labels, done = [], 0
    bar = tqdm(total=num_examples, unit="img", desc="caching backbone taps", disable=not progress)
    for batch in dataset:
        images, batch_labels = batch[0], batch[1]
        count = int(images.shape[0])
        if done + count > num_examples:
            raise ValueError(f"the training split yielded more than the {num_examples} images "
                             "its manifest counts")
        for out, (plain, mirrored) in zip(taps, views(images)):
            out[done:done + count, 0] = plain.numpy()
            out[done:done + count, 1] = mirrored.numpy()
        labels.append(batch_labels.numpy())
        done += count
        bar.update(count)
    bar.close()
    if not labels:
        raise ValueError("the training split yielded no images to cache")
    return FeatureCache(taps=tuple(tf.constant(t[:done]) for t in taps),
                        labels=tf.constant(np.concatenate(labels).astype(np.float32)))


def cached_dataset(cache: FeatureCache, batch_size: int, seed: int,
                   input_context: Optional[tf.distribute.InputContext] = None,
                   repeat: bool = True) -> tf.data.Dataset:
    """Batches of (taps tuple, labels): shuffled examples, each in a random view.

    Order and views are a pure function of `seed` (the trainer passes the
    epoch's seed). `batch_size` is global; with an `input_context` each
    pipeline takes its share of the examples and of the batch.
    """
    n = cache.num_examples
    ds = tf.data.Dataset.range(n)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).map(lambda r: r % VIEWS))
    ds = ds.batch(batch_size, drop_remainder=True)
    taps, labels = cache.taps, cache.labels

    def gather(index, view):
        where = tf.stack([index, view], axis=1)
        return tuple(tf.gather_nd(t, where) for t in taps), tf.gather(labels, index)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
