"""The ALM network: backbone, feature pyramid, ALM levels, global branch."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import keras

from alm_tf import names
from alm_tf.backbones.factory import backbone_features, load_backbone_weights
from alm_tf.config import ModelConfig
from alm_tf.layers.attribute_localization import AttributeLocalization
from alm_tf.layers.logit_fusion import LogitFusion

PYRAMID_CHANNELS = 256
#: ModelConfig fields `build_model` takes as its own arguments, not as options.
_NOT_OPTIONS = {"num_attributes", "image_height", "image_width"}


def build_model(num_attributes: int, backbone: Optional[str] = None,
                input_shape: Optional[Sequence[int]] = None, *, name: Optional[str] = None,
                **options: Any) -> keras.Model:
    """Build the ALM model (or the paper's baseline with `alm_levels=()`).

    A shorthand for `build_model_from_config(ModelConfig(...))`: every
    argument left out takes `ModelConfig`'s default, which is defined there
    only (with what each field means).

    Args:
        num_attributes: M.
        backbone: `ModelConfig.backbone` (one of `alm_tf.config.BACKBONES`).
        input_shape: (H, W, 3): `ModelConfig.image_height` and
            `image_width`.
        name: the Keras model's name (default `names.MODEL_NAME`, or
            `names.BASELINE_MODEL_NAME` without ALM levels).
        **options: any other `ModelConfig` field: `alm_levels`,
            `top_down`, `channel_attention`, `fusion`, `upsampling`,
            `backbone_weights` (`alm_tf.backbones`), `exif_orientation`.

    Returns:
        A `keras.Model` mapping ImageNet-normalized RGB images (N, H, W, 3)
        to a dict: `level1..3` (the levels present), `global` and `logits`
        (fused), all (N, M) float32 logits, and `boxes` (N, L, M, 4)
        float32 [y1, x1, y2, x2] when there are ALM levels.

    Raises:
        ValueError: a value `ModelConfig` refuses, or a bad `input_shape`.
        TypeError: an option that is not a `ModelConfig` field.
    """
    fields = {field.name for field in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(options) - (fields - _NOT_OPTIONS))
    if unknown:
        raise TypeError(f"build_model() got unknown options {unknown}; it takes "
                        f"{sorted(fields - _NOT_OPTIONS)}")
    if backbone is not None:
        options["backbone"] = backbone
    if input_shape is not None:
        if len(tuple(input_shape)) != 3 or tuple(input_shape)[2] != 3:
            raise ValueError("input_shape must be (height, width, 3). "
                             f"Received: input_shape={input_shape!r}")
        options["image_height"], options["image_width"] = int(input_shape[0]), int(input_shape[1])
    config = ModelConfig(num_attributes=num_attributes, **options)
    return build_model_from_config(config, name=name)


def _level_parts(config: ModelConfig, taps, level: int, laterals):
    """Inputs of one level's ALM layer (coarse to fine) and its lateral."""
    if config.top_down == "none":
        if level == 1:
            return [taps[0]], PYRAMID_CHANNELS
        return [laterals[level]], None
    parts = [laterals[3]]
    if level <= 2:
        parts.append(laterals[2])
    if level == 1:
        return parts + [taps[0]], PYRAMID_CHANNELS
    return parts, None


def build_model_from_config(config: ModelConfig,
                            name: Optional[str] = None) -> keras.Model:
    """Build the model a `ModelConfig` describes (see `build_model`).

    Raises:
        ValueError: `config.num_attributes` is not set, or the backbone
            weights cannot be read.
    """
    m = config.num_attributes
    if m is None:
        raise ValueError("the model config has no num_attributes (set it from the data with "
                         "ModelConfig.with_num_attributes). Received: num_attributes=None")
    inputs = keras.Input(shape=config.input_shape, name=names.INPUT)
    taps = backbone_features(config.backbone, inputs,
                             weights=config.backbone_weights)

    pooled = keras.layers.GlobalAveragePooling2D(name=names.GLOBAL_POOL)(taps[2])
    global_logits = keras.layers.Dense(m, name=names.GLOBAL_CLASSIFIER, dtype="float32")(
        pooled)
    outputs = {}
    level_logits, level_boxes = [], []
    if config.alm_levels:
        # The level-1 lateral runs inside its ALM layer on pooled vectors.
        needed = set()
        for level in config.alm_levels:
            if config.top_down == "none":
                needed.add(level)
            else:
                needed.update(lv for lv in (2, 3) if lv >= level)
        laterals = {
            level: keras.layers.Conv2D(
                PYRAMID_CHANNELS, 1, name=names.lateral_layer(level))(
                    taps[level - 1])
            for level in sorted(needed - {1})
        }
        combine = "none" if config.top_down == "none" else config.top_down
        for level in config.alm_levels:
            parts, lateral_units = _level_parts(config, taps, level, laterals)
            logits, boxes = AttributeLocalization(
                m, combine=combine if len(parts) > 1 else "none",
                upsampling=config.upsampling,
                channel_attention=config.channel_attention,
                lateral_units=lateral_units, dtype="float32",
                name=names.alm_layer(level))(parts)
            outputs[names.level_output(level)] = logits
            level_logits.append(logits)
            level_boxes.append(keras.layers.Reshape(
                (1, m, 4), name=names.level_boxes_layer(level),
                dtype="float32")(boxes))
    outputs[names.GLOBAL_OUTPUT] = global_logits
    if level_logits:
        outputs[names.FUSED_OUTPUT] = LogitFusion(config.fusion, dtype="float32",
                                                  name=names.FUSION)(
            level_logits + [global_logits])
        outputs[names.BOXES_OUTPUT] = (
            level_boxes[0] if len(level_boxes) == 1 else
            keras.layers.Concatenate(axis=1, name=names.BOXES_OUTPUT, dtype="float32")(level_boxes))
    else:
        outputs[names.FUSED_OUTPUT] = keras.layers.Identity(name=names.FUSED_OUTPUT,
                                                            dtype="float32")(global_logits)
    default = names.MODEL_NAME if config.alm_levels else names.BASELINE_MODEL_NAME
    model = keras.Model(inputs, outputs, name=name or default)
    load_backbone_weights(model, config.backbone, config.backbone_weights)
    return model


def backbone_layers(model: keras.Model) -> list:
    """The layers of `model` that belong to its backbone (everything but the heads).

    The heads are the global pooling and classifier (`global_pool`,
    `finalfc`), the pyramid laterals (`latlayer_*`), the ALM layers
    (`st_*`) and the output plumbing. A keras_applications backbone is one
    nested-model layer.
    """
    return [layer for layer in model.layers
            if not layer.name.startswith(names.HEAD_LAYER_PREFIXES)]


def freeze_backbone(model: keras.Model) -> int:
    """Marks the backbone's layers non-trainable; returns how many weights that froze.

    As everywhere in Keras 3, a BatchNormalization layer that is not
    trainable also runs in inference mode (moving statistics), so a frozen
    backbone computes exactly what it computed when it was trained.
    """
    frozen = 0
    for layer in backbone_layers(model):
        frozen += sum(math.prod(w.shape) for w in layer.trainable_weights)
        layer.trainable = False
    return frozen


def zero_box_kernels(model: keras.Model) -> int:
    """Sets every ALM box regressor's kernel to zero; returns how many layers that touched.

    theta = kernel . features + bias, so afterwards every image gets the
    same box (the bias's) until the kernels learn; the Spatial Transformer
    paper starts its regression layer the same way. `TrainConfig.box_kernel_init`.
    """
    touched = 0
    for layer in model.layers:
        if isinstance(layer, AttributeLocalization):
            layer.box_kernel.assign(keras.ops.zeros(layer.box_kernel.shape, layer.box_kernel.dtype))
            touched += 1
    return touched


def count_params(model: keras.Model) -> int:
    """Number of trainable parameters (batch-norm statistics excluded)."""
    return int(sum(int(v.numpy().size) for v in model.trainable_weights))
