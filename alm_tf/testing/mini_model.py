"""A small ALM model for fast tests (exports, serving, predictions, the
model's head variants), and the Keras reference.

`mini_alm_model` is `alm_tf.build_model_from_config`'s real head (pyramid
laterals, three AttributeLocalization levels with channel attention and
folded bilinear upsampling, max fusion, boxes) on a tiny backbone of the
same building blocks as BN-Inception (conv + batch norm + ReLU,
TorchPooling2D max with edge padding and average with zero padding),
so every custom op the exporters meet is there, and a conversion takes a
few seconds instead of BN-Inception's twenty.
"""

from __future__ import annotations

import os
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

import alm_tf
from alm_tf import artifacts
from alm_tf import model as model_lib
from alm_tf.config import ModelConfig
from alm_tf.layers.torch_pooling_2d import TorchPooling2D
from alm_tf.preprocessing import pixels as preprocessing

ATTRIBUTES = ("hat", "long_hair", "backpack")
THRESHOLDS = (0.5, 0.3, 0.7)
IMAGE_SIZE = (64, 32)


def _tiny_backbone(name, inputs, weights=None):
    def block(x, channels, stride, label):
        x = keras.layers.Conv2D(channels, 3, strides=stride, padding="same", name=f"{label}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{label}_bn")(x)
        return keras.layers.ReLU(name=f"{label}_relu")(x)

    x = block(inputs, 8, 2, "c1")                                            # /2
    x = TorchPooling2D("max", 3, 2, padding=1, name="pool1")(x)              # /4, edge pad
    x = block(x, 16, 2, "c2")                                                # /8
    tap1 = TorchPooling2D("avg", 3, 1, padding=1, name="avg8")(x)            # zero pad
    tap2 = block(tap1, 24, 2, "c3")                                          # /16
    tap3 = TorchPooling2D("max", 3, 2, padding=0, ceil_mode=True, name="pool32")(
        block(tap2, 32, 1, "c4"))                                            # /32, ceil overhang
    return [tap1, tap2, tap3]


def mini_alm_model(num_attributes=len(ATTRIBUTES), image_size=IMAGE_SIZE, alm_levels=(1, 2, 3),
                   channel_attention=True, seed=0, randomize=True, **options):
    """The real ALM head on a tiny backbone (see the module docstring); float32.

    `options`: other ModelConfig fields (top_down, fusion, upsampling).
    """
    keras.utils.set_random_seed(seed)
    config = alm_tf.ModelConfig(num_attributes=num_attributes, image_height=image_size[0],
                                image_width=image_size[1], alm_levels=tuple(alm_levels),
                                channel_attention=channel_attention, **options)
    with mock.patch.object(model_lib, "backbone_features", _tiny_backbone):
        model = model_lib.build_model_from_config(config)
    if randomize:
        _randomize_statistics(model, seed)
    return model


def _randomize_statistics(model, seed):
    """Non-trivial batch-norm statistics and box regressors (fresh ones are identities / zeros)."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0, 0.2, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 1.5, var.shape).astype("float32"))
        if hasattr(layer, "box_kernel"):
            layer.box_kernel.assign(rng.normal(0, 0.05, layer.box_kernel.shape).astype("float32"))


def images(n=3, image_size=IMAGE_SIZE, seed=0):
    """float32 (n, H, W, 3) RGB 0..255 with smooth content and integer values (int8-exact)."""
    rng = np.random.RandomState(seed)
    h, w = image_size
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    out = []
    for _ in range(n):
        phase = rng.uniform(0, 6, 3)
        picture = 127.5 + 100 * np.sin(6 * y + 4 * x + phase) + rng.normal(0, 10, (h, w, 3))
        out.append(np.clip(np.rint(picture), 0, 255))
    return np.asarray(out, np.float32)


def reference(model, rgb_images):
    """The Keras model's probabilities and boxes on RGB 0..255 images."""
    outputs = model(preprocessing.normalize_images(rgb_images), training=False)
    result = {"probabilities": tf.sigmoid(outputs["logits"]).numpy()}
    if "boxes" in outputs:
        result["boxes"] = outputs["boxes"].numpy()
    return result


def write_model_dir(model_dir, model=None, **options) -> str:
    """A model dir of the mini ALM model (`model`, default a fresh one), as the
    trainer writes it: config.json with the model config (`options` are
    further ModelConfig fields) and the final weights."""
    config = ModelConfig(num_attributes=len(ATTRIBUTES), image_height=IMAGE_SIZE[0],
                         image_width=IMAGE_SIZE[1], **options)
    os.makedirs(model_dir)
    artifacts.write_json(artifacts.config_path(model_dir), {
        "format_version": artifacts.CONFIG_FORMAT, "model": config.to_dict(),
        "attributes": list(ATTRIBUTES)})
    artifacts.save_keras(model if model is not None else mini_alm_model(), artifacts.weights_path(model_dir),
                         artifacts.keras_description(ATTRIBUTES, config))
    return model_dir
