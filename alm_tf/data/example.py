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

`build_example` writes the Example's protobuf wire format itself, the bytes
of `tf.train.Example(...).SerializeToString(deterministic=True)`, so that
data workers (the Beam conversion's) write records without importing
TensorFlow; this module imports it only to parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def _encode_varint(value: int) -> bytes:
    """A protobuf varint; a negative int64 as its 64-bit two's complement (ten bytes)."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: The varints of the label values and small sizes, which make most of a record's fields.
_SMALL_VARINTS = {v: _encode_varint(v) for v in range(-1, 1024)}


def _varint(value: int) -> bytes:
    small = _SMALL_VARINTS.get(value)
    return small if small is not None else _encode_varint(value)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _bytes(values: Sequence[bytes]) -> bytes:
    """Feature{bytes_list: BytesList{value: values}}."""
    return _field(1, b"".join(_field(1, v) for v in values))


def _ints(values: Sequence[int]) -> bytes:
    """Feature{int64_list: Int64List{value: values}} (packed, as proto3 writes it)."""
    packed = b"".join(_varint(int(v)) for v in values)
    return _field(3, _field(1, packed) if packed else b"")


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
    # The map entries in key order (protobuf's deterministic serialization), so
    # the same input gives the same bytes in every process.
    entries = b"".join(_field(1, _field(1, key.encode("utf-8")) + _field(2, value))
                       for key, value in sorted(features.items(), key=lambda kv: kv[0].encode("utf-8")))
    return _field(1, entries)


def feature_spec(num_attributes: int) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec; a record whose attribute list is not of length M fails."""
    import tensorflow as tf

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
    import tensorflow as tf

    return tf.io.parse_single_example(serialized, feature_spec(num_attributes))
