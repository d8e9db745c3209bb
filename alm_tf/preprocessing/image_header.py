"""Image headers read inside a TensorFlow graph: the size before decoding, JPEG's EXIF orientation.

`header_size` reads (height, width) from the first bytes of JPEG
(`tf.image.extract_jpeg_shape`), PNG (IHDR, big-endian), GIF (logical
screen), BMP (DIB header) and WebP (VP8 / VP8L / VP8X), the formats of
`alm_tf.preprocessing.image_input.FORMATS`; other bytes give (0, 0) and are left to
`decode_image` to refuse. `check_size` fails with InvalidArgumentError
naming the size and the limit (TF Serving answers INVALID_ARGUMENT) before
any decoding. `exif_orientation` finds the Orientation tag of a JPEG's
APP1 Exif block (1 when there is none), `apply_orientation` turns the
decoded pixels as Pillow's `ImageOps.exif_transpose` does. All ops are
plain string / arithmetic ops, so they serialize into a SavedModel.
"""

from __future__ import annotations

import tensorflow as tf

from alm_tf.preprocessing import image_input

_PAD = b"\0" * 32
_EXIF_MARK = b"Exif\0\0"
#: How far into a JPEG its APP1 Exif block is looked for.
_EXIF_SEARCH_BYTES = 1 << 17
#: IFD0 entries looked at for the Orientation tag.
_MAX_IFD_ENTRIES = 64
_ORIENTATION_TAG = 0x0112

__all__ = ["apply_orientation", "check_size", "exif_orientation", "header_size"]


def _starts(encoded: tf.Tensor, start: int, magic: bytes) -> tf.Tensor:
    """Whether `magic` lies at `start` (False for bytes too short to hold it)."""
    padded = tf.strings.join([tf.strings.substr(encoded, 0, start + len(magic)), b"\0" * start])
    return tf.equal(tf.strings.substr(padded, start, len(magic)), magic)


def _uint(padded: tf.Tensor, start, length: int, big_endian: bool) -> tf.Tensor:
    """An unsigned integer of `length` bytes at `start` of `padded`, as int64."""
    raw = tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8, fixed_length=length)
    values = tf.cast(raw, tf.int64)
    weights = tf.constant([256 ** k for k in range(length)], tf.int64)
    if big_endian:
        weights = tf.reverse(weights, [0])
    return tf.reduce_sum(values * weights)


def _simple_sizes(encoded: tf.Tensor) -> tf.Tensor:
    """(height, width) of a PNG, GIF, BMP or WebP header; (0, 0) for anything else."""
    head = tf.strings.join([tf.strings.substr(encoded, 0, 32), _PAD])
    le = lambda start, n: _uint(head, start, n, False)  # noqa: E731
    be = lambda start, n: _uint(head, start, n, True)  # noqa: E731
    png = tf.stack([be(20, 4), be(16, 4)])
    gif = tf.stack([le(8, 2), le(6, 2)])
    signed = lambda v: tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))  # noqa: E731
    bmp = tf.where(tf.equal(le(14, 4), 12), tf.stack([le(20, 2), le(18, 2)]),
                   tf.stack([signed(le(22, 4)), signed(le(18, 4))]))
    b21, b22, b23, b24 = (le(k, 1) for k in (21, 22, 23, 24))
    vp8l = tf.stack([1 + b22 // 64 + b23 * 4 + (b24 % 16) * 1024, 1 + b21 + (b22 % 64) * 256])
    vp8x = tf.stack([1 + le(27, 3), 1 + le(24, 3)])
    vp8 = tf.stack([le(28, 2) % 16384, le(26, 2) % 16384])
    webp = tf.logical_and(_starts(encoded, 0, b"RIFF"), _starts(encoded, 8, b"WEBP"))
    cases = [
        (_starts(encoded, 0, b"\x89PNG\r\n\x1a\n"), png),
        (_starts(encoded, 0, b"GIF8"), gif),
        (_starts(encoded, 0, b"BM"), bmp),
        (tf.logical_and(webp, _starts(encoded, 12, b"VP8L")), vp8l),
        (tf.logical_and(webp, _starts(encoded, 12, b"VP8X")), vp8x),
        (tf.logical_and(webp, _starts(encoded, 12, b"VP8 ")), vp8),
    ]
    size = tf.zeros([2], tf.int64)
    for condition, value in reversed(cases):
        size = tf.where(condition, value, size)
    return size


def header_size(encoded: tf.Tensor) -> tf.Tensor:
    """(height, width) int64 from the header of one encoded image; (0, 0) when unknown."""
    encoded = tf.convert_to_tensor(encoded, tf.string)
    return tf.cond(_starts(encoded, 0, b"\xff\xd8"),
                   lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
                   lambda: _simple_sizes(encoded))


def check_size(encoded: tf.Tensor, max_pixels: int) -> tf.Operation:
    """An op failing with InvalidArgumentError when the header claims more than `max_pixels`."""
    size = header_size(encoded)
    pixels = size[0] * size[1]
    message = tf.strings.format(image_input.too_large_message("{}", max_pixels, "{}x{}"),
                                (size[1], size[0], pixels))
    return tf.debugging.Assert(pixels <= max_pixels, [message])


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """The EXIF Orientation (int32 1..8) of a JPEG's first APP1 Exif block; 1 when none or invalid."""
    encoded = tf.convert_to_tensor(encoded, tf.string)
    head = tf.strings.substr(encoded, 0, _EXIF_SEARCH_BYTES)
    parts = tf.strings.split(head, sep=_EXIF_MARK, maxsplit=1)
    found = tf.logical_and(_starts(encoded, 0, b"\xff\xd8"), tf.equal(tf.size(parts), 2))
    before = parts[0]
    marker_at = tf.maximum(tf.strings.length(before) - 4, 0)
    found = tf.logical_and(found, tf.equal(tf.strings.substr(before, marker_at, 2), b"\xff\xe1"))
    tiff = tf.strings.join([parts[-1], b"\0" * (8 + 2 + 12 * _MAX_IFD_ENTRIES)])
    big = _starts(tiff, 0, b"MM")
    found = tf.logical_and(found, tf.logical_or(big, _starts(tiff, 0, b"II")))

    def read(start, n):
        return tf.where(big, _uint(tiff, start, n, True), _uint(tiff, start, n, False))

    limit = tf.cast(tf.strings.length(parts[-1]), tf.int64)
    ifd = read(4, 4)
    found = tf.logical_and(found, ifd + 2 <= limit)
    ifd = tf.where(found, ifd, 0)
    count = read(ifd, 2)
    raw = tf.io.decode_raw(tf.strings.substr(tiff, ifd + 2, 12 * _MAX_IFD_ENTRIES), tf.uint8,
                           fixed_length=12 * _MAX_IFD_ENTRIES)
    rows = tf.reshape(tf.cast(raw, tf.int64), [_MAX_IFD_ENTRIES, 12])
    first, second = (rows[:, 0], rows[:, 1]), (rows[:, 8], rows[:, 9])
    tags = tf.where(big, first[0] * 256 + first[1], first[1] * 256 + first[0])
    values = tf.where(big, second[0] * 256 + second[1], second[1] * 256 + second[0])
    wanted = tf.logical_and(tf.range(_MAX_IFD_ENTRIES, dtype=tf.int64) < count,
                            tf.equal(tags, _ORIENTATION_TAG))
    value = tf.reduce_max(tf.where(wanted, values, 0))  # the tag appears once
    valid = tf.logical_and(found, tf.logical_and(value >= 1, value <= 8))
    return tf.cast(tf.where(valid, value, 1), tf.int32)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """(H, W, C) pixels turned as EXIF `orientation` (1..8) says (Pillow's exif_transpose)."""
    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,                                   # 1: as stored
        lambda: tf.reverse(image, [1]),                  # 2: mirrored left-right
        lambda: tf.image.rot90(image, 2),                # 3: rotated 180
        lambda: tf.reverse(image, [0]),                  # 4: mirrored top-bottom
        lambda: transpose(image),                        # 5: transposed
        lambda: tf.image.rot90(image, 3),                # 6: rotated 90 clockwise to fix
        lambda: tf.image.rot90(transpose(image), 2),     # 7: transversed
        lambda: tf.image.rot90(image, 1),                # 8: rotated 90 counter-clockwise to fix
    ]
    return tf.switch_case(tf.clip_by_value(orientation, 1, 8) - 1, branches)
