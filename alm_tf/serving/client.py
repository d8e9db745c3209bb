"""Clients for an ALM model under TF Serving: REST (JSON) and gRPC.

  from alm_tf.serving import client
  images = [open(p, "rb").read() for p in paths]
  names = client.read_attributes("exported/alm/1")       # or fetch_metadata_grpc
  preds = client.predict_rest(images, names, url="http://localhost:8501")
  preds = client.predict_grpc(images, target="localhost:8500")
  preds[0].probabilities["Female"], preds[0].boxes  # (L, M, 4) or None

  groups = client.read_groups("exported/alm/1")           # readable answers
  preds = client.predict_rest(images, names, url=..., groups=groups, thresholds=0.4)
  preds[0].answers   # {"gender": "female", "age": "18-60", ...}

  # people in frames: encoded frames + normalized [y1, x1, y2, x2] boxes
  preds = client.predict_boxes_grpc(frames, boxes, box_indices, names, groups=groups)

REST sends `{"signature_name": ..., "instances": [{"b64": ...}, ...]}`:
TF Serving decodes a `{"b64": "..."}` object into the bytes of any
DT_STRING input (the `_bytes` suffix of `image_bytes` only decides that
string *outputs* are written back as b64; ours are all numbers). The REST
API cannot call the input-less `metadata` signature (TF Serving refuses a
signature without inputs), and with `--enable_batching` the batcher refuses
input-less runs over gRPC too; so callers of a batching server pass the
attribute names (`read_attributes` on the exported version).

Per-request thresholds (`thresholds=`: one float, one per attribute, or a
name -> value map) relabel the returned probabilities on the client
(`alm_tf.groups.relabel`); `groups=` adds readable `answers`.

`predict_boxes_*` send frames + person boxes to the `predict_boxes`
signature. Layout `rows` (default) sends one frame entry per box
(repeated bytes, box index -1), the only layout a server with
--enable_batching accepts (every input's first dimension is the number of
boxes, so requests merge, split and pad by rows); layout `frames` sends
each frame once with the boxes' frame indices, for servers without
batching (savedmodel/README.md).
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

from alm_tf import artifacts, names
from alm_tf import groups as groups_lib
from alm_tf.artifacts import formats as F

OUTPUT_KEYS = F.ANSWER_KEYS
_BYTES, _BOXES, _INDICES = artifacts.IMAGE_BYTES_INPUT, artifacts.BOXES_INPUT, artifacts.BOX_INDICES_INPUT
#: Request layouts of predict_boxes (module docstring).
BOX_LAYOUTS = ("rows", "frames")
#: Seconds `check_server` waits for a server to answer.
CONNECT_TIMEOUT_S = 10.0
#: Boxes per predict_boxes request: the max_batch_size of
#: savedmodel/batching_parameters.txt (the batcher refuses bigger tasks).
MAX_BOXES_PER_REQUEST = 32


class ServingError(RuntimeError):
    """The server refused a request (bad input, unknown model, ...)."""


@dataclasses.dataclass
class Prediction:
    """One image's result.

    probabilities: attribute name -> probability.
    labels: attribute name -> 0/1 after the model's thresholds (or the
        request's `thresholds`).
    boxes: float32 (L, M, 4) [y1, x1, y2, x2] in normalized image
        coordinates, level by level; None for a baseline model.
    answers: readable answers (`alm_tf.groups`) when groups were given.
    """

    probabilities: dict[str, float]
    labels: dict[str, int]
    boxes: Optional[np.ndarray] = None
    answers: Optional[dict] = None


def read_attributes(saved_model_dir: str) -> list[str]:
    """Attribute names from a SavedModel's assets/attributes.txt."""
    return artifacts.read_attributes_file(
        os.path.join(saved_model_dir, artifacts.ASSETS_DIR, artifacts.ATTRIBUTES_ASSET))


def read_groups(saved_model_dir: str) -> groups_lib.AttributeGroups:
    """Attribute groups from a SavedModel's assets/groups.json (exports made
    before it existed: the known groups of their attribute names)."""
    attributes = read_attributes(saved_model_dir)
    path = os.path.join(saved_model_dir, artifacts.ASSETS_DIR, artifacts.GROUPS_ASSET)
    if not os.path.isfile(path):
        return groups_lib.infer(attributes)
    with open(path, encoding="utf-8") as f:
        return groups_lib.from_description(json.load(f), attributes, path)


def _as_groups(groups, attributes: Sequence[str]) -> Optional[groups_lib.AttributeGroups]:
    if groups is None or isinstance(groups, groups_lib.AttributeGroups):
        return groups
    return groups_lib.from_description(groups, attributes, "groups")


def to_predictions(outputs: dict, attributes: Sequence[str], *,
                   thresholds: groups_lib.ThresholdSpec = None,
                   groups=None) -> list[Prediction]:
    """Per-image Predictions from batched `probabilities`, `labels`, `boxes`.

    `thresholds`: per-request thresholds that relabel the probabilities;
    `groups`: AttributeGroups (or a description) for `answers`.
    """
    probabilities = np.asarray(outputs[F.PROBABILITIES], np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(attributes):
        raise ServingError(f"expected probabilities of shape (N, {len(attributes)}), "
                           f"got {probabilities.shape}")
    labels = groups_lib.relabel(probabilities, np.asarray(outputs[F.LABELS], np.int64), thresholds,
                                attributes)
    groups = _as_groups(groups, attributes)
    boxes = outputs.get(F.BOXES)
    boxes = None if boxes is None else np.asarray(boxes, np.float32)
    result = []
    for n in range(probabilities.shape[0]):
        result.append(Prediction(
            {a: float(p) for a, p in zip(attributes, probabilities[n])},
            {a: int(v) for a, v in zip(attributes, labels[n])},
            None if boxes is None else boxes[n],
            None if groups is None else groups.answer(probabilities[n], labels[n])))
    return result


def box_inputs(frames: Sequence[bytes], boxes, box_indices, layout: str = "rows") -> dict:
    """The three predict_boxes inputs as numpy arrays, in a request layout.

    `rows`: image_bytes[k] is box k's frame, box_indices all -1 (batching
    servers); `frames`: each frame once, box_indices as given.
    """
    if layout not in BOX_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(BOX_LAYOUTS)}. Received: layout={layout!r}")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    box_indices = np.asarray(box_indices, np.int64).reshape(-1)
    if len(box_indices) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(box_indices)} box indices")
    bad = [int(i) for i in box_indices if not 0 <= i < len(frames)]
    if bad:
        raise ValueError(f"box index {bad[0]} names no frame (there are {len(frames)} frames)")
    if layout == "rows":
        return {_BYTES: np.array([bytes(frames[i]) for i in box_indices], dtype=object),
                _BOXES: boxes, _INDICES: np.full([len(boxes)], -1, np.int32)}
    return {_BYTES: np.array([bytes(f) for f in frames], dtype=object), _BOXES: boxes,
            _INDICES: box_indices.astype(np.int32)}


def _box_chunks(frames, boxes, box_indices, layout: str, max_boxes: int):
    """Requests of at most `max_boxes` boxes each (each with only its frames)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    box_indices = np.asarray(box_indices, np.int64).reshape(-1)
    if max_boxes < 1:
        raise ValueError(f"max_boxes_per_request must be >= 1. Received: {max_boxes}")
    for start in range(0, len(boxes), max_boxes):
        part = box_indices[start:start + max_boxes]
        used = sorted(set(int(i) for i in part))
        remap = {old: new for new, old in enumerate(used)}
        if any(not 0 <= i < len(frames) for i in used):
            raise ValueError(f"box index {[i for i in used if not 0 <= i < len(frames)][0]} names no "
                             f"frame (there are {len(frames)} frames)")
        yield box_inputs([frames[i] for i in used], boxes[start:start + max_boxes],
                         [remap[int(i)] for i in part], layout)


def _concat(outputs: list[dict]) -> dict:
    return {k: np.concatenate([np.asarray(o[k]) for o in outputs]) for k in outputs[0]} if outputs else {}


def check_server(server: str, model_name: str = names.MODEL_NAME,
                 timeout: Optional[float] = None) -> None:
    """Raises ServingError when `server` cannot be reached (before any image is read).

    `http(s)://host:port`: the REST model status (`GET /v1/models/<name>`);
    an unknown model (404) is refused by name, other answers count as
    reachable. `host:port`: a gRPC channel that becomes ready. The
    model itself is asked only by the first request (TF Serving's batcher
    refuses input-less calls; see the module doc).
    """
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    if server.startswith(("http://", "https://")):
        status = server.rstrip("/") + f"/v1/models/{model_name}"
        try:
            with urllib.request.urlopen(status, timeout=timeout):
                return
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise ServingError(f"no model {model_name!r} on the server (HTTP 404)") from None
            return  # it answers: the request itself will say more
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServingError(f"cannot reach the REST server: {reason}") from None
    channel = grpc.insecure_channel(server)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise ServingError(f"no gRPC server answered within {timeout:g} s") from None
    finally:
        channel.close()


# ----------------------------------------------------------------------- REST


def rest_url(url: str, model_name: str = names.MODEL_NAME, version: Optional[int] = None) -> str:
    """`<url>/v1/models/<name>[/versions/<v>]:predict`."""
    path = f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version else "")
    return url.rstrip("/") + path + ":predict"


def rest_request(images: Sequence[bytes], signature_name: str = artifacts.DEFAULT_SIGNATURE) -> dict:
    """The JSON body of a row-format predict request on encoded images."""
    return {"signature_name": signature_name,
            "instances": [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in images]}


def rest_boxes_request(inputs: dict) -> dict:
    """The JSON body of a columnar (`inputs`) predict_boxes request."""
    return {"signature_name": artifacts.BOXES_SIGNATURE, "inputs": {
        _BYTES: [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in inputs[_BYTES]],
        _BOXES: np.asarray(inputs[_BOXES], np.float32).tolist(),
        _INDICES: [int(i) for i in inputs[_INDICES]]}}


def rest_outputs(body: dict) -> dict:
    """Batched arrays from a REST predict answer (row or columnar format)."""
    if "outputs" in body:
        outputs = body["outputs"]
        return outputs if isinstance(outputs, dict) else {F.PROBABILITIES: outputs}
    rows = body.get("predictions")
    if rows is None:
        raise ServingError(f"answer has neither 'predictions' nor 'outputs': {sorted(body)}")
    if rows and not isinstance(rows[0], dict):  # a single output comes unnamed
        return {F.PROBABILITIES: rows}
    return {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}


def predict_rest(images: Sequence[bytes], attributes: Sequence[str], *,
                 url: str = "http://localhost:8501", model_name: str = names.MODEL_NAME,
                 version: Optional[int] = None, signature_name: str = artifacts.DEFAULT_SIGNATURE,
                 timeout: float = 30.0, thresholds: groups_lib.ThresholdSpec = None,
                 groups=None) -> list[Prediction]:
    """Predicts encoded images (JPEG/PNG bytes) through the REST API.

    Raises:
        ServingError: the server answered with an error (its message).
    """
    if not images:
        return []
    outputs = _post(rest_request(images, signature_name), url, model_name, version, timeout)
    return to_predictions(outputs, attributes, thresholds=thresholds, groups=groups)


def predict_boxes_rest(frames: Sequence[bytes], boxes, box_indices, attributes: Sequence[str], *,
                       url: str = "http://localhost:8501", model_name: str = names.MODEL_NAME,
                       version: Optional[int] = None, layout: str = "rows",
                       max_boxes_per_request: int = MAX_BOXES_PER_REQUEST, timeout: float = 30.0,
                       thresholds: groups_lib.ThresholdSpec = None, groups=None,
                       raw: bool = False):
    """Person boxes in encoded frames through REST (columnar `inputs`), one
    Prediction per box (`raw`: the concatenated output arrays instead).

    Args:
        frames: encoded frames (JPEG/PNG bytes).
        boxes: (K, 4) normalized [y1, x1, y2, x2]; box_indices: (K,) frame
            of each box.
        layout: `rows` or `frames` (module docstring).
        max_boxes_per_request: boxes per request (the server's
            max_batch_size under batching).
    """
    outputs = [{k: np.asarray(v) for k, v in _post(rest_boxes_request(inputs), url, model_name, version,
                                                   timeout).items()}
               for inputs in _box_chunks(frames, boxes, box_indices, layout, max_boxes_per_request)]
    outputs = _concat(outputs)
    if raw:
        return outputs
    return to_predictions(outputs, attributes, thresholds=thresholds, groups=groups) if outputs else []


def _post(body: dict, url: str, model_name: str, version: Optional[int], timeout: float) -> dict:
    data = json.dumps(body).encode("utf-8")
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
    return rest_outputs(body)


# ----------------------------------------------------------------------- gRPC


def grpc_request(images: Sequence[bytes], model_name: str = names.MODEL_NAME,
                 version: Optional[int] = None, signature_name: str = artifacts.DEFAULT_SIGNATURE):
    """A PredictRequest with `image_bytes` (tf.string [N])."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version:
        request.model_spec.version.value = int(version)
    if signature_name != artifacts.METADATA_SIGNATURE:
        request.inputs[_BYTES].CopyFrom(
            tf.make_tensor_proto([bytes(b) for b in images], dtype=tf.string, shape=[len(images)]))
    return request


def grpc_boxes_request(inputs: dict, model_name: str = names.MODEL_NAME,
                       version: Optional[int] = None):
    """A predict_boxes PredictRequest from `box_inputs`."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = artifacts.BOXES_SIGNATURE
    if version:
        request.model_spec.version.value = int(version)
    request.inputs[_BYTES].CopyFrom(tf.make_tensor_proto(
        [bytes(b) for b in inputs[_BYTES]], dtype=tf.string, shape=[len(inputs[_BYTES])]))
    request.inputs[_BOXES].CopyFrom(tf.make_tensor_proto(np.asarray(inputs[_BOXES], np.float32)))
    request.inputs[_INDICES].CopyFrom(tf.make_tensor_proto(np.asarray(inputs[_INDICES], np.int32)))
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


def fetch_metadata_grpc(*, target: str = "localhost:8500", model_name: str = names.MODEL_NAME,
                        version: Optional[int] = None, timeout: float = 30.0,
                        channel=None) -> dict:
    """The `metadata` signature: attributes (list of str), thresholds, sizes, versions."""
    stub, _ = _stub(target, channel)
    values = _call(stub, grpc_request([], model_name, version, artifacts.METADATA_SIGNATURE), timeout)
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
                 target: str = "localhost:8500", model_name: str = names.MODEL_NAME,
                 version: Optional[int] = None, timeout: float = 30.0,
                 channel=None, thresholds: groups_lib.ThresholdSpec = None,
                 groups=None) -> list[Prediction]:
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
    return to_predictions(outputs, attributes, thresholds=thresholds, groups=groups)


def predict_boxes_grpc(frames: Sequence[bytes], boxes, box_indices,
                       attributes: Optional[Sequence[str]] = None, *,
                       target: str = "localhost:8500", model_name: str = names.MODEL_NAME,
                       version: Optional[int] = None, layout: str = "rows",
                       max_boxes_per_request: int = MAX_BOXES_PER_REQUEST, timeout: float = 30.0,
                       channel=None, thresholds: groups_lib.ThresholdSpec = None, groups=None,
                       raw: bool = False):
    """Person boxes in encoded frames through gRPC; arguments as `predict_boxes_rest`."""
    stub, channel = _stub(target, channel)
    if attributes is None and not raw:
        attributes = fetch_metadata_grpc(model_name=model_name, version=version,
                                         timeout=timeout, channel=channel)["attributes"]
    outputs = _concat([_call(stub, grpc_boxes_request(inputs, model_name, version), timeout)
                       for inputs in _box_chunks(frames, boxes, box_indices, layout,
                                                 max_boxes_per_request)])
    if raw:
        return outputs
    return to_predictions(outputs, attributes, thresholds=thresholds, groups=groups) if outputs else []
