"""alm-export: SavedModel for TF Serving and portable files at E/<version>/.

  alm-export --model_dir=runs/pa100k --export_dir=exported/alm [--version=N]
      [--which=final|best] [--overwrite]
  alm-export --model=imported/alm_pa100k.keras --export_dir=exported/alm
  alm-export --model_dir=M --export_dir=E --format=saved_model,onnx,litert,openvino
      --litert_precision=float16,int8 --calibration_data=RECORDS [--calibration_images=200]

--format (default saved_model): any of saved_model, onnx, litert, openvino;
only the formats listed are written (without saved_model the version holds
no SavedModel, and TF Serving cannot load it); the portable files
(model.onnx, model.tflite, model_float16.tflite, model_int8.tflite,
openvino/model.xml, model.json) go beside the SavedModel when there is one
(alm_tf/serving/portable.py, savedmodel/PORTABLE.md). int8 is calibrated
on the first --calibration_images images of the training split of
--calibration_data (the TFRecords folder of alm-convert).

--model_dir: a trainer model dir; the model is rebuilt from config.json,
the weights of final.keras (or best.keras with --which=best) loaded, and
thresholds.json (alm-evaluate --tune_thresholds) shipped when present.
--model: a .keras file that carries its attribute names (alm-train and
alm-import-torch write them inside it); older files: the sidecar
<stem>.attributes.txt or a config.json beside it. --version defaults to
one more than the highest existing version (1 for an empty E); an existing
version is only replaced with --overwrite. The version is written beside
E/<version> and swapped in at the end (`alm_tf.outputs`): a failure leaves
no version folder behind, and a version folder inside the model, or holding
it, is refused. Signatures, outputs and layout: alm_tf/serving/export.py and
savedmodel/README.md. --max_image_pixels (default 40 megapixels): the
SavedModel answers an image whose header claims more pixels with
INVALID_ARGUMENT before decoding it (recorded in its `metadata`).
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import flags

from alm_tf import artifacts
from alm_tf.serving import export, litert, portable
from alm_tf.artifacts import formats
from pipelines import _cli, _image_flags, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Trainer model dir (config.json + final/best.keras).", **_OVERRIDE)
_MODEL = flags.DEFINE_string("model", None, "A .keras file (it carries its attribute names; older "
                             "files: <stem>.attributes.txt or a config.json beside it); instead of "
                             "--model_dir.", **_OVERRIDE)
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Base dir; the SavedModel goes to <export_dir>/<version>/.", **_OVERRIDE)
_VERSION = flags.DEFINE_integer("version", None, "Version number (default: highest existing + 1).", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version.", **_OVERRIDE)
_WHICH = _shared_flags.which()
# Portable exports. --format is a string (split here) with default None
# (= saved_model) because alm-convert's --format shares the name: a process
# importing both keeps one definition (tests/test_cli_flags.py).
_FORMAT = flags.DEFINE_string("format", None, "Export formats: saved_model (default), onnx, "
                              "litert, openvino (several: --format=saved_model,onnx). Only those "
                              "listed are written: without saved_model, no SavedModel.",
                              **_OVERRIDE)
_LITERT_PRECISION = flags.DEFINE_list("litert_precision", [], "Extra LiteRT files besides float32: "
                                      "float16, int8 (needs --calibration_data).", **_OVERRIDE)
_CALIBRATION_DATA = flags.DEFINE_string("calibration_data", None, "TFRecords folder (alm-convert) "
                                        "whose training split calibrates int8.", **_OVERRIDE)
_CALIBRATION_IMAGES = flags.DEFINE_integer("calibration_images", formats.DEFAULT_CALIBRATION_IMAGES,
                                           "Images used to calibrate int8.", **_OVERRIDE)
_PROGRESS = _shared_flags.progress()


def _fail(message: str) -> None:
    _cli.fail("alm-export", message)


def _check_flags() -> str:
    """Validates the flags; returns the model path."""
    if bool(_MODEL_DIR.value) == bool(_MODEL.value):
        raise ValueError("give exactly one of --model_dir and --model")
    if not _EXPORT_DIR.value:
        raise ValueError("--export_dir is required")
    if _VERSION.value is not None and _VERSION.value < 1:
        raise ValueError(f"--version must be >= 1. Received: {_VERSION.value}")
    _check_portable_flags()
    if _MODEL_DIR.value:
        if not artifacts.is_model_dir(_MODEL_DIR.value):
            raise ValueError(f"--model_dir has no {artifacts.CONFIG_NAME}: {_MODEL_DIR.value!r}")
        return _MODEL_DIR.value
    if not _MODEL.value.endswith(artifacts.KERAS_SUFFIX):
        raise ValueError(f"--model must be a .keras file: {_MODEL.value!r}")
    if not os.path.isfile(_MODEL.value):
        raise ValueError(f"--model not found: {_MODEL.value!r}")
    return _MODEL.value


def _formats() -> tuple[str, ...]:
    return formats.check_formats(_FORMAT.value.split(",") if _FORMAT.value else [formats.DEFAULT_FORMAT])


def _check_portable_flags() -> None:
    wanted = _formats()
    precisions = formats.check_litert_precisions(_LITERT_PRECISION.value or [])
    if precisions and formats.LITERT not in wanted:
        raise ValueError(f"--litert_precision={','.join(precisions)} needs --format to include litert")
    if formats.INT8 in precisions and not _CALIBRATION_DATA.value:
        raise ValueError("--litert_precision=int8 needs --calibration_data")
    if _CALIBRATION_DATA.value and formats.INT8 not in precisions:
        raise ValueError("--calibration_data applies to --litert_precision=int8 only")
    if _CALIBRATION_IMAGES.value < 1:
        raise ValueError(f"--calibration_images must be >= 1. Received: {_CALIBRATION_IMAGES.value}")
    if _CALIBRATION_DATA.value and not os.path.isdir(_CALIBRATION_DATA.value):
        raise ValueError(f"--calibration_data is not a folder: {_CALIBRATION_DATA.value!r}")


def main(argv: list[str]) -> None:
    """Exports; exits 1 with one line on stderr on bad flags or input."""
    try:
        path = _check_flags()
        version = _VERSION.value
        if version is not None:  # a clash fails before the model loads
            export.check_version(_EXPORT_DIR.value, version, _OVERWRITE.value)
        source = export.load_source(path, _WHICH.value)
        calibration = None
        if formats.INT8 in (_LITERT_PRECISION.value or []):
            calibration = litert.load_calibration_images(
                _CALIBRATION_DATA.value, source.image_size, _CALIBRATION_IMAGES.value,
                progress=_PROGRESS.value)
        out = portable.export_version(
            source, _EXPORT_DIR.value, _formats(), version=version, overwrite=_OVERWRITE.value,
            litert_precisions=_LITERT_PRECISION.value or [], calibration_images=calibration,
            progress=_PROGRESS.value, inputs=[path, _CALIBRATION_DATA.value],
            max_image_pixels=_image_flags.MAX_IMAGE_PIXELS.value)
    except (ValueError, OSError, tf.errors.OpError) as e:  # OpError: e.g. a full disk while writing
        _fail(_cli.first_line(e))
        return
    print(f"exported {source.origin} to {out}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-export", main)


if __name__ == "__main__":
    run()
