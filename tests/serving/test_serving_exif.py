"""--exif_orientation: stored in the model's config, the same in the
training pipeline, the loaded model, the SavedModel signatures and the
pictures; `ignore` (the default) keeps the pixels as stored."""

import csv
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from alm_tf import artifacts
from alm_tf.config import ModelConfig
from alm_tf.data import make_dataset
from alm_tf.data.convert import convert
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.inference import images as prediction
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.serving import export
from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main

ORIENTATION = 6  # a phone held upright: the stored pixels are turned 90 degrees


def _exif_jpeg(pixels):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = ORIENTATION
    Image.fromarray(pixels).save(buffer, "JPEG", quality=100, exif=exif.tobytes())
    return buffer.getvalue()


def _turned(data):
    """Pillow's turn of TensorFlow's decode of `data` (the decoders differ by a few levels)."""
    image = Image.fromarray(preprocessing.decode_image(data).numpy())
    image.getexif()[0x0112] = ORIENTATION
    return np.asarray(ImageOps.exif_transpose(image))


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """(model dir, SavedModel) of the mini ALM model trained with --exif_orientation=apply."""
    root = tmp_path_factory.mktemp("exif")
    model_dir = str(root / "alm")
    ph.write_model_dir(model_dir, exif_orientation="apply")
    saved = export.export_saved_model(export.load_source(model_dir), str(root / "export"), 1)
    return model_dir, saved


def test_config_validates_and_defaults():
    assert ModelConfig().exif_orientation == image_input.DEFAULT_EXIF_ORIENTATION == "ignore"
    with pytest.raises(ValueError, match="exif_orientation must be one of"):
        ModelConfig(exif_orientation="rotate")
    old = ModelConfig().to_dict()
    del old["exif_orientation"]  # a config written before the choice existed
    assert ModelConfig.from_dict(old).exif_orientation == "ignore"


def test_every_path_of_an_apply_model_turns_the_pixels(applied):
    model_dir, saved = applied
    pixels = ph.images(1, image_size=(40, 24), seed=7)[0].astype(np.uint8)
    data = _exif_jpeg(pixels)
    turned = _turned(data)
    assert turned.shape == (24, 40, 3)
    height, width = ph.IMAGE_SIZE
    expected_input = preprocessing.resize_images(turned, height, width)[None]
    for source in (model_dir, saved):
        loaded = artifacts.load(source)
        assert loaded.exif_orientation == "apply"
        assert loaded.preprocessing[image_input.EXIF_FLAG] == "apply"
        expected = loaded.predict(expected_input)["probabilities"]
        np.testing.assert_allclose(loaded.predict_encoded([data])["probabilities"], expected, atol=1e-5)
    handle = tf.saved_model.load(saved)
    assert handle.signatures["metadata"]()[image_input.EXIF_FLAG].numpy() == b"apply"
    # predict_boxes crops the turned frame: a full-frame box is the whole turned picture.
    out = handle.signatures[artifacts.BOXES_SIGNATURE](
        image_bytes=tf.constant([data]), boxes=tf.constant([[0.0, 0.0, 1.0, 1.0]]),
        box_indices=tf.constant([0]))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)


def test_an_ignore_model_keeps_the_stored_pixels(saved):
    pixels = ph.images(1, image_size=(40, 24), seed=7)[0].astype(np.uint8)
    data = _exif_jpeg(pixels)
    assert saved.exif_orientation == "ignore"
    height, width = saved.image_size
    stored = preprocessing.resize_images(preprocessing.decode_image(data), height, width)[None]
    np.testing.assert_allclose(saved.predict_encoded([data])["probabilities"],
                               saved.predict(stored)["probabilities"], atol=1e-5)


def test_training_pipeline_turns_the_records(tmp_path):
    pixels = ph.images(1, image_size=(40, 24), seed=8)[0].astype(np.uint8)
    data = _exif_jpeg(pixels)
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "ann.csv").write_text("image,split,x\na.jpg,train,1\n")
    out = str(tmp_path / "records")
    convert(ConvertConfig(format="csv", annotations=str(tmp_path / "ann.csv"), images_dir=str(tmp_path),
                          output_dir=out, show_progress=False))
    for choice, expected in (("ignore", preprocessing.decode_image(data).numpy()), ("apply", _turned(data))):
        images, _ = next(iter(make_dataset(out, "train", batch_size=1, image_size=(24, 40), normalize=False,
                                           exif_orientation=choice)))
        np.testing.assert_allclose(images[0].numpy(), preprocessing.resize_images(expected, 24, 40).numpy(),
                                   atol=1e-3)


def test_pictures_show_what_the_model_saw(applied, tmp_path):
    path = tmp_path / "upright.jpg"
    path.write_bytes(_exif_jpeg(ph.images(1, image_size=(40, 24), seed=7)[0].astype(np.uint8)))
    predictor = prediction.load_image_predictor(applied[0])
    assert predictor.exif_orientation == "apply"
    for choice, size in (("apply", (40, 24)), ("ignore", (24, 40))):  # PIL sizes are (width, height)
        _, image, reason = prediction._read_checked(str(path), image_input.DEFAULT_MAX_IMAGE_PIXELS, choice)
        assert reason == "" and image.size == size


def test_frames_boxes_refer_to_the_turned_pixels(applied, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "a.jpg").write_bytes(_exif_jpeg(ph.images(1, image_size=(40, 24), seed=7)[0].astype(np.uint8)))
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x1,y1,x2,y2\na.jpg,0,0,40,24\n")  # the whole turned frame: 40 wide
    code, _, stderr = run_main("pipelines.predict", [
        f"--model={applied[0]}", f"--images={frames}", f"--boxes={boxes}", f"--output_dir={tmp_path / 'v'}",
        "--noprogress"])
    assert code == 0, stderr
    with open(tmp_path / "v" / "boxes.csv") as f:
        row = next(csv.DictReader(f))
    assert (row["x2"], row["y2"], row["clipped"]) == ("40", "24", "0")
