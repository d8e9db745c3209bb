"""The ALM network: backbone, feature pyramid, ALM levels, global branch."""

from __future__ import annotations

import math
from typing import Optional

import keras

from alm_tf.backbones import backbone_features
from alm_tf.config import ModelConfig
from alm_tf.layers.attribute_localization import AttributeLocalization
from alm_tf.layers.logit_fusion import LogitFusion

PYRAMID_CHANNELS = 256
#: ALM layer and lateral names per level, as in the official checkpoint.
LEVEL_NAMES = {1: "3b", 2: "4d", 3: "5b"}


def build_model(num_attributes: int, backbone: str = "bn_inception",
                input_shape=(256, 128, 3), *, alm_levels=(1, 2, 3),
                top_down: str = "concat", channel_attention: bool = True,
                fusion: str = "max", upsampling: str = "bilinear",
                backbone_weights: Optional[str] = None,
                name: Optional[str] = None) -> keras.Model:
    """Build the ALM model (or the paper's baseline with `alm_levels=()`).

    Args:
        num_attributes: M.
        backbone: `bn_inception` (the paper's), `resnet50`,
            `efficientnetv2_s`, `convnext_tiny` or `mobilenet_v3_large`.
        input_shape: (H, W, 3).
        alm_levels: levels carrying ALMs; 1 is the finest (stride 8).
        top_down: `concat` (official), `add` or `none`.
        channel_attention: SE attention inside the ALMs.
        fusion: `max` (max voting) or `mean`.
        upsampling: `bilinear` (official code) or `nearest` (paper text).
        backbone_weights: None, "imagenet" or a local weights file.
        name: model name.

    Returns:
        A `keras.Model` mapping ImageNet-normalized RGB images (N, H, W, 3)
        to a dict: `level1..3` (the levels present), `global` and `logits`
        (fused), all (N, M) float32 logits, and `boxes` (N, L, M, 4)
        float32 [y1, x1, y2, x2] when there are ALM levels.
    """
    if len(tuple(input_shape)) != 3 or tuple(input_shape)[2] != 3:
        raise ValueError("input_shape must be (height, width, 3). "
                         f"Received: input_shape={input_shape!r}")
    config = ModelConfig(
        num_attributes=num_attributes, backbone=backbone,
        image_height=int(input_shape[0]), image_width=int(input_shape[1]),
        alm_levels=tuple(alm_levels), top_down=top_down,
        channel_attention=channel_attention, fusion=fusion,
        upsampling=upsampling, backbone_weights=backbone_weights)
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
    """Build the model a `ModelConfig` describes (see `build_model`)."""
    m = config.num_attributes
    inputs = keras.Input(shape=config.input_shape, name="images")
    taps = backbone_features(config.backbone, inputs,
                             weights=config.backbone_weights)

    pooled = keras.layers.GlobalAveragePooling2D(name="global_pool")(taps[2])
    global_logits = keras.layers.Dense(m, name="finalfc", dtype="float32")(
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
                PYRAMID_CHANNELS, 1, name=f"latlayer_{LEVEL_NAMES[level]}")(
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
                name=f"st_{LEVEL_NAMES[level]}")(parts)
            outputs[f"level{level}"] = logits
            level_logits.append(logits)
            level_boxes.append(keras.layers.Reshape(
                (1, m, 4), name=f"boxes_{LEVEL_NAMES[level]}",
                dtype="float32")(boxes))
    outputs["global"] = global_logits
    if level_logits:
        outputs["logits"] = LogitFusion(config.fusion, dtype="float32",
                                        name="fusion")(
            level_logits + [global_logits])
        outputs["boxes"] = (level_boxes[0] if len(level_boxes) == 1 else
                            keras.layers.Concatenate(axis=1, name="boxes",
                                                     dtype="float32")(
                                level_boxes))
    else:
        outputs["logits"] = keras.layers.Identity(name="logits",
                                                  dtype="float32")(
            global_logits)
    default = "alm" if config.alm_levels else "alm_baseline"
    return keras.Model(inputs, outputs, name=name or default)


HEAD_LAYER_PREFIXES = ("images", "global_pool", "finalfc", "latlayer_", "st_", "boxes",
                       "fusion", "logits")


def backbone_layers(model: keras.Model) -> list:
    """The layers of `model` that belong to its backbone (everything but the heads).

    The heads are the global pooling and classifier (`global_pool`,
    `finalfc`), the pyramid laterals (`latlayer_*`), the ALM layers
    (`st_*`) and the output plumbing. A keras_applications backbone is one
    nested-model layer.
    """
    return [layer for layer in model.layers
            if not layer.name.startswith(HEAD_LAYER_PREFIXES)]


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
