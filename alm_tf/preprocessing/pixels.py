"""Image preprocessing shared by the input pipeline, the evaluator and serving.

One definition, so that training and serving see the same pixels: decode
(JPEG / PNG / grayscale / RGBA -> RGB uint8), resize, normalize with the
ImageNet mean and standard deviation.

The resize is the official pipeline's: its `transforms.Resize((256, 128))`
runs on a PIL image, i.e. PIL's BILINEAR filter, which antialiases when
shrinking (its triangle kernel widens with the scale factor). TensorFlow's
bilinear resize with `antialias=True` is the same filter (half-pixel
centers, weights renormalized at the borders): it agrees with Pillow
within 1/255 from 750x450 down and from 100x50 up (tested against
Pillow); without antialiasing, a shrunk textured crop aliases and differs
from Pillow by far more. The result stays float (PIL rounds to uint8; the
difference is below one level).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from alm_tf.preprocessing import image_header
from alm_tf.preprocessing import image_input

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESIZE_RULE",
    "decode_image",
    "description",
    "height_width",
    "normalize_images",
    "preprocess_images",
    "resize_images",
]


def decode_image(encoded: tf.Tensor | bytes,
                 max_pixels: int | None = image_input.DEFAULT_MAX_IMAGE_PIXELS,
                 exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION) -> tf.Tensor:
    """Decodes one encoded image to uint8 RGB of shape (H, W, 3).

    Handles JPEG, PNG (also grayscale and RGBA, alpha dropped), BMP, WebP
    and the first frame of a GIF (`image_input.FORMATS`). The size in the
    header is checked against `max_pixels` before decoding (None: no
    check, for records alm-convert already checked); with
    `exif_orientation="apply"` a JPEG's EXIF Orientation turns the pixels
    (`alm_tf.preprocessing.image_header`). Works inside a tf.function with unknown
    shapes.

    Raises:
        tf.errors.InvalidArgumentError: the bytes are empty, not an image,
            or an image of more than `max_pixels` pixels.
    """
    if max_pixels is not None:
        image_input.check_max_pixels(max_pixels)
    image_input.check_exif_orientation(exif_orientation)
    encoded = tf.convert_to_tensor(encoded, dtype=tf.string)
    check = tf.debugging.assert_greater(
        tf.strings.length(encoded), 0, message="decode_image: empty image bytes"
    )
    # The checks run first in every graph (without the dependency, which op
    # fails first is up to the graph optimizer): the size check must come
    # before the decoder allocates the pixels.
    if max_pixels is not None:
        with tf.control_dependencies([check]):
            check = image_header.check_size(encoded, max_pixels)
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    if exif_orientation == "apply":
        image = image_header.apply_orientation(image, image_header.exif_orientation(encoded))
    image.set_shape([None, None, 3])
    return image


def normalize_images(images_0_255: tf.Tensor) -> tf.Tensor:
    """RGB values in 0..255 to ImageNet-normalized float32: (x / 255 - mean) / std."""
    x = tf.cast(images_0_255, tf.float32) / 255.0
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return (x - mean) / std


#: The resize, as model files and config.json describe it (`description`).
RESIZE_RULE = ("bilinear, half-pixel centers, antialiased when shrinking (PIL's BILINEAR filter, "
               "as the official torchvision Resize on PIL images); result kept as float")


def resize_images(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The official resize (see the module docstring) to float32 (..., height, width, C)."""
    return tf.image.resize(
        tf.cast(images, tf.float32), (height, width), method="bilinear", antialias=True
    )


def preprocess_images(images_0_255: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Resize then normalize: what the model sees. (H, W, 3) or (N, H, W, 3)."""
    return normalize_images(resize_images(images_0_255, height, width))


def description(height: int, width: int,
                exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION) -> dict:
    """What `preprocess_images(decode_image(bytes))` does, in words, for the files that ship a model.

    config.json, every `.keras` description, the SavedModel's docs and the
    portable exports' model.json carry it; the portable graphs start after
    the resize, so a deployment must repeat the decode and resize steps
    exactly as described here. Keep it in step with `decode_image`,
    `resize_images` and `normalize_images`.
    """
    return {
        "decode": "JPEG/PNG/BMP/WebP/GIF (first frame) to RGB uint8; grayscale is repeated to 3 "
                  "channels, alpha dropped",
        # ignore: pixels as stored (the official PIL pipeline); apply: a JPEG's
        # EXIF Orientation turns the decoded pixels (Pillow's ImageOps.exif_transpose).
        image_input.EXIF_FLAG: image_input.check_exif_orientation(exif_orientation),
        "channel_order": "RGB",
        "layout": "NHWC",
        "resize": {
            "size": [int(height), int(width)],
            "method": "bilinear",
            "half_pixel_centers": True,
            "antialias": True,
            "keep_aspect_ratio": False,
            "rule": RESIZE_RULE,
            "tensorflow": f"tf.image.resize(image, ({int(height)}, {int(width)}), method='bilinear', "
                          f"antialias=True) on float32 RGB 0..255",
            "pillow": f"Image.resize(({int(width)}, {int(height)}), Image.BILINEAR) (within 1/255)",
        },
        "value_range": [0.0, 255.0],
        "normalization": {
            "formula": "(x / 255 - mean) / std per channel",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
    }


def height_width(image_size: Sequence[int]) -> tuple[int, int]:
    """(height, width) of an image size as ints; ValueError naming a bad size."""
    if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
        raise ValueError(f"image_size must be (height, width) > 0. Received: image_size={image_size}")
    return int(image_size[0]), int(image_size[1])
