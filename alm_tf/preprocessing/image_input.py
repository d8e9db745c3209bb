"""Where images enter: the accepted formats, the decoded-size limit, EXIF orientation.

One place for the rules every path that takes an image file or encoded
bytes applies (alm-convert's checks, alm-predict's images and frames, the
Python predictors, the SavedModel signatures through
`alm_tf.preprocessing.pixels.decode_image`):

- `FORMATS` / `EXTENSIONS`: JPEG, PNG, BMP, GIF (first frame) and WebP.
  TensorFlow's `decode_image` reads all five, so a file alm-convert takes
  is one alm-predict and the serving signatures take.
- `DEFAULT_MAX_IMAGE_PIXELS`: an image whose header claims more pixels
  (width x height) is refused before any decoding, so a small file that
  decodes to gigabytes cannot take a process or a server down. The Python
  paths read the size with Pillow (which only parses the header on open);
  the TensorFlow graph reads it from the header bytes (`header_size`).
- `EXIF_ORIENTATIONS`: `ignore` (the default, as the official PIL
  pipeline: pixels as stored) or `apply` (a JPEG's EXIF Orientation tag
  rotates / flips the decoded pixels, as phone cameras intend). Only
  JPEG's EXIF is read, in Python and in the graph alike, so both agree.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps

#: The image formats accepted everywhere (Pillow's names).
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
#: The formats in words, for messages.
FORMATS_TEXT = "JPEG, PNG, BMP, GIF or WebP"
#: File name extensions of those formats (a folder's images are these files).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
#: The default limit on width x height of one image (40 megapixels).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
#: What --exif_orientation takes; the first is the default.
EXIF_ORIENTATIONS = ("ignore", "apply")
DEFAULT_EXIF_ORIENTATION = EXIF_ORIENTATIONS[0]
#: The flag names, as binaries and error messages spell them.
MAX_PIXELS_FLAG = "max_image_pixels"
EXIF_FLAG = "exif_orientation"

__all__ = [
    "DEFAULT_EXIF_ORIENTATION",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "EXIF_ORIENTATIONS",
    "EXTENSIONS",
    "FORMATS",
    "ImageTooLarge",
    "check_exif_orientation",
    "check_max_pixels",
    "open_image",
    "too_large_message",
]


class ImageTooLarge(ValueError):
    """The header of an image claims more pixels than the limit."""


def too_large_message(pixels: int | str, max_pixels: int, size: str = "") -> str:
    """The one wording of a refused size, in Python and in the graph."""
    shown = f"{size} = " if size else ""
    return f"image of {shown}{pixels} pixels exceeds --{MAX_PIXELS_FLAG}={max_pixels}"


def check_max_pixels(value) -> int:
    """A valid limit (an int >= 1) or a ValueError naming the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{MAX_PIXELS_FLAG} must be a positive integer. Received: {value!r}")
    return value


def check_exif_orientation(value) -> str:
    """A valid --exif_orientation choice or a ValueError naming the value."""
    if value not in EXIF_ORIENTATIONS:
        raise ValueError(f"--{EXIF_FLAG} must be one of {', '.join(EXIF_ORIENTATIONS)}. "
                         f"Received: {value!r}")
    return value


_ORIENTATION_TAG = 0x0112
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """Opens encoded bytes with Pillow, checking the header's size before any decoding.

    The image is not decoded yet (Pillow decodes on `load()` / `convert()`).
    Pillow's own decompression-bomb check (an error above twice its
    MAX_IMAGE_PIXELS, which no limit here can lift) is reported the same way.

    Raises:
        ImageTooLarge: width x height exceeds `max_pixels`.
        OSError / ValueError (PIL.UnidentifiedImageError among them): not an image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        found = _BOMB_PIXELS.search(str(e))
        raise ImageTooLarge(too_large_message(int(found.group(1)) if found else -1, max_pixels)) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(too_large_message(width * height, max_pixels, f"{width}x{height}"))
    return image


def oriented_size(image: Image.Image, exif_orientation: str) -> tuple[int, int]:
    """(width, height) of `oriented(image, ...)` without decoding the pixels."""
    width, height = image.size
    if (exif_orientation == "apply" and image.format == "JPEG"
            and image.getexif().get(_ORIENTATION_TAG) in (5, 6, 7, 8)):  # transposed
        return height, width
    return width, height


def oriented(image: Image.Image, exif_orientation: str) -> Image.Image:
    """`image` turned as its EXIF Orientation says when `apply` and a JPEG; else itself."""
    if exif_orientation == "apply" and image.format == "JPEG":
        return ImageOps.exif_transpose(image)
    return image
