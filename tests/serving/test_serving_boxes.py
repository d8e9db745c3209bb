"""predict_boxes (frames + person boxes) and the groups inside the export."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import prediction_log_pb2

from alm_tf import artifacts
from alm_tf.preprocessing import crops as people
from alm_tf.serving import export
from tests.serving import serving_helpers as sh

M = len(sh.ATTRIBUTES)


def _run(signature, **inputs):
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@pytest.fixture(scope="module")
def scene():
    """Two frames of different sizes and boxes: inside, whole frame, reaching outside, tiny."""
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, (120, 90, 3), dtype=np.uint8),
              rng.integers(0, 256, (70, 140, 3), dtype=np.uint8)]
    boxes = np.array([[0.1, 0.2, 0.8, 0.7], [0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.9, 0.95],
                      [-0.1, 0.3, 0.5, 1.2], [0.4, 0.4, 0.45, 0.43]], np.float32)
    indices = np.array([0, 1, 1, 0, 0], np.int32)
    return frames, [sh.encode(f) for f in frames], boxes, indices


def test_predict_boxes_equals_pillow_crop_then_predict_images(loaded, scene):
    frames, encoded, boxes, indices = scene
    out = _run(loaded.signatures["predict_boxes"], image_bytes=np.array(encoded, object), boxes=boxes,
               box_indices=indices)
    assert out["probabilities"].shape == (5, M) and out["boxes"].shape == (5, 3, M, 4)
    for k, (box, index) in enumerate(zip(boxes, indices)):
        frame = frames[index]
        top, left, bottom, right = people.pixel_boxes(box[None], *frame.shape[:2])[0]
        crop = np.asarray(Image.fromarray(frame).crop((left, top, right, bottom)), np.float32)
        expected = _run(loaded.signatures["predict_images"], images=crop[None])
        np.testing.assert_allclose(out["probabilities"][k], expected["probabilities"][0], atol=1e-6)
        np.testing.assert_array_equal(out["labels"][k], expected["labels"][0])
        np.testing.assert_allclose(out["boxes"][k], expected["boxes"][0], atol=1e-6)


def test_row_layout_equals_frames_layout(loaded, scene):
    """The batching layout (a frame per box, index -1) answers the same."""
    _, encoded, boxes, indices = scene
    frames_layout = _run(loaded.signatures["predict_boxes"], image_bytes=np.array(encoded, object),
                         boxes=boxes, box_indices=indices)
    rows = _run(loaded.signatures["predict_boxes"], image_bytes=np.array([encoded[i] for i in indices], object),
                boxes=boxes, box_indices=np.full(len(boxes), -1, np.int32))
    for key in frames_layout:
        np.testing.assert_array_equal(rows[key], frames_layout[key])


def test_no_boxes_gives_empty_outputs(loaded, scene):
    out = _run(loaded.signatures["predict_boxes"], image_bytes=np.array(scene[1], object),
               boxes=np.zeros((0, 4), np.float32), box_indices=np.zeros((0,), np.int32))
    assert out["probabilities"].shape == (0, M) and out["boxes"].shape == (0, 3, M, 4)


@pytest.mark.parametrize("boxes,indices,needle", [
    ([[0.5, 0.5, 0.5, 0.9]], [0], "a box is empty inside its frame"),
    ([[1.2, 0.0, 1.5, 1.0]], [0], "a box is empty inside its frame"),
    ([[0.1, 0.1, 0.9, 0.9]], [2], "names a frame that is not in image_bytes"),
    ([[0.1, 0.1, 0.9, 0.9]] * 3, [-1, -1, -1], "names a frame that is not in image_bytes"),
    ([[0.1, 0.1, 0.9, 0.9]], [0, 1], "boxes and box_indices must have the same length"),
    ([[float("nan"), 0.1, 0.9, 0.9]], [0], "boxes must be finite"),
])
def test_bad_boxes_are_invalid_argument(loaded, scene, boxes, indices, needle):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _run(loaded.signatures["predict_boxes"], image_bytes=np.array(scene[1], object),
             boxes=np.asarray(boxes, np.float32), box_indices=np.asarray(indices, np.int32))
    assert needle in info.value.message


def test_loaded_model_predict_boxes_every_path(exported, saved, scene):
    """LoadedModel.predict_boxes: a SavedModel's signature on bytes, its
    predict_images on decoded frames, a Keras model on bytes."""
    frames, encoded, boxes, indices = scene
    assert saved.boxes_signature is not None
    reference = saved.predict_boxes(encoded, boxes, indices)
    keras_model = artifacts.from_keras_model(exported.model, sh.ATTRIBUTES, sh.THRESHOLDS)
    for got in (saved.predict_boxes(frames, boxes, indices),
                keras_model.predict_boxes(encoded, boxes, indices)):
        np.testing.assert_allclose(got["probabilities"], reference["probabilities"], atol=1e-5)
        np.testing.assert_array_equal(got["labels"], reference["labels"])
    empty = saved.predict_boxes(encoded, np.zeros((0, 4)), [])
    assert empty["probabilities"].shape == (0, M)


def test_groups_ship_inside_the_export(exported, loaded, saved):
    with open(os.path.join(exported.saved_model, "assets", artifacts.GROUPS_ASSET)) as f:
        asset = json.load(f)
    meta = json.loads(loaded.signatures["metadata"]()["groups"].numpy().decode())
    assert asset == meta and asset["source"] == "declared"
    assert [x["name"] for x in asset["groups"]] == ["head", "gender"] and asset["ungrouped"] == ["backpack"]
    assert asset["attributes"] == sh.ATTRIBUTES and set(asset["rules"]) == {"exclusive", "binary", "multi",
                                                                           "ungrouped"}
    # the model dir's config.json declared them; the loader reads them back from the export
    assert saved.groups.csv_columns == ("head", "gender") and saved.groups.description() == asset


def test_warmup_has_predict_boxes_in_the_row_layout(exported):
    sizes = []
    for record in tf.data.TFRecordDataset(os.path.join(exported.saved_model, export.WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        if request.model_spec.signature_name == "predict_boxes":
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            assert {len(v) for v in inputs.values()} == {len(inputs["boxes"])}  # batchable
            assert (inputs["box_indices"] == -1).all()
            sizes.append(len(inputs["boxes"]))
    assert sizes == list(export.WARMUP_BATCH_SIZES)
