"""Run a portable export (.onnx, .tflite, OpenVINO .xml) on the CPU.

    model = open_portable("E/1/model_int8.tflite")
    model.attributes, model.thresholds, model.image_size, model.metadata
    out = model.predict(images)   # float32 (N, H, W, 3) RGB 0..255 at image_size
    out["probabilities"]          # (N, M) float32; out["boxes"] (N, L, M, 4) for ALM models

The runtimes: onnxruntime (CPUExecutionProvider), `ai_edge_litert.interpreter`
(XNNPACK on by default, the builtin kernels where XNNPACK
refuses a graph) and the OpenVINO runtime ("CPU" device). Each file
has a dynamic batch axis, so any N runs in one call (LiteRT resizes its
input tensor when N changes). An int8 LiteRT file takes uint8: `predict`
rounds and clips the float images to 0..255 first. The attribute names,
thresholds and size come from the model.json written beside the file
(for OpenVINO, beside its `openvino/` folder). Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Optional

import numpy as np

from alm_tf.artifacts import formats as F


class PortableModelError(ValueError):
    """A portable model file that cannot be opened (missing, no model.json, wrong shape)."""


#: Longest runtime message kept in a PortableModelError (runtimes print pages).
_MAX_MESSAGE = 200


def find_metadata(path: str) -> str:
    """The model.json that describes the model file `path` (same folder, or its parent for OpenVINO)."""
    folder = os.path.dirname(os.path.abspath(path))
    candidates = [os.path.join(folder, F.METADATA_FILE)]
    if os.path.basename(folder) == F.OPENVINO_DIR:
        candidates.append(os.path.join(os.path.dirname(folder), F.METADATA_FILE))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise PortableModelError(f"no {F.METADATA_FILE} beside {path!r} (alm-export writes it)")


def read_metadata(path: str) -> dict:
    """model.json of a portable model file, checked for the keys `PortableModel` needs."""
    meta_path = find_metadata(path)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PortableModelError(f"cannot read {meta_path}: {e}") from None
    for key in ("attributes", "thresholds", "image_size"):
        if key not in meta:
            raise PortableModelError(f"{meta_path} has no {key!r} entry")
    if len(meta["attributes"]) != len(meta["thresholds"]):
        raise PortableModelError(f"{meta_path}: {len(meta['attributes'])} attributes but "
                                 f"{len(meta['thresholds'])} thresholds")
    return meta


@dataclasses.dataclass
class PortableModel:
    """A portable model file opened on one CPU runtime.

    Attributes:
        path: the model file.
        format: "onnx", "litert" or "openvino".
        attributes: tuple of M attribute names.
        thresholds: float32 (M,) per-attribute thresholds (label = p > t).
        image_size: (H, W) the images must already have.
        metadata: the whole model.json.
        input_dtype: np.float32, or np.uint8 for an int8 LiteRT file.
    """

    path: str
    format: str
    attributes: tuple
    thresholds: np.ndarray
    image_size: tuple
    metadata: dict
    input_dtype: type
    _run: Callable = dataclasses.field(repr=False)

    def predict(self, images) -> dict[str, np.ndarray]:
        """Outputs for float32 (N, H, W, 3) RGB 0..255 images at `image_size`.

        Returns:
            {"probabilities": float32 (N, M)} plus "boxes" float32
            (N, L, M, 4) for ALM models.

        Raises:
            PortableModelError: images of another shape.
        """
        images = np.asarray(images)
        height, width = self.image_size
        if images.ndim != 4 or images.shape[1:] != (height, width, 3):
            raise PortableModelError(f"images must be (N, {height}, {width}, 3) RGB at the model "
                                     f"size. Received: shape {images.shape}")
        if self.input_dtype == np.uint8:
            images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        else:
            images = images.astype(np.float32, copy=False)
        if len(images) == 0:
            raise PortableModelError("images is an empty batch")
        outputs = self._run(np.ascontiguousarray(images))
        return {k: np.asarray(v, np.float32) for k, v in outputs.items()
                if k in (F.PROBABILITIES, F.BOXES)}

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """int32 (N, M): probability > threshold (the rule of the SavedModel's `labels`)."""
        return (np.asarray(probabilities, np.float32) > self.thresholds).astype(np.int32)


def _onnx_runner(path: str, num_threads: Optional[int]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]

    def run(images):
        return dict(zip(names, session.run(names, {input_name: images})))

    return run, np.float32, tuple(session.get_inputs()[0].shape)


def _litert_runner(path: str, num_threads: Optional[int]):
    from ai_edge_litert import interpreter

    def make(resolver):
        model = interpreter.Interpreter(model_path=path, num_threads=num_threads,
                                        experimental_op_resolver_type=resolver)
        return model.get_signature_runner()

    state = {"runner": make(interpreter.OpResolverType.AUTO)}
    details = state["runner"].get_input_details()
    input_name = next(iter(details))
    dtype = details[input_name]["dtype"]
    shape = tuple(int(d) for d in details[input_name]["shape_signature"])

    def run(images):
        try:
            return state["runner"](**{input_name: images})
        except RuntimeError as e:
            # XNNPACK (the default CPU delegate) refuses some quantized
            # graphs when it prepares them; the builtin kernels run them all.
            if "XNNPACK" not in str(e):
                raise
            state["runner"] = make(interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            return state["runner"](**{input_name: images})

    return run, (np.uint8 if dtype == np.uint8 else np.float32), shape


def _openvino_runner(path: str, num_threads: Optional[int]):
    import openvino as ov

    weights = os.path.splitext(path)[0] + ".bin"
    if not os.path.isfile(weights):
        raise PortableModelError(f"{weights!r} is missing: an OpenVINO .xml needs the .bin of "
                                 "its weights beside it")
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    compiled = core.compile_model(path, "CPU", config)
    request = compiled.create_infer_request()
    outputs = [(o, o.get_any_name()) for o in compiled.outputs]

    def run(images):
        result = request.infer({0: images})
        return {name: np.array(result[o]) for o, name in outputs}

    shape = tuple(d.get_length() if d.is_static else None
                  for d in compiled.inputs[0].get_partial_shape())
    return run, np.float32, shape


_RUNNERS = {F.ONNX: _onnx_runner, F.LITERT: _litert_runner, F.OPENVINO: _openvino_runner}


def open_portable(path: str, *, num_threads: Optional[int] = None) -> PortableModel:
    """Opens a .onnx, .tflite or OpenVINO .xml file written by `alm-export`.

    Args:
        path: the model file; its model.json must sit beside it.
        num_threads: CPU threads for the runtime (None: the runtime's default).

    Raises:
        PortableModelError: unknown ending, missing file or model.json, an
            OpenVINO .xml without its .bin, a file its runtime cannot load
            (truncated, damaged), a file whose input size is not
            model.json's `image_size`.
    """
    try:
        kind = F.format_of_path(path)
    except ValueError as e:
        raise PortableModelError(str(e)) from None
    if not os.path.isfile(path):
        raise PortableModelError(f"no such model file: {path!r}")
    meta = read_metadata(path)
    image_size = (int(meta["image_size"][0]), int(meta["image_size"][1]))
    try:
        run, input_dtype, input_shape = _RUNNERS[kind](path, num_threads)
    except (PortableModelError, ImportError):
        raise
    except Exception as e:  # noqa: BLE001  each runtime has its own errors for a damaged file
        raise PortableModelError(f"cannot load {path!r} with the {kind} runtime (damaged or "
                                 f"truncated?): {_one_line(e)}") from None
    _check_input_shape(path, input_shape, image_size, find_metadata(path))
    return PortableModel(
        path=path, format=kind, attributes=tuple(meta["attributes"]),
        thresholds=np.asarray(meta["thresholds"], np.float32),
        image_size=image_size, metadata=meta, input_dtype=input_dtype, _run=run)


def _one_line(error: BaseException) -> str:
    """A runtime's (often multi-line, padded) message as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _check_input_shape(path: str, shape: tuple, image_size: tuple, meta_path: str) -> None:
    """The file's input must be (N, H, W, 3) at model.json's image size (N free)."""
    expected = (image_size[0], image_size[1], 3)
    found = tuple(shape[1:])
    if len(shape) != 4 or any(isinstance(d, int) and d > 0 and d != e
                              for d, e in zip(found, expected)):
        shown = ", ".join("?" if not isinstance(d, int) or d < 0 else str(d) for d in shape)
        raise PortableModelError(f"{path!r} takes images of shape ({shown}) but {meta_path} says "
                                 f"image_size {list(image_size)}: the file and its model.json "
                                 "come from different exports")
