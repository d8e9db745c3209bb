"""Clients for an ALM model under TF Serving: REST (JSON) and gRPC.

  from alm_tf.serving import client
  images = [open(p, "rb").read() for p in paths]
  names = client.read_attributes("exported/alm/1")       # or fetch_metadata_grpc
  preds = client.predict_rest(images, names, url="http://localhost:8501")
  preds = client.predict_grpc(images, target="localhost:8500")
  preds[0].probabilities["Female"], preds[0].boxes  # (L, M, 4) or None

REST sends `{"signature_name": ..., "instances": [{"b64": ...}, ...]}`:
TF Serving decodes a `{"b64": "..."}` object into the bytes of any
DT_STRING input (the `_bytes` suffix of `image_bytes` only decides that
string *outputs* are written back as b64; ours are all numbers). The REST
API cannot call the input-less `metadata` signature (TF Serving refuses a
signature without inputs), and with `--enable_batching` the batcher refuses
input-less runs over gRPC too; so callers of a batching server pass the
attribute names (`read_attributes` on the exported version).
REST uses the standard library (urllib); gRPC uses `grpc` and the
`tensorflow_serving.apis` stubs of tensorflow-serving-api.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import urllib.error
import urllib.request
from typing import Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from alm_tf import artifacts

DEFAULT_MODEL_NAME = "alm"
OUTPUT_KEYS = ("probabilities", "labels", "boxes")


class ServingError(RuntimeError):
    """The server refused a request (bad input, unknown model, ...)."""


@dataclasses.dataclass
class Prediction:
    """One image's result.

    probabilities: attribute name -> probability.
    labels: attribute name -> 0/1 after the model's thresholds.
    boxes: float32 (L, M, 4) [y1, x1, y2, x2] in normalized image
        coordinates, level by level; None for a baseline model.
    """

    probabilities: dict[str, float]
    labels: dict[str, int]
    boxes: Optional[np.ndarray] = None


def read_attributes(saved_model_dir: str) -> list[str]:
    """Attribute names from a SavedModel's assets/attributes.txt."""
    return artifacts.read_attributes_file(
        os.path.join(saved_model_dir, "assets", artifacts.ATTRIBUTES_ASSET))


def to_predictions(outputs: dict, attributes: Sequence[str]) -> list[Prediction]:
    """Per-image Predictions from batched `probabilities`, `labels`, `boxes`."""
    probabilities = np.asarray(outputs["probabilities"], np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(attributes):
        raise ServingError(f"expected probabilities of shape (N, {len(attributes)}), "
                           f"got {probabilities.shape}")
    labels = np.asarray(outputs["labels"], np.int64)
    boxes = outputs.get("boxes")
    boxes = None if boxes is None else np.asarray(boxes, np.float32)
    result = []
    for n in range(probabilities.shape[0]):
        result.append(Prediction(
            {a: float(p) for a, p in zip(attributes, probabilities[n])},
            {a: int(v) for a, v in zip(attributes, labels[n])},
            None if boxes is None else boxes[n]))
    return result


# ----------------------------------------------------------------------- REST


def rest_url(url: str, model_name: str = DEFAULT_MODEL_NAME, version: Optional[int] = None) -> str:
    """`<url>/v1/models/<name>[/versions/<v>]:predict`."""
    path = f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version else "")
    return url.rstrip("/") + path + ":predict"


def rest_request(images: Sequence[bytes], signature_name: str = "serving_default") -> dict:
    """The JSON body of a row-format predict request on encoded images."""
    return {"signature_name": signature_name,
            "instances": [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in images]}


def rest_outputs(body: dict) -> dict:
    """Batched arrays from a REST predict answer (row or columnar format)."""
    if "outputs" in body:
        outputs = body["outputs"]
        return outputs if isinstance(outputs, dict) else {"probabilities": outputs}
    rows = body.get("predictions")
    if rows is None:
        raise ServingError(f"answer has neither 'predictions' nor 'outputs': {sorted(body)}")
    if rows and not isinstance(rows[0], dict):  # a single output comes unnamed
        return {"probabilities": rows}
    return {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}


def predict_rest(images: Sequence[bytes], attributes: Sequence[str], *,
                 url: str = "http://localhost:8501", model_name: str = DEFAULT_MODEL_NAME,
                 version: Optional[int] = None, signature_name: str = "serving_default",
                 timeout: float = 30.0) -> list[Prediction]:
    """Predicts encoded images (JPEG/PNG bytes) through the REST API.

    Raises:
        ServingError: the server answered with an error (its message).
    """
    if not images:
        return []
    data = json.dumps(rest_request(images, signature_name)).encode("utf-8")
    request = urllib.request.Request(rest_url(url, model_name, version), data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        raise ServingError(f"HTTP {e.code}: {text}") from None
    return to_predictions(rest_outputs(body), attributes)


# ----------------------------------------------------------------------- gRPC


def grpc_request(images: Sequence[bytes], model_name: str = DEFAULT_MODEL_NAME,
                 version: Optional[int] = None, signature_name: str = "serving_default"):
    """A PredictRequest with `image_bytes` (tf.string [N])."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version:
        request.model_spec.version.value = int(version)
    if signature_name != "metadata":
        request.inputs["image_bytes"].CopyFrom(
            tf.make_tensor_proto([bytes(b) for b in images], dtype=tf.string, shape=[len(images)]))
    return request


def _stub(target: str, channel=None):
    channel = channel or grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 << 20),
                         ("grpc.max_send_message_length", 64 << 20)])
    return prediction_service_pb2_grpc.PredictionServiceStub(channel), channel


def _call(stub, request, timeout):
    try:
        response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as e:
        raise ServingError(f"gRPC {e.code().name}: {e.details()}") from None
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def fetch_metadata_grpc(*, target: str = "localhost:8500", model_name: str = DEFAULT_MODEL_NAME,
                        version: Optional[int] = None, timeout: float = 30.0,
                        channel=None) -> dict:
    """The `metadata` signature: attributes (list of str), thresholds, sizes, versions."""
    stub, _ = _stub(target, channel)
    values = _call(stub, grpc_request([], model_name, version, "metadata"), timeout)
    result = {}
    for key, value in values.items():
        if value.dtype == object:
            value = ([v.decode("utf-8") for v in value.tolist()] if value.ndim
                     else value.item().decode("utf-8"))
        elif value.ndim == 0:
            value = value.item()
        result[key] = value
    return result


def predict_grpc(images: Sequence[bytes], attributes: Optional[Sequence[str]] = None, *,
                 target: str = "localhost:8500", model_name: str = DEFAULT_MODEL_NAME,
                 version: Optional[int] = None, timeout: float = 30.0,
                 channel=None) -> list[Prediction]:
    """Predicts encoded images through gRPC `PredictionService.Predict`.

    `attributes` default: the names from the model's `metadata` signature
    (not callable on a server started with --enable_batching).

    Raises:
        ServingError: the server answered with an error (code and message).
    """
    if not images:
        return []
    stub, channel = _stub(target, channel)
    if attributes is None:
        attributes = fetch_metadata_grpc(model_name=model_name, version=version,
                                         timeout=timeout, channel=channel)["attributes"]
    outputs = _call(stub, grpc_request(images, model_name, version), timeout)
    return to_predictions(outputs, attributes)
