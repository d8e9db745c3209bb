"""Per-row checks of the converter (no TensorFlow: runs in worker processes).

A row is kept only if its path stays inside the images folder, it is not a
duplicate, its label count and values are right, and its image file exists
and decodes completely (Pillow's full decode catches truncated files that a
header check misses).
"""

from __future__ import annotations

import dataclasses
import io
import os
import posixpath
import zlib
from collections.abc import Sequence
from typing import Any


from alm_tf.data import image_input
from alm_tf.data.labels import LABEL_VALUES

# Skip reasons (the manifest and the summary group rows by these).
MISSING_FILE = "missing file"
UNREADABLE_IMAGE = "unreadable image"
WRONG_LABEL_COUNT = "wrong label count"
LABEL_OUT_OF_SET = "label value out of set"
PATH_ESCAPES = "path escapes images_dir"
DUPLICATE_IMAGE = "duplicate image"
REASONS = (MISSING_FILE, UNREADABLE_IMAGE, WRONG_LABEL_COUNT, LABEL_OUT_OF_SET, PATH_ESCAPES, DUPLICATE_IMAGE)

_KEPT_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why a row is skipped: one of REASONS and a detail for the report."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """A fully decoded image: its bytes (as found, or PNG), format and size.

    `encoded` is None when the caller asked not to carry the file's bytes
    (worker processes: the writer re-reads the file, cheaper than sending
    the bytes back, and checks it against `crc32`).
    """

    encoded: bytes | None
    image_format: str
    height: int
    width: int
    crc32: int


def normalize_path(image: str) -> str | Problem:
    """The path as a clean relative POSIX path (used to open the file and to
    find duplicates), or why it is not acceptable."""
    if not image:
        return Problem(MISSING_FILE, "empty image path")
    posix = image.replace("\\", "/")
    if posix.startswith("/") or os.path.isabs(image) or (len(posix) > 1 and posix[1] == ":"):
        return Problem(PATH_ESCAPES, f"absolute path {image!r}")
    norm = posixpath.normpath(posix)
    if norm == ".." or norm.startswith("../"):
        return Problem(PATH_ESCAPES, f"{image!r} leaves the images folder")
    if norm == ".":
        return Problem(MISSING_FILE, f"{image!r} names the images folder itself")
    return norm


_LABEL_STRINGS = {str(v): v for v in LABEL_VALUES}
_ALLOWED = ", ".join(str(v) for v in LABEL_VALUES)


def parse_labels(raw: Sequence[Any], attributes: Sequence[str]) -> tuple[int, ...] | Problem:
    """Raw label values as ints in `labels.LABEL_VALUES` (-1 = unknown, 0, 1),
    or the problem with them."""
    if len(raw) != len(attributes):
        return Problem(WRONG_LABEL_COUNT, f"expected {len(attributes)}, found {len(raw)}")
    out = []
    for name, value in zip(attributes, raw):
        if isinstance(value, str):
            parsed = _LABEL_STRINGS.get(value.strip())
        elif isinstance(value, (bool, int, float)) and value in LABEL_VALUES:
            parsed = int(value)
        else:
            parsed = None
        if parsed is None:
            return Problem(LABEL_OUT_OF_SET, f"{value!r} for {name!r} (allowed: {_ALLOWED})")
        out.append(parsed)
    return tuple(out)


def check_image(images_dir: str, relpath: str, keep_bytes: bool = True,
                max_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> CheckedImage | Problem:
    """Reads and fully decodes one image, its header's size checked first.

    An image of more than `max_pixels` (width x height) is refused before
    decoding. JPEG and PNG bytes are kept as found; the other formats of
    `image_input.FORMATS` (BMP, GIF, WebP) are re-encoded losslessly as
    PNG, since the records hold JPEG or PNG only. With `keep_bytes=False` the bytes of a JPEG or PNG are
    not returned (see `CheckedImage`).
    """
    path = os.path.join(images_dir, relpath)
    if os.path.isdir(path):
        return Problem(UNREADABLE_IMAGE, f"{relpath} is a folder, not an image")
    if not os.path.isfile(path):
        return Problem(MISSING_FILE, relpath)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {e.strerror or e}")
    try:
        with image_input.open_image(data, max_pixels) as img:
            fmt = img.format
            if fmt not in image_input.FORMATS:
                return Problem(UNREADABLE_IMAGE, f"{relpath}: unsupported format {fmt}")
            img.load()  # Full decode: raises on truncated or corrupt data.
            width, height = img.size
            reencoded = fmt not in _KEPT_FORMATS
            if reencoded:
                buf = io.BytesIO()
                img.convert("RGBA" if "A" in img.getbands() else "RGB").save(buf, format="PNG")
                data, fmt = buf.getvalue(), "PNG"
    except Exception as e:  # Pillow raises many types for bad files.
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {type(e).__name__}: {e}")
    if width < 1 or height < 1:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: empty image")
    crc = zlib.crc32(data)
    return CheckedImage(data if keep_bytes or reencoded else None, _KEPT_FORMATS[fmt], height, width, crc)


def image_bytes(images_dir: str, relpath: str, checked: CheckedImage) -> bytes | Problem:
    """The bytes to store for a checked image (re-read when not carried)."""
    if checked.encoded is not None:
        return checked.encoded
    try:
        with open(os.path.join(images_dir, relpath), "rb") as f:
            data = f.read()
    except OSError as e:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {e.strerror or e}")
    if zlib.crc32(data) != checked.crc32:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: changed during the conversion")
    return data
