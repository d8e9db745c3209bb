"""Shared pieces of the serving tests: a fake model dir, the reference
computation, TF Serving protos the pip package lacks, in-test servers."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from alm_tf import artifacts
from alm_tf.config import ModelConfig
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.serving import export
from alm_tf.testing import mini_model

ATTRIBUTES = ["hat", "long_hair", "backpack", "female"]
THRESHOLDS = [0.5, 0.3, 0.7, 0.45]
#: Declared attribute groups of the exported model (alm_tf.groups): an
#: exclusive group, a binary group, and `backpack` on its own.
GROUPS = {"groups": [
    {"name": "head", "kind": "exclusive", "attributes": ["hat", "long_hair"], "values": ["hat", "long hair"]},
    {"name": "gender", "kind": "binary", "attributes": ["female"], "values": ["female", "male"]},
]}
INPUT_SHAPE = (64, 32, 3)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Exported:
    model_dir: str
    export_dir: str
    saved_model: str
    model: object  # the Keras model whose weights were exported


def write_model_dir(model_dir, model, attributes, thresholds=None, groups=None):
    """A model dir as the trainer of an EARLIER version wrote it (config.json
    format 1, a final.keras that carries no description): older model dirs
    keep loading. `groups`: a groups description recorded in config.json."""
    os.makedirs(model_dir, exist_ok=True)
    shape = model.inputs[0].shape
    levels = sorted(int(k[-1]) for k in model.output if k.startswith("level"))
    config = ModelConfig(num_attributes=len(attributes), image_height=int(shape[1]),
                         image_width=int(shape[2]), alm_levels=tuple(levels))
    artifacts.write_json(artifacts.config_path(model_dir), {
        "format_version": 1,
        "model": config.to_dict(),
        "image_size": [int(shape[1]), int(shape[2])],
        "attributes": list(attributes),
        "preprocessing": {"resize": "bilinear", "scale": "0..1",
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "threshold": 0.5,
        **({"groups": groups} if groups is not None else {}),
    })
    model.save(artifacts.weights_path(model_dir))
    if thresholds is not None:  # as alm-evaluate --tune_thresholds writes it
        artifacts.write_thresholds(artifacts.thresholds_path(model_dir), attributes, thresholds,
                                   "val")


def make_exported(root) -> Exported:
    """The real ALM head (pyramid, three ALM levels, fusion, boxes) on a tiny
    backbone of BN-Inception's own building blocks (alm_tf/testing/mini_model.py): every
    signature sees what the full model gives it, and the export takes seconds.
    test_backbones_end_to_end.py and the tiny demo export full backbones."""
    model = mini_model.mini_alm_model(num_attributes=len(ATTRIBUTES),
                                            image_size=INPUT_SHAPE[:2], seed=1)
    _perturb_boxes(model)
    model_dir = os.path.join(root, "model")
    write_model_dir(model_dir, model, ATTRIBUTES, THRESHOLDS, GROUPS)
    export_dir = os.path.join(root, "exported")
    source = export.load_source(model_dir)
    path = export.export_saved_model(source, export_dir)
    return Exported(model_dir, export_dir, path, source.model)


def _perturb_boxes(model):
    """Random box and classifier weights so that boxes and logits differ per image."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.name.startswith("st_") or layer.name == "finalfc":
            layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                               for w in layer.get_weights()])


def images(n=3, seed=0, sizes=((80, 40), (64, 32), (37, 23))):
    """RGB uint8 pictures of different sizes."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def encode(image, fmt="png"):
    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    return tf.io.encode_jpeg(image, quality=95).numpy()


def reference(model, rgb_images, thresholds=THRESHOLDS):
    """Direct Keras call after the input pipeline's preprocessing, image by image."""
    height, width = model.inputs[0].shape[1:3]
    batch = tf.stack([preprocessing.resize_images(tf.convert_to_tensor(x), height, width)
                      for x in rgb_images])
    out = model(preprocessing.normalize_images(batch), training=False)
    probs = tf.sigmoid(out["logits"]).numpy()
    result = {"probabilities": probs,
              "labels": (probs > np.asarray(thresholds, np.float32)).astype(np.int32)}
    if "boxes" in out:
        result["boxes"] = out["boxes"].numpy()
    return result


def decoded(encoded_images):
    return [tf.io.decode_image(e, channels=3, expand_animations=False).numpy()
            for e in encoded_images]


# --------------------------------------------------------- TF Serving protos


def serving_config_protos():
    """BatchingParameters and MonitoringConfig message classes.

    tensorflow-serving-api ships model_server_config_pb2 but not these two;
    they are built here from the fields of TF Serving's
    servables/tensorflow/session_bundle_config.proto (fields 1-7) and
    config/monitoring_config.proto, so the text files are parsed with the
    real field names, types and numbers.
    """
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="alm_test/serving_config.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"])
    batching = proto.message_type.add(name="BatchingParameters")
    for number, (name, kind) in enumerate([
            ("max_batch_size", ".google.protobuf.Int64Value"),
            ("batch_timeout_micros", ".google.protobuf.Int64Value"),
            ("max_enqueued_batches", ".google.protobuf.Int64Value"),
            ("num_batch_threads", ".google.protobuf.Int64Value"),
            ("thread_pool_name", ".google.protobuf.StringValue")], start=1):
        batching.field.add(name=name, number=number, type=F.TYPE_MESSAGE,
                           type_name=kind, label=F.LABEL_OPTIONAL)
    batching.field.add(name="allowed_batch_sizes", number=6, type=F.TYPE_INT64,
                       label=F.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=F.TYPE_BOOL,
                       label=F.LABEL_OPTIONAL)
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=F.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig", label=F.LABEL_OPTIONAL)
    pool.Add(proto)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
            get(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")))


# ---------------------------------------------------------- in-test servers


def _run_signature(loaded, signature_name, inputs):
    signature = loaded.signatures[signature_name or "serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _json_value(value, dtype):
    """TF Serving's rule: {"b64": ...} becomes bytes for a string input."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ValueError(f"JSON object {value} not formatted correctly for base64 data")
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_json_value(v, dtype) for v in value]
    return value


class RestServer:
    """`POST /v1/models/<name>[/versions/<v>]:predict` (row and columnar format)
    answering from a loaded SavedModel, with TF Serving's JSON conventions."""

    PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(/versions/(?P<version>\d+))?:predict$")

    def __init__(self, loaded, model_name="alm"):
        self.loaded, self.model_name, self.requests = loaded, model_name, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                match = server.PATH.match(self.path)
                if not match or match["name"] != server.model_name:
                    return self._send(404, {"error": f"Servable not found: {self.path}"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                try:
                    name = body.get("signature_name") or "serving_default"
                    signature = server.loaded.signatures[name]
                    _, specs = signature.structured_input_signature
                    if not specs:
                        raise ValueError(f"Failed to get input map for signature: {name}")
                    rows = "instances" in body
                    payload = body["instances"] if rows else body["inputs"]
                    if len(specs) == 1 and not isinstance(payload, dict) and not (
                            rows and payload and isinstance(payload[0], dict) and set(payload[0]) <= set(specs)):
                        payload = {next(iter(specs)): payload}
                    elif rows:  # row format with named inputs: [{name: value}, ...]
                        payload = {k: [row[k] for row in payload] for k in specs}
                    missing = sorted(set(specs) - set(payload))
                    if missing:
                        raise ValueError(f"Missing input: {missing[0]}")
                    inputs = {}
                    for input_name, spec in specs.items():
                        dtype = object if spec.dtype.name == "string" else spec.dtype.as_numpy_dtype
                        inputs[input_name] = np.array(_json_value(payload[input_name], spec.dtype), dtype=dtype)
                    outputs = _run_signature(server.loaded, name, inputs)
                except Exception as e:  # TF Serving answers 400 with the message
                    return self._send(400, {"error": getattr(e, "message", None) or str(e)})
                if rows:
                    n = len(next(iter(outputs.values())))
                    answer = {"predictions": [{k: v[i].tolist() for k, v in outputs.items()}
                                              for i in range(n)]}
                else:
                    answer = {"outputs": {k: v.tolist() for k, v in outputs.items()}}
                self._send(200, answer)

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class GrpcServer:
    """`PredictionService.Predict` answering from a loaded SavedModel.

    batching=True mimics TF Serving's --enable_batching, whose batcher
    refuses a run without inputs (batching_util.h) and one whose inputs
    differ in their 0th dimension (batching_session.cc ComputeInputSize)."""

    def __init__(self, loaded, model_name="alm", batching=False):
        server = self
        self.requests = []

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                server.requests.append(request)
                if request.model_spec.name != model_name:
                    context.abort(grpc.StatusCode.NOT_FOUND,
                                  f"Servable not found for request: {request.model_spec.name}")
                if batching and not request.inputs:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                  "Batching Run() must have at least one input tensor")
                if batching and len({v.tensor_shape.dim[0].size for v in request.inputs.values()}) > 1:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                  "Batching Run() input tensors must have equal 0th-dimension size")
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                try:
                    outputs = _run_signature(loaded, request.model_spec.signature_name, inputs)
                except tf.errors.InvalidArgumentError as e:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
                response = predict_pb2.PredictResponse()
                response.model_spec.CopyFrom(request.model_spec)
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)
