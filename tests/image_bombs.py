"""Small image files whose headers claim huge sizes, and other odd inputs.

A "bomb" here is a tiny real image whose header is patched to claim
`width` x `height`: every size check reads the header only, so a test
needs no multi-megabyte file (a decoder would fail on the missing data,
which is why the check must come first). `real_jpeg` makes a genuinely
large, low-quality solid JPEG for the few tests that decode one.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _small(fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg_bomb(width: int, height: int) -> bytes:
    """A JPEG whose SOF marker claims width x height."""
    data = bytearray(_small("JPEG"))
    at = data.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (with a valid CRC)."""
    data = bytearray(_small("PNG"))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def gif_bomb(width: int, height: int) -> bytes:
    """A GIF whose logical screen claims width x height (at most 65535 each)."""
    data = bytearray(_small("GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def bmp_bomb(width: int, height: int) -> bytes:
    """A BMP whose DIB header claims width x height."""
    data = bytearray(_small("BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def webp_bomb(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) whose header claims width x height (at most 16384 each)."""
    data = bytearray(_small("WEBP", lossless=True))
    assert data[12:16] == b"VP8L"
    bits = (width - 1) | (height - 1) << 14 | (data[24] >> 4) << 28  # keep alpha/version bits
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


BOMBS = {"jpeg": jpeg_bomb, "png": png_bomb, "gif": gif_bomb, "bmp": bmp_bomb, "webp": webp_bomb}


def real_jpeg(width: int, height: int, quality: int = 10) -> bytes:
    """A real solid-grey JPEG of width x height (a few hundred kB at 12000x12000)."""
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
