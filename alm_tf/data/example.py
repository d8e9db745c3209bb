"""The tf.Example feature keys of our TFRecords, and how to build and parse them.

The record format (fixed: converted data and exported models rely on it):
`image/encoded` (JPEG or PNG bytes as found), `image/format`,
`image/filename` (the path as the annotation wrote it, relative to the
images folder), `image/height`, `image/width` (int64), `image/attributes`
(int64 list of length M, values 0, 1 or -1 = unknown, `labels.LABEL_VALUES`).

Beside them, a merged data set (`alm_tf.data.merge`) writes
`image/source` (bytes): the name of the data set the record came from, so
that the evaluation can report metrics per source. Records without it
parse with an empty source.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

ENCODED = "image/encoded"
FORMAT = "image/format"
FILENAME = "image/filename"
HEIGHT = "image/height"
WIDTH = "image/width"
ATTRIBUTES = "image/attributes"
SOURCE = "image/source"

KEYS = (ENCODED, FORMAT, FILENAME, HEIGHT, WIDTH, ATTRIBUTES)

__all__ = [
    "ENCODED",
    "FORMAT",
    "FILENAME",
    "HEIGHT",
    "WIDTH",
    "ATTRIBUTES",
    "SOURCE",
    "KEYS",
    "build_example",
    "feature_spec",
    "parse_example",
]


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def build_example(
    *,
    encoded: bytes,
    image_format: str,
    filename: str,
    height: int,
    width: int,
    attributes: Sequence[int],
    source: str | None = None,
) -> bytes:
    """A serialized tf.train.Example with the keys above (and `image/source`
    when `source` is given)."""
    features = {
        ENCODED: _bytes([encoded]),
        FORMAT: _bytes([image_format.encode("utf-8")]),
        FILENAME: _bytes([filename.encode("utf-8")]),
        HEIGHT: _ints([height]),
        WIDTH: _ints([width]),
        ATTRIBUTES: _ints(attributes),
    }
    if source is not None:
        features[SOURCE] = _bytes([source.encode("utf-8")])
    # deterministic=True: map entries in key order, so the same input gives the
    # same bytes in every process.
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def feature_spec(num_attributes: int) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec; a record whose attribute list is not of length M fails."""
    return {
        ENCODED: tf.io.FixedLenFeature([], tf.string),
        FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        ATTRIBUTES: tf.io.FixedLenFeature([num_attributes], tf.int64),
        SOURCE: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }


def parse_example(serialized: tf.Tensor, num_attributes: int) -> dict[str, tf.Tensor]:
    """Parses one serialized example (scalar string tensor)."""
    return tf.io.parse_single_example(serialized, feature_spec(num_attributes))
