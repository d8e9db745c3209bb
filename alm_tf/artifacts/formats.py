"""Names of the portable exports, defined once (savedmodel/PORTABLE.md describes the files).

Light on purpose (no TensorFlow import): the exporter (`portable`,
`litert`), the runtime wrappers (`runtimes`) and `alm-export` all take the
format names, file names and tensor names from here.

Layout of an export version folder `E/<version>/`:
  saved_model.pb, variables/, assets/...    format `saved_model` (TF Serving)
  model.onnx                                format `onnx`
  model.tflite                              format `litert` (float32)
  model_float16.tflite, model_int8.tflite   `litert` with extra precisions
  openvino/model.xml, openvino/model.bin    format `openvino`
  model.json                                beside any portable file
"""

from __future__ import annotations

import os
from typing import Iterable

SAVED_MODEL = "saved_model"
ONNX = "onnx"
LITERT = "litert"
OPENVINO = "openvino"
#: Every format `alm-export --format` accepts, the default first.
FORMATS = (SAVED_MODEL, ONNX, LITERT, OPENVINO)
DEFAULT_FORMAT = SAVED_MODEL
#: The formats written by `alm_tf.serving.portable` (one graph, no decode).
PORTABLE_FORMATS = (ONNX, LITERT, OPENVINO)

FLOAT32 = "float32"
FLOAT16 = "float16"
INT8 = "int8"
#: LiteRT always writes float32; these are the extra precisions.
LITERT_EXTRA_PRECISIONS = (FLOAT16, INT8)

ONNX_FILE = "model.onnx"
LITERT_FILES = {
    FLOAT32: "model.tflite",
    FLOAT16: "model_float16.tflite",
    INT8: "model_int8.tflite",
}
OPENVINO_DIR = "openvino"
OPENVINO_FILE = os.path.join(OPENVINO_DIR, "model.xml")
METADATA_FILE = "model.json"
#: model.json's `format` entry, so a reader can tell the file apart.
METADATA_KIND = "alm-tf portable model"
METADATA_SCHEMA_VERSION = 1

#: The one input of every portable graph: (N, H, W, 3) RGB 0..255.
INPUT_NAME = "images"
#: What every model form answers (SavedModel endpoints, portable files, the
#: loader, a server): probabilities (N, M), labels (N, M), boxes (N, L, M, 4)
#: for ALM models.
PROBABILITIES = "probabilities"
LABELS = "labels"
BOXES = "boxes"
ANSWER_KEYS = (PROBABILITIES, LABELS, BOXES)

ONNX_OPSET = 17
#: Splits of a converted data set that calibration reads, in order of preference.
CALIBRATION_SPLITS = ("train", "trainval")
DEFAULT_CALIBRATION_IMAGES = 200

#: File endings the runtime wrappers open.
PORTABLE_SUFFIXES = (".onnx", ".tflite", ".xml")


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats in FORMATS order, duplicates dropped.

    Raises:
        ValueError: an unknown or empty format list, naming the bad value.
    """
    formats = [str(f).strip() for f in formats]
    if not formats or any(not f for f in formats):
        raise ValueError(f"formats must be a non-empty list of {', '.join(FORMATS)}. "
                         f"Received: {formats}")
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in formats)


def check_litert_precisions(precisions: Iterable[str]) -> tuple[str, ...]:
    """Extra LiteRT precisions in LITERT_EXTRA_PRECISIONS order ('float32' is implied).

    Raises:
        ValueError: an unknown precision, naming it.
    """
    precisions = [str(p).strip() for p in precisions]
    for name in precisions:
        if name not in LITERT_EXTRA_PRECISIONS + (FLOAT32,):
            raise ValueError(f"unknown LiteRT precision {name!r}; choose from "
                             f"{', '.join(LITERT_EXTRA_PRECISIONS)}")
    return tuple(p for p in LITERT_EXTRA_PRECISIONS if p in precisions)


def format_of_path(path: str) -> str:
    """The portable format of a model file by its ending; ValueError for others."""
    lower = path.lower()
    if lower.endswith(".onnx"):
        return ONNX
    if lower.endswith(".tflite"):
        return LITERT
    if lower.endswith(".xml"):
        return OPENVINO
    raise ValueError(f"not a portable model file (.onnx, .tflite or OpenVINO .xml): {path!r}")


def is_portable_path(path: str) -> bool:
    """True for a path ending in .onnx, .tflite or .xml (case-insensitive)."""
    return path.lower().endswith(PORTABLE_SUFFIXES)
