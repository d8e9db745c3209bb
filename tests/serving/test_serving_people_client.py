"""The client on people in frames (predict_boxes over REST columnar and gRPC),
per-request thresholds and readable answers (contract tests against the
in-test servers of serving_helpers)."""

import numpy as np
import pytest
import tensorflow as tf

from tests.serving import serving_helpers as sh
from alm_tf import groups as groups_lib
from alm_tf.serving import client


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(4)
    arrays = [rng.integers(0, 256, (96, 80, 3), dtype=np.uint8), rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)]
    boxes = np.array([[0.1, 0.1, 0.9, 0.6], [0.2, 0.3, 0.95, 0.7], [0.0, 0.5, 1.0, 1.0]], np.float32)
    return [sh.encode(a) for a in arrays], boxes, np.array([0, 1, 0], np.int32)


def _direct(loaded, encoded, boxes, indices):
    out = loaded.signatures["predict_boxes"](image_bytes=tf.constant(encoded), boxes=tf.constant(boxes),
                                             box_indices=tf.constant(indices))
    return {k: v.numpy() for k, v in out.items()}


def test_rest_columnar_both_layouts_and_chunks(loaded, exported, frames):
    encoded, boxes, indices = frames
    expected = _direct(loaded, encoded, boxes, indices)
    groups = client.read_groups(exported.saved_model)
    with sh.RestServer(loaded) as server:
        by_layout = {layout: client.predict_boxes_rest(encoded, boxes, indices, sh.ATTRIBUTES, url=server.url,
                                                       layout=layout, groups=groups)
                     for layout in client.BOX_LAYOUTS}
        body = server.requests[-1]  # the `frames` layout: each frame once
        chunked = client.predict_boxes_rest(encoded, boxes, indices, sh.ATTRIBUTES, url=server.url,
                                            max_boxes_per_request=2, raw=True)
        assert len(server.requests) == 4
    assert body["signature_name"] == "predict_boxes" and set(body["inputs"]) == {"image_bytes", "boxes",
                                                                                "box_indices"}
    assert len(body["inputs"]["image_bytes"]) == 2 and body["inputs"]["box_indices"] == [0, 1, 0]
    for predictions in by_layout.values():
        assert len(predictions) == 3
        for k, pred in enumerate(predictions):
            np.testing.assert_allclose(list(pred.probabilities.values()), expected["probabilities"][k], atol=1e-6)
            assert list(pred.labels.values()) == expected["labels"][k].tolist()
            assert pred.answers == groups.answer(expected["probabilities"][k], expected["labels"][k])
    np.testing.assert_allclose(chunked["probabilities"], expected["probabilities"], atol=1e-6)


def test_grpc_batching_server_takes_the_row_layout_only(loaded, frames):
    encoded, boxes, indices = frames
    expected = _direct(loaded, encoded, boxes, indices)
    with sh.GrpcServer(loaded, batching=True) as server:
        rows = client.predict_boxes_grpc(encoded, boxes, indices, sh.ATTRIBUTES, target=server.target)
        request = server.requests[-1]
        with pytest.raises(client.ServingError, match="equal 0th-dimension size"):
            client.predict_boxes_grpc(encoded, boxes, indices, sh.ATTRIBUTES, target=server.target,
                                      layout="frames")
    assert {k: len(v.tensor_shape.dim) and v.tensor_shape.dim[0].size for k, v in request.inputs.items()} == \
        {"image_bytes": 3, "boxes": 3, "box_indices": 3}
    np.testing.assert_allclose([list(p.probabilities.values()) for p in rows], expected["probabilities"],
                               atol=1e-6)


@pytest.mark.parametrize("spec", [0.37, [0.9, 0.1, 0.5, 0.52], {"female": 0.2}])
def test_request_thresholds_equal_rethresholding(loaded, spec):
    encoded = [sh.encode(x) for x in sh.images(4, seed=9)]
    with sh.RestServer(loaded) as server:
        plain = client.predict_rest(encoded, sh.ATTRIBUTES, url=server.url)
        moved = client.predict_rest(encoded, sh.ATTRIBUTES, url=server.url, thresholds=spec)
    probs = np.array([list(p.probabilities.values()) for p in plain], np.float32)
    model_labels = np.array([list(p.labels.values()) for p in plain])
    cut = groups_lib.request_thresholds(spec, sh.ATTRIBUTES)
    expected = np.where(np.isnan(cut), model_labels, probs > np.nan_to_num(cut))
    np.testing.assert_array_equal([list(p.labels.values()) for p in moved], expected)
    assert [p.probabilities for p in moved] == [p.probabilities for p in plain]


def test_bad_request_thresholds_and_layout(frames):
    with pytest.raises(groups_lib.GroupsError, match="unknown attribute 'Hat'"):
        client.to_predictions({"probabilities": np.zeros((1, 4)), "labels": np.zeros((1, 4))}, sh.ATTRIBUTES,
                              thresholds={"Hat": 0.3})
    with pytest.raises(ValueError, match="layout must be one of rows, frames"):
        client.box_inputs(frames[0], frames[1], frames[2], layout="columns")
    with pytest.raises(ValueError, match="box index 5 names no frame"):
        client.box_inputs(frames[0], frames[1], [0, 5, 0])
