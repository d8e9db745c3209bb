"""Records to model inputs: parse, decode and resize, augment, normalise.

The stages of the input pipeline (`alm_tf.data.pipeline`) between reading
the serialized records and batching them, each a `tf.data` map:

- `decode`: parse a record (`alm_tf.data.example`), decode its image
  (`alm_tf.preprocessing.pixels`, with the model's EXIF rule) and resize it
  to the model size (bilinear, float 0..255); labels as float32 (0., 1. or
  -1. for unknown); with `with_sources`, the record's `image/source` too.
- `random_flips`: the training augmentation, a random horizontal flip,
  seeded per example when a seed is given (stateless, so the same seed
  gives the same flips).
- `normalize`: ImageNet normalisation, what `build_model` takes.
"""

from __future__ import annotations

import tensorflow as tf

from alm_tf.data import example
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

AUTOTUNE = tf.data.AUTOTUNE

__all__ = ["decode", "normalize", "parse_and_decode", "random_flips"]


def parse_and_decode(
    serialized: tf.Tensor, num_attributes: int, height: int, width: int, with_sources: bool = False,
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION,
) -> tuple[tf.Tensor, ...]:
    """One serialized record -> (image float32 (H, W, 3) 0..255, labels float32 (M,)[, source])."""
    features = example.parse_example(serialized, num_attributes)
    # No size limit here: alm-convert checked every image against its own
    # --max_image_pixels before writing the records.
    image = preprocessing.decode_image(features[example.ENCODED], max_pixels=None,
                                       exif_orientation=exif_orientation)
    image = preprocessing.resize_images(image, height, width)
    labels = tf.cast(features[example.ATTRIBUTES], tf.float32)
    if with_sources:
        return image, labels, features[example.SOURCE]
    return image, labels


def decode(ds: tf.data.Dataset, num_attributes: int, height: int, width: int, *, with_sources: bool,
           exif_orientation: str, skip_bad: bool, deterministic: bool) -> tf.data.Dataset:
    """Serialized records -> decoded examples (`parse_and_decode`).

    With `skip_bad`, a record or image that fails here is dropped with a
    logged warning; without, it raises when the data set is iterated.
    """
    def load(serialized: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return parse_and_decode(serialized, num_attributes, height, width, with_sources, exif_orientation)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if skip_bad:
        ds = ds.ignore_errors(log_warning=True)
    return ds


def random_flips(ds: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    """Flips each image left-right at random; with a seed, the same flips every time."""
    if seed is None:
        return ds.map(
            lambda x, *rest: (tf.image.random_flip_left_right(x), *rest),
            num_parallel_calls=AUTOTUNE,
            deterministic=False,
        )
    flip_seeds = tf.data.Dataset.random(seed=seed).batch(2)
    return tf.data.Dataset.zip(ds, flip_seeds).map(
        lambda xy, s: (tf.image.stateless_random_flip_left_right(xy[0], seed=s), *xy[1:]),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def normalize(ds: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    """ImageNet-normalises the images (`preprocessing.normalize_images`)."""
    return ds.map(lambda x, *rest: (preprocessing.normalize_images(x), *rest),
                  num_parallel_calls=AUTOTUNE, deterministic=deterministic)
