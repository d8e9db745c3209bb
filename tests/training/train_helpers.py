"""Tiny data and a tiny model with ALM's output signature, for fast tests."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from alm_tf.config import ModelConfig
from alm_tf.training import TrainConfig

ATTRIBUTES = ("top_red", "bottom_green", "left_blue")


def write_dataset(data_dir, splits=(("train", 48), ("val", 16), ("test", 16)),
                  num_shards=2, size=(64, 32), seed=0, attributes=ATTRIBUTES):
    """Writes TFRecords in the project's example format + manifest.json.

    Attribute m (of 3) shows as a colour patch.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(data_dir, exist_ok=True)
    manifest = {"dataset": "tiny", "attributes": list(attributes),
                "num_attributes": len(attributes), "splits": {}, "num_skipped": 0}
    h, w = size
    for split, count in splits:
        labels = rng.integers(0, 2, size=(count, len(attributes)))
        shards = [f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
        writers = [tf.io.TFRecordWriter(os.path.join(data_dir, s)) for s in shards]
        for i, label in enumerate(labels):
            image = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
            if label[0]:
                image[: h // 2, :, 0] = 230
            if label[1]:
                image[h // 2:, :, 1] = 230
            if label[2]:
                image[:, : w // 2, 2] = 230
            feature = {
                "image/encoded": _bytes(tf.io.encode_png(image).numpy()),
                "image/format": _bytes(b"png"),
                "image/filename": _bytes(f"{split}/{i}.png".encode()),
                "image/height": _ints([h]), "image/width": _ints([w]),
                "image/attributes": _ints(label.tolist()),
            }
            writers[i % num_shards].write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())
        for writer in writers:
            writer.close()
        manifest["splits"][split] = {
            "num_examples": int(count), "shards": shards,
            "positive_ratio": labels.mean(0).tolist(), "num_skipped": 0,
            "skipped_by_reason": {}, "skipped": []}
    with open(os.path.join(data_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return manifest


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def tiny_model(model_config):
    """Conv-BN stem + one dense head per supervised branch, max-fused logits."""
    m = model_config.num_attributes
    inputs = keras.Input((model_config.image_height, model_config.image_width, 3),
                         name="images")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv1_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = {}
    for level in model_config.alm_levels:
        outputs[f"level{level}"] = keras.layers.Dense(m, dtype="float32",
                                                      name=f"head{level}")(x)
    outputs["global"] = keras.layers.Dense(m, dtype="float32", name="finalfc")(x)
    branches = list(outputs.values())
    outputs["logits"] = (keras.layers.Maximum(dtype="float32", name="fusion")(branches)
                         if len(branches) > 1 else
                         keras.layers.Identity(dtype="float32", name="logits")(branches[0]))
    return keras.Model(inputs, outputs, name="tiny")


def load_weights_npz(path):
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k))]


def train_config(data_dir, model_dir, **kw):
    """A TrainConfig for the tiny data: model fields (image size, levels, ...) go to its ModelConfig."""
    base = dict(data_dir=str(data_dir), model_dir=str(model_dir), image_height=64, image_width=32,
                batch_size=8, epochs=3, learning_rate=1e-2, seed=1, progress=False)
    base.update(kw)
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model = {k: base.pop(k) for k in list(base) if k in fields}
    return TrainConfig(model=ModelConfig(**model), **base)
