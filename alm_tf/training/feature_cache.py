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

The cache lives on disk, in a folder of the model dir (`DIRECTORY`),
in the backbone's output dtype: N x 2 views x the taps' sizes
(BN-Inception at 256x128: 1.1 MB per view in float32, so 1.8 GB for 840
images). The taps are stored as computed, so a batch is bit-identical to
an in-memory float32 cache's and so are the losses; the process holds
only the labels and the batches in flight, and the files are read
through the kernel's page cache, which gives the memory back when
something else needs it. `check_disk` refuses a cache the disk has no
room for, naming both sizes; the trainer removes the folder when
training ends, and every start rebuilds it from the records.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from alm_tf import artifacts, model as model_lib

#: The cache's folder in the model dir.
DIRECTORY = "feature_cache"
#: The suffix of a cache file (the taps of one example in one view).
FILE_SUFFIX = ".taps"
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


def cache_dir(model_dir: str) -> str:
    """The cache's folder in `model_dir`."""
    return os.path.join(model_dir, DIRECTORY)


def cache_bytes(backbone: keras.Model, num_examples: int) -> int:
    """Bytes the cache of `num_examples` images takes on disk (both views)."""
    return int(num_examples) * VIEWS * sum(spec.nbytes for spec in tap_specs(backbone))


def check_disk(backbone: keras.Model, num_examples: int, directory: str,
               free: Optional[int] = None) -> int:
    """The cache's size in bytes; ValueError when the disk under `directory` has not that much free.

    `free` (bytes) stands for the disk's free space when given.
    """
    need = cache_bytes(backbone, num_examples)
    if free is None:
        probe = directory
        while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        free = shutil.disk_usage(probe).free
    if need > free:
        raise ValueError(
            f"the feature cache of {num_examples} images needs {need / 2**30:.2f} GiB on disk in "
            f"{directory} (2 views x {need / num_examples / VIEWS / 2**20:.2f} MiB), and that disk "
            f"has {free / 2**30:.2f} GiB free: free some space, or train without cache_features")
    return need


@dataclasses.dataclass(frozen=True)
class TapSpec:
    """One backbone tap of one image: its shape (without the batch) and numpy dtype."""

    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def tap_specs(backbone: keras.Model) -> tuple[TapSpec, ...]:
    """The specs of `backbone`'s outputs, in order."""
    return tuple(TapSpec(tuple(int(d) for d in t.shape[1:]), np.dtype(tf.as_dtype(t.dtype).as_numpy_dtype))
                 for t in backbone.outputs)


@dataclasses.dataclass
class FeatureCache:
    """The taps of every training image and its mirror, one file per (image, view).

    The files hold the taps as the backbone computed them (its output
    dtype, no conversion), one after the other, C order, little-endian:
    a batch read back is bit-identical to the taps the backbone returned.
    Only the labels live in memory; the taps are read file by file as the
    batches are made, so they sit in the kernel's page cache (reclaimable)
    rather than in the process.

    Attributes:
        directory: the folder of the files (removed by `remove`).
        specs: one TapSpec per backbone tap, in the order of the heads' inputs.
        labels: (N, M) float32 labels (-1 unknown).
    """

    directory: str
    specs: tuple
    labels: tf.Tensor

    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])

    def path(self, index: int, view: int) -> str:
        """The file of example `index` in view `view` (0: the image, 1: its mirror)."""
        return os.path.join(self.directory, f"{index:07d}-{view}{FILE_SUFFIX}")

    def read(self, index: int, view: int) -> list[np.ndarray]:
        """The taps of one example and view, as stored."""
        with open(self.path(index, view), "rb") as f:
            data = f.read()
        out, offset = [], 0
        for spec in self.specs:
            out.append(np.frombuffer(data, spec.dtype.newbyteorder("<"),
                                     math.prod(spec.shape), offset).reshape(spec.shape))
            offset += spec.nbytes
        return out

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_views(cache: FeatureCache, start: int, views: list) -> None:
    """Writes the taps of examples start.. : `views` is [(plain, mirrored) per tap], numpy batches."""
    count = views[0][0].shape[0]
    for view in range(VIEWS):
        for row in range(count):
            with open(cache.path(start + row, view), "wb") as f:
                for spec, tap in zip(cache.specs, views):
                    f.write(np.ascontiguousarray(tap[view][row], spec.dtype.newbyteorder("<"))
                            .tobytes())


def build_cache(backbone: keras.Model, dataset: tf.data.Dataset, num_examples: int,
                directory: str, progress: bool = True) -> FeatureCache:
    """Runs `backbone` on every (image, labels) batch of `dataset` and its mirror.

    `dataset` yields the training images as the training pipeline makes
    them before the flip (normalized, at the model size), unshuffled, at
    most `num_examples` of them. One trace serves every batch size (the
    last batch is smaller); a batch and its mirror go through the backbone
    as one batch. The taps go to files in `directory` (emptied first: the
    cache of an earlier run is never trusted); on any error the folder is
    removed.
    """
    image_spec = tf.TensorSpec([None, *backbone.inputs[0].shape[1:]], backbone.inputs[0].dtype)

    @tf.function(input_signature=[image_spec])
    def views(images):
        count = tf.shape(images)[0]
        both = backbone(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
        return [(tap[:count], tap[count:]) for tap in both]

    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    cache = FeatureCache(directory, tap_specs(backbone), labels=tf.zeros((0, 0)))
    labels, done = [], 0
    bar = tqdm(total=num_examples, unit="img", desc="caching backbone taps", disable=not progress)
    try:
        for batch in dataset:
            images, batch_labels = batch[0], batch[1]
            count = int(images.shape[0])
            if done + count > num_examples:
                raise ValueError(f"the training split yielded more than the {num_examples} images "
                                 "its manifest counts")
            _write_views(cache, done, [(p.numpy(), m.numpy()) for p, m in views(images)])
            labels.append(batch_labels.numpy())
            done += count
            bar.update(count)
        if not labels:
            raise ValueError("the training split yielded no images to cache")
    except BaseException:
        cache.remove()
        raise
    finally:
        bar.close()
    cache.labels = tf.constant(np.concatenate(labels).astype(np.float32))
    return cache


def example_order(num_examples: int, batch_size: int, seed: int,
                  input_context: Optional[tf.distribute.InputContext] = None,
                  repeat: bool = True) -> tuple[tf.data.Dataset, int]:
    """(dataset of (index, view) pairs, per-pipeline batch size): the order `cached_dataset` reads.

    Shuffled examples, each in a random view, a pure function of `seed`.
    """
    ds = tf.data.Dataset.range(num_examples)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    ds = ds.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).map(lambda r: r % VIEWS)), batch_size


def cached_dataset(cache: FeatureCache, batch_size: int, seed: int,
                   input_context: Optional[tf.distribute.InputContext] = None,
                   repeat: bool = True) -> tf.data.Dataset:
    """Batches of (taps tuple, labels): shuffled examples, each in a random view.

    Order and views are a pure function of `seed` (the trainer passes the
    epoch's seed; `example_order`). `batch_size` is global; with an
    `input_context` each pipeline takes its share of the examples and of
    the batch. Each example's taps are read from its file as it is needed.
    """
    ds, batch_size = example_order(cache.num_examples, batch_size, seed, input_context, repeat)
    files = tf.constant([cache.path(i, v) for i in range(cache.num_examples) for v in range(VIEWS)])
    labels, specs = cache.labels, cache.specs

    def load(index, view):
        data = tf.io.read_file(files[index * VIEWS + view])
        taps, offset = [], 0
        for spec in specs:
            raw = tf.strings.substr(data, offset, spec.nbytes) if len(specs) > 1 else data
            tap = tf.io.decode_raw(raw, tf.as_dtype(spec.dtype), little_endian=True)
            taps.append(tf.reshape(tap, spec.shape))
            offset += spec.nbytes
        return tuple(taps), labels[index]

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
