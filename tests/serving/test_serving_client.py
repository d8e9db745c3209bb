"""Contract tests: the REST and gRPC clients against small in-test servers
that follow TF Serving's API and answer from the exported SavedModel (TF
Serving itself cannot run here)."""

import base64
import json
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tests.serving import serving_helpers as sh
from alm_tf.serving import client


def _direct(loaded, encoded):
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    return {k: v.numpy() for k, v in out.items()}


def _check(predictions, expected):
    assert len(predictions) == len(expected["probabilities"])
    for n, pred in enumerate(predictions):
        assert list(pred.probabilities) == sh.ATTRIBUTES
        np.testing.assert_allclose(list(pred.probabilities.values()),
                                   expected["probabilities"][n], atol=1e-6)
        assert list(pred.labels.values()) == expected["labels"][n].tolist()
        assert pred.boxes.shape == (3, len(sh.ATTRIBUTES), 4)
        np.testing.assert_allclose(pred.boxes, expected["boxes"][n], atol=1e-6)


@pytest.fixture(scope="module")
def encoded():
    pictures = sh.images(3)
    return [sh.encode(pictures[0]), sh.encode(pictures[1], "jpeg"), sh.encode(pictures[2])]


def test_read_attributes(exported):
    assert client.read_attributes(exported.saved_model) == sh.ATTRIBUTES


def test_rest_round_trip(loaded, exported, encoded):
    with sh.RestServer(loaded) as server:
        names = client.read_attributes(exported.saved_model)
        predictions = client.predict_rest(encoded, names, url=server.url)
        body = server.requests[-1]
        assert body["instances"][0] == {"b64": base64.b64encode(encoded[0]).decode()}
        versioned = client.predict_rest(encoded[:1], names, url=server.url, version=1)
    _check(predictions, _direct(loaded, encoded))
    _check(versioned, _direct(loaded, encoded[:1]))


def test_rest_curl_style_body(loaded, encoded):
    """The README's curl body: no signature_name, instances of b64 objects."""
    with sh.RestServer(loaded) as server:
        data = json.dumps({"instances": [{"b64": base64.b64encode(encoded[0]).decode()}]})
        request = urllib.request.Request(server.url + "/v1/models/alm:predict", data=data.encode())
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.loads(answer.read())
    (row,) = body["predictions"]
    assert set(row) == {"probabilities", "labels", "boxes"}
    np.testing.assert_allclose(row["probabilities"], _direct(loaded, encoded[:1])["probabilities"][0],
                               atol=1e-6)


def test_rest_bad_image_is_400(loaded):
    with sh.RestServer(loaded) as server:
        with pytest.raises(client.ServingError, match="(?s)HTTP 400: .*Unknown image file format"):
            client.predict_rest([b"not an image"], sh.ATTRIBUTES, url=server.url)
        with pytest.raises(client.ServingError, match="(?s)HTTP 400: .*empty image bytes"):
            client.predict_rest([b""], sh.ATTRIBUTES, url=server.url)
        with pytest.raises(client.ServingError, match="HTTP 404"):
            client.predict_rest([b"x"], sh.ATTRIBUTES, url=server.url, model_name="other")


def test_grpc_round_trip(loaded, encoded):
    with sh.GrpcServer(loaded) as server:
        meta = client.fetch_metadata_grpc(target=server.target)
        predictions = client.predict_grpc(encoded, target=server.target)  # names from metadata
        request = server.requests[-1]
    assert meta["attributes"] == sh.ATTRIBUTES
    np.testing.assert_allclose(meta["thresholds"], sh.THRESHOLDS)
    assert (meta["image_height"], meta["image_width"]) == sh.INPUT_SHAPE[:2]
    assert request.model_spec.name == "alm"
    assert request.model_spec.signature_name == "serving_default"
    assert request.inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    _check(predictions, _direct(loaded, encoded))


def test_grpc_bad_image_is_invalid_argument(loaded):
    with sh.GrpcServer(loaded) as server:
        with pytest.raises(client.ServingError, match="(?s)INVALID_ARGUMENT: .*Unknown image file format"):
            client.predict_grpc([b"not an image"], sh.ATTRIBUTES, target=server.target)
        with pytest.raises(client.ServingError, match="(?s)INVALID_ARGUMENT: .*empty image bytes"):
            client.predict_grpc([b""], sh.ATTRIBUTES, target=server.target)


def test_rest_outputs_formats():
    rows = {"predictions": [{"probabilities": [0.1], "labels": [0]},
                            {"probabilities": [0.9], "labels": [1]}]}
    assert client.rest_outputs(rows) == {"probabilities": [[0.1], [0.9]], "labels": [[0], [1]]}
    columns = {"outputs": {"probabilities": [[0.1]], "labels": [[0]]}}
    assert client.rest_outputs(columns) == columns["outputs"]
    preds = client.to_predictions(client.rest_outputs(rows), ["x"])
    assert preds[1].probabilities == {"x": pytest.approx(0.9)} and preds[1].labels == {"x": 1}
    assert preds[1].boxes is None
    assert client.predict_rest([], ["x"]) == [] and client.predict_grpc([], ["x"]) == []


def test_grpc_against_batching_server(loaded, exported, encoded):
    """A batching TF Serving refuses the input-less metadata run: pass the names."""
    with sh.GrpcServer(loaded, batching=True) as server:
        with pytest.raises(client.ServingError, match="at least one input tensor"):
            client.predict_grpc(encoded, target=server.target)
        names = client.read_attributes(exported.saved_model)
        predictions = client.predict_grpc(encoded, names, target=server.target)
    _check(predictions, _direct(loaded, encoded))
