"""Image preprocessing shared by the input pipeline, the evaluator and serving.

One definition, so that training and serving see the same pixels: decode
(JPEG / PNG / grayscale / RGBA -> RGB uint8), resize (bilinear, half-pixel
centers, no antialiasing, as the paper's torchvision Resize on tensors),
normalize with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "decode_image",
    "describe_preprocessing",
    "normalize_images",
    "preprocess_images",
    "resize_images",
]


def decode_image(encoded: tf.Tensor | bytes) -> tf.Tensor:
    """Decodes one encoded image to uint8 RGB of shape (H, W, 3).

    Handles JPEG, PNG (also grayscale and RGBA, alpha dropped), BMP and the
    first frame of a GIF. Works inside a tf.function with unknown shapes.

    Raises:
        tf.errors.InvalidArgumentError: the bytes are empty or not an image.
    """
    encoded = tf.convert_to_tensor(encoded, dtype=tf.string)
    tf.debugging.assert_greater(
        tf.strings.length(encoded), 0, message="decode_image: empty image bytes"
    )
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def normalize_images(images_0_255: tf.Tensor) -> tf.Tensor:
    """RGB values in 0..255 to ImageNet-normalized float32: (x / 255 - mean) / std."""
    x = tf.cast(images_0_255, tf.float32) / 255.0
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return (x - mean) / std


def resize_images(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Bilinear resize (half-pixel centers, antialias off) to float32 (..., height, width, C)."""
    return tf.image.resize(
        tf.cast(images, tf.float32), (height, width), method="bilinear", antialias=False
    )


def preprocess_images(images_0_255: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Resize then normalize: what the model sees. (H, W, 3) or (N, H, W, 3)."""
    return normalize_images(resize_images(images_0_255, height, width))


def describe_preprocessing(height: int, width: int) -> dict:
    """What `preprocess_images(decode_image(bytes))` does, in words, for files that ship a model.

    The portable exports (`alm_tf.serving.portable`) write this into
    model.json: their graphs start after the resize, so a deployment must
    repeat the decode and resize steps exactly as described here. Keep it
    in step with `decode_image`, `resize_images` and `normalize_images`.
    """
    return {
        "decode": "JPEG/PNG/BMP/GIF (first frame) to RGB uint8; grayscale is repeated to 3 "
                  "channels, alpha dropped",
        "channel_order": "RGB",
        "layout": "NHWC",
        "resize": {
            "size": [int(height), int(width)],
            "method": "bilinear",
            "half_pixel_centers": True,
            "antialias": False,
            "keep_aspect_ratio": False,
            "rule": f"tf.image.resize(image, ({int(height)}, {int(width)}), method='bilinear', "
                    f"antialias=False) on float32 RGB 0..255, aspect ratio not kept",
        },
        "value_range": [0.0, 255.0],
        "normalization": {
            "formula": "(x / 255 - mean) / std per channel",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
    }


def _image_size(image_size: Sequence[int]) -> tuple[int, int]:
    if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
        raise ValueError(f"image_size must be (height, width) > 0. Received: image_size={image_size}")
    return int(image_size[0]), int(image_size[1])
