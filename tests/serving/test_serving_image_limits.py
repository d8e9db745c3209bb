"""The SavedModel refuses images whose header claims more than its limit,
before decoding, in every signature taking encoded bytes; the limit is in
its metadata; WebP is served; the loader keeps the export's limit."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alm_tf import artifacts
from alm_tf.preprocessing import image_input
from tests import image_bombs
from tests.cli_helpers import run_main
from tests.serving import serving_helpers as sh

LIMIT = image_input.DEFAULT_MAX_IMAGE_PIXELS


def _example(encoded):
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))
    })).SerializeToString()


def _calls(loaded, encoded):
    good = sh.encode(sh.images(1)[0])
    return {
        "serving_default": lambda: loaded.signatures["serving_default"](
            image_bytes=tf.constant([good, encoded])),
        "predict_examples": lambda: loaded.signatures["predict_examples"](
            examples=tf.constant([_example(encoded)])),
        artifacts.BOXES_SIGNATURE: lambda: loaded.signatures[artifacts.BOXES_SIGNATURE](
            image_bytes=tf.constant([encoded]), boxes=tf.constant([[0.1, 0.1, 0.9, 0.9]]),
            box_indices=tf.constant([0])),
    }


@pytest.mark.parametrize("kind", sorted(image_bombs.BOMBS))
def test_every_bytes_signature_refuses_a_bomb(loaded, kind):
    encoded = image_bombs.BOMBS[kind](12000, 9000)
    for name, call in _calls(loaded, encoded).items():
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            call()
        assert (f"image of 12000x9000 = 108000000 pixels exceeds --max_image_pixels={LIMIT}"
                in info.value.message), name


def test_limit_is_in_the_metadata_and_the_loader(loaded, saved):
    meta = loaded.signatures["metadata"]()
    assert int(meta[image_input.MAX_PIXELS_FLAG]) == LIMIT
    assert saved.max_image_pixels == LIMIT


def test_webp_is_served(exported, loaded):
    picture = sh.images(1, seed=4)[0].astype(np.uint8)

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "WEBP", lossless=True)
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([buffer.getvalue()]))
    expected = sh.reference(exported.model, [picture])
    np.testing.assert_allclose(out["probabilities"].numpy(), expected["probabilities"], atol=1e-5)


def test_loaded_keras_model_checks_its_limit(exported):
    model = artifacts.load(exported.model_dir)
    bomb = image_bombs.png_bomb(9000, 9000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds --max_image_pixels=40000000"):
        model.predict_encoded([bomb])
    model.max_image_pixels = 50
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds --max_image_pixels=50"):
        model.predict_encoded([sh.encode(sh.images(1)[0])])


def test_alm_export_records_its_limit(exported, tmp_path):
    code, _, stderr = run_main("pipelines.export", [
        f"--model_dir={exported.model_dir}", f"--export_dir={tmp_path / 'e'}", "--max_image_pixels=5000"])
    assert code == 0, stderr
    loaded = tf.saved_model.load(str(tmp_path / "e" / "1"))
    assert int(loaded.signatures["metadata"]()[image_input.MAX_PIXELS_FLAG]) == 5000
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds --max_image_pixels=5000"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([image_bombs.png_bomb(100, 100)]))
