"""TFRecord files written without TensorFlow (the bytes of `tf.io.TFRecordWriter`).

A record is framed as TFRecord frames it: its length (uint64, little
endian), the masked CRC-32C of those eight bytes, the data, the masked
CRC-32C of the data. The checksum comes from `google_crc32c` (the `beam`
extra), so that the Beam conversion's workers write shards without
importing TensorFlow; the local conversion keeps TensorFlow's writer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_MASK_DELTA = 0xA282EAD8

__all__ = ["frame", "write_records"]


def _masked_crc(data: bytes) -> bytes:
    import google_crc32c

    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def frame(data: bytes) -> bytes:
    """One record as it stands in a TFRecord file."""
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def write_records(path: str, records: Iterable[bytes]) -> None:
    """A TFRecord file (uncompressed) of `records`, in order."""
    with open(path, "wb") as f:
        for record in records:
            f.write(frame(record))
