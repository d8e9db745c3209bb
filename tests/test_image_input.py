"""Image input rules (alm_tf.preprocessing.image_input, image_header): header sizes
before decoding, the size limit in Python and in the graph, WebP, EXIF
orientation read in the graph as Pillow reads it."""

import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from tests import image_bombs
from alm_tf.preprocessing import image_header
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

_PIXELS = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)


def _encoded(fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(_PIXELS).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt,kwargs", [
    ("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True}),
    ("WEBP", {"quality": 50}), ("WEBP", {"exif": b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0\0\0"}),
])
def test_header_size_of_every_format(fmt, kwargs):
    assert image_header.header_size(_encoded(fmt, **kwargs)).numpy().tolist() == [5, 7]


def test_unknown_bytes_have_no_size_and_fail_in_the_decoder():
    assert image_header.header_size(b"no image").numpy().tolist() == [0, 0]
    assert image_header.header_size(b"").numpy().tolist() == [0, 0]
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.decode_image(b"no image")


@pytest.mark.parametrize("kind", sorted(image_bombs.BOMBS))
def test_bombs_are_refused_from_the_header(kind):
    data = image_bombs.BOMBS[kind](12000, 9000)
    assert image_header.header_size(data).numpy().tolist() == [9000, 12000]
    with pytest.raises(image_input.ImageTooLarge, match=r"12000x9000 = 108000000 pixels exceeds "
                                                         r"--max_image_pixels=40000000"):
        image_input.open_image(data)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image of 12000x9000 = 108000000 pixels exceeds --max_image_pixels=40000000"):
        preprocessing.decode_image(data)
    # Inside a graph as well (the serving signatures' case).
    decode = tf.function(lambda e: preprocessing.decode_image(e, 1000),
                         input_signature=[tf.TensorSpec([], tf.string)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds --max_image_pixels=1000"):
        decode(tf.constant(data))


def test_pillow_bomb_error_is_the_same_refusal():
    # Above twice Pillow's MAX_IMAGE_PIXELS Pillow itself raises on open.
    with pytest.raises(image_input.ImageTooLarge, match="400000000 pixels exceeds"):
        image_input.open_image(image_bombs.jpeg_bomb(20000, 20000))


def test_the_limit_is_inclusive_and_checked():
    data = _encoded("PNG")
    assert image_input.open_image(data, 35).size == (7, 5)
    assert preprocessing.decode_image(data, 35).shape == (5, 7, 3)
    with pytest.raises(image_input.ImageTooLarge):
        image_input.open_image(data, 34)
    for bad in (0, -1, 2.5, True, "40"):
        with pytest.raises(ValueError, match="--max_image_pixels must be a positive integer"):
            image_input.check_max_pixels(bad)
    with pytest.raises(ValueError, match="--exif_orientation must be one of ignore, apply"):
        image_input.check_exif_orientation("rotate")


def test_webp_decodes_in_the_graph_as_in_pillow():
    data = _encoded("WEBP", lossless=True)
    assert np.array_equal(preprocessing.decode_image(data).numpy(), _PIXELS)
    assert ".webp" in image_input.EXTENSIONS and "WEBP" in image_input.FORMATS


def _jpeg_with_orientation(orientation, big_endian):
    """A JPEG with an APP1 Exif block holding only the Orientation tag."""
    order = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8)
    tiff += struct.pack(order + "H", 2)  # two entries: another tag first
    tiff += struct.pack(order + "HHI", 0x010F, 2, 4) + b"ab\0\0"
    tiff += struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    jpeg = _encoded("JPEG", quality=100)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("big_endian", [False, True])
def test_exif_orientation_in_the_graph_is_pillows(orientation, big_endian):
    data = _jpeg_with_orientation(orientation, big_endian)
    assert int(image_header.exif_orientation(data)) == orientation
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif().get(0x0112) == orientation
        # Pillow's turn applied to TF's own decode (the JPEG decoders differ by a few levels).
        stored = preprocessing.decode_image(data).numpy()
        expected = np.asarray(_with_exif(stored, im.getexif()))
    got = preprocessing.decode_image(data, exif_orientation="apply").numpy()
    assert np.array_equal(got, expected)
    assert np.array_equal(preprocessing.decode_image(data).numpy(), stored)  # ignore: as stored


def _with_exif(pixels, exif):
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = exif.get(0x0112)
    return ImageOps.exif_transpose(image)


@pytest.mark.parametrize("data", [b"\xff\xd8Exif\0\0", b"\xff\xd8\xff\xe1\0\x10Exif\0\0XX", b"",
                                  _encoded("PNG"), _encoded("JPEG")])
def test_exif_orientation_defaults_to_one(data):
    assert int(image_header.exif_orientation(data)) == 1
