"""BN-Inception (Inception v2 with batch norm), exactly as the ALM code runs it.

Ioffe & Szegedy, "Batch Normalization", ICML 2015. Layer names equal the
official (and ImageNet) checkpoint's names, so `alm-import-torch` maps
weights by name. PyTorch semantics reproduced: every conv has a bias and is
followed by BatchNorm (epsilon 1e-5; `FusedBatchNormalization`, one op) and
ReLU; every pool uses ceil mode; the stride-1 average pools count their
padded zeros; stride-2 convs pad explicitly (TF's `same` padding would pad
only on the bottom/right).
"""

from __future__ import annotations

import keras

from alm_tf import names
from alm_tf.backbones.registry import REGISTRY
from alm_tf.layers.fused_batch_norm import FusedBatchNormalization
from alm_tf.layers.torch_pooling_2d import TorchPooling2D, pooled_size

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

# Standard inception blocks: (name, 1x1, 3x3 reduce, 3x3, double reduce,
# double 3x3, pool type, pool projection).
_BLOCKS = (
    ("3a", 64, 64, 64, 64, 96, "avg", 32),
    ("3b", 64, 64, 96, 64, 96, "avg", 64),
    ("3c", None, 128, 160, 64, 96, "reduce", None),
    ("4a", 224, 64, 96, 96, 128, "avg", 128),
    ("4b", 192, 96, 128, 96, 128, "avg", 128),
    ("4c", 160, 128, 160, 128, 160, "avg", 128),
    ("4d", 96, 128, 192, 160, 192, "avg", 128),
    ("4e", None, 128, 192, 192, 256, "reduce", None),
    ("5a", 352, 192, 320, 160, 224, "avg", 128),
    ("5b", 352, 192, 320, 192, 224, "max", 128),
)

#: Blocks whose outputs feed the feature pyramid (strides 8, 16, 32).
TAPS = REGISTRY["bn_inception"].taps


def _conv_bn_relu(x, filters, kernel, name, strides=1, padding=0):
    if padding and strides > 1:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        pad_mode = "valid"
    else:
        pad_mode = "same" if padding else "valid"
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=pad_mode,
                            use_bias=True, name=name)(x)
    x = FusedBatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _inception_block(x, spec):
    block, n1x1, n3r, n3, nd_r, nd, pool, proj = spec
    p = f"inception_{block}"
    stride = 2 if pool == "reduce" else 1
    branches = []
    if n1x1:
        branches.append(_conv_bn_relu(x, n1x1, 1, f"{p}_1x1"))
    b = _conv_bn_relu(x, n3r, 1, f"{p}_3x3_reduce")
    branches.append(_conv_bn_relu(b, n3, 3, f"{p}_3x3", strides=stride,
                                  padding=1))
    b = _conv_bn_relu(x, nd_r, 1, f"{p}_double_3x3_reduce")
    b = _conv_bn_relu(b, nd, 3, f"{p}_double_3x3_1", padding=1)
    branches.append(_conv_bn_relu(b, nd, 3, f"{p}_double_3x3_2",
                                  strides=stride, padding=1))
    if pool == "reduce":
        branches.append(TorchPooling2D("max", 3, 2, 0, name=f"{p}_pool")(x))
    else:
        b = TorchPooling2D(pool, 3, 1, 1, name=f"{p}_pool")(x)
        branches.append(_conv_bn_relu(b, proj, 1, f"{p}_pool_proj"))
    return keras.layers.Concatenate(axis=-1, name=f"{p}_output")(branches)


def feature_sizes(height: int, width: int):
    """Spatial sizes at strides 8, 16, 32, or a ValueError if unusable.

    The reduction blocks concatenate a stride-2 conv branch (floor) with a
    ceil-mode max pool: their sizes differ whenever the stride-8 or stride-16
    map has an odd side (the official network crashes there).
    """
    sizes = []
    for size in (height, width):
        s = (size + 2 * 3 - 7) // 2 + 1  # conv1 7x7/2, pad 3
        s = pooled_size(s, 3, 2, 0, True)  # pool1
        s = pooled_size(s, 3, 2, 0, True)  # pool2: stride 8
        axis = [s]
        for _ in range(2):  # 3c, 4e
            conv = (s + 2 - 3) // 2 + 1
            pool = pooled_size(s, 3, 2, 0, True)
            if conv != pool or s < 1:
                raise ValueError(
                    "BN-Inception needs input sides whose stride-8 and "
                    "stride-16 maps are even (multiples of 32 always work, "
                    f"e.g. 256x128). Received: input size {height}x{width}"
                )
            s = conv
            axis.append(s)
        sizes.append(axis)
    return [(sizes[0][i], sizes[1][i]) for i in range(3)]


def bn_inception_features(inputs):
    """Build BN-Inception on `inputs` (N, H, W, 3); return the three taps.

    Returns:
        `[inception_3b (stride 8, 320 ch), inception_4d (stride 16, 608 ch),
        inception_5b (stride 32, 1024 ch)]`.
    """
    feature_sizes(inputs.shape[1], inputs.shape[2])
    x = _conv_bn_relu(inputs, 64, 7, "conv1_7x7_s2", strides=2, padding=3)
    x = TorchPooling2D("max", 3, 2, 0, name="pool1_3x3_s2")(x)
    x = _conv_bn_relu(x, 64, 1, "conv2_3x3_reduce")
    x = _conv_bn_relu(x, 192, 3, "conv2_3x3", padding=1)
    x = TorchPooling2D("max", 3, 2, 0, name="pool2_3x3_s2")(x)
    taps = []
    for spec in _BLOCKS:
        x = _inception_block(x, spec)
        if f"inception_{spec[0]}" in TAPS:
            taps.append(x)
    return taps


def build_bn_inception(input_shape=(256, 128, 3)) -> keras.Model:
    """BN-Inception as a standalone model returning the three taps."""
    inputs = keras.Input(shape=input_shape, name=names.INPUT)
    return keras.Model(inputs, bn_inception_features(inputs),
                       name="bn_inception")
