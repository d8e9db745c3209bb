"""Portable exports: ONNX, LiteRT (float32 / float16 / int8) and OpenVINO.

One graph for every format (`serving_function`):

    images float32 (N, H, W, 3), RGB 0..255, already at the model size
      -> alm_tf.preprocessing.pixels.normalize_images (inside the graph)
      -> the Keras model
      -> probabilities = sigmoid(logits) (N, M), boxes (N, L, M, 4) (ALM models)

The batch axis is dynamic in every file. Decoding and resizing stay
outside (no ONNX or LiteRT kernel decodes JPEG): model.json describes that
step (`alm_tf.preprocessing.pixels.description`).

How each file is made (checked with TF 2.21 / Keras 3.15; BUILD_NOTES.md):
  - ONNX: `tf2onnx.convert.from_function` on the serving tf.function
    (opset ONNX_OPSET). Keras' `Model.export(format="onnx")` would export
    the bare model (normalized input, logits) instead of this graph.
  - LiteRT and OpenVINO: a frozen SavedModel of the same function written
    with `keras.export.ExportArchive` (a plain `tf.saved_model.save` of the
    function leaves VarHandle ops that the LiteRT converter keeps and
    OpenVINO cannot resolve), then `tf.lite.TFLiteConverter` with builtin
    ops only (`alm_tf.serving.litert`) and `openvino.convert_model` +
    `save_model(compress_to_fp16=False)` (float32 weights: the OpenVINO
    default compresses to float16).

Everything is written under a hidden temp folder and moved into place
when all of it succeeded: a failed export leaves no file behind.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import shutil
import tempfile
import uuid
from typing import Iterable, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

import alm_tf
from alm_tf import artifacts, names, outputs
from alm_tf import groups as groups_lib
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.layers.attribute_localization import AttributeLocalization
from alm_tf.serving import export as saved_model_export
from alm_tf.artifacts import formats as F
from alm_tf.serving import litert


class PortableExportError(ValueError):
    """A user-facing problem with a portable export (formats, calibration, names)."""


def serving_function(model: keras.Model, image_size: Sequence[int]) -> tf.types.experimental.GenericFunction:
    """The exported graph as a tf.function: `images` (None, H, W, 3) -> dict of outputs."""
    height, width = int(image_size[0]), int(image_size[1])
    has_boxes = F.BOXES in model.output

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32,
                                                name=F.INPUT_NAME)],
                 autograph=False, jit_compile=False)
    def serve(images):
        outputs = model(preprocessing.normalize_images(images), training=False)
        result = {F.PROBABILITIES: tf.sigmoid(tf.cast(outputs["logits"], tf.float32))}
        if has_boxes:
            result[F.BOXES] = tf.cast(outputs[F.BOXES], tf.float32)
        return result

    return serve


def write_frozen_saved_model(serve, path: str) -> None:
    """A SavedModel with `serve` as serving_default (what LiteRT and OpenVINO convert)."""
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serve)
    archive.write_out(path, verbose=False)


def _write_onnx(serve, path: str) -> None:
    import tf2onnx

    # tf2onnx names the outputs after the dict keys and the input after the spec.
    with _collected_optimizer_copies():
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                      opset=F.ONNX_OPSET, output_path=path)


@contextlib.contextmanager
def _collected_optimizer_copies():
    """tf2onnx's optimizer loop with each replaced graph copy freed at once.

    Before each of its optimizers, tf2onnx deep-copies the whole ONNX graph
    (weights included) to roll back a failing optimizer; the graph it
    replaces is cyclic garbage that Python's collector, which counts
    objects and not bytes, frees late, so the copies pile up (the largest
    part of alm-export's peak memory). A collection before each optimizer
    keeps about two copies alive; the optimizers and the file they make
    are unchanged.
    """
    from tf2onnx import optimizer

    original = optimizer._get_optimizers  # noqa: SLF001  the list optimize_graph reads

    def collect_first(factory):
        def make():
            gc.collect()
            return factory()
        return make

    optimizer._get_optimizers = lambda: {name: collect_first(factory)  # noqa: SLF001
                                         for name, factory in original().items()}
    try:
        yield
    finally:
        optimizer._get_optimizers = original  # noqa: SLF001
        gc.collect()


def _write_openvino(saved_model_dir: str, xml_path: str) -> None:
    import openvino as ov

    ov_model = ov.convert_model(saved_model_dir)
    for output in ov_model.outputs:  # output names from the signature keys
        names = output.get_names()
        known = [n for n in (F.PROBABILITIES, F.BOXES) if any(n == m.split(":")[0] for m in names)]
        if known:
            output.get_tensor().set_names({known[0]})
    ov_model.inputs[0].get_tensor().set_names({F.INPUT_NAME})
    ov.save_model(ov_model, xml_path, compress_to_fp16=False)


def metadata(attributes: Sequence[str], thresholds: Sequence[float], image_size: Sequence[int],
             *, num_levels: int, files: Mapping[str, dict], model_name: str = names.MODEL_NAME,
             model_version: int = 0, groups: Optional[dict] = None,
             exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION) -> dict:
    """The model.json payload (see savedmodel/PORTABLE.md for each key)."""
    height, width = int(image_size[0]), int(image_size[1])
    m = len(attributes)
    outputs = {F.PROBABILITIES: {
        "shape": [None, m], "dtype": "float32",
        "meaning": "sigmoid of the fused logits; label = probability > threshold"}}
    if num_levels:
        outputs[F.BOXES] = {
            "shape": [None, num_levels, m, 4], "dtype": "float32",
            "meaning": "per pyramid level (finest first) and attribute, the localized region "
                       "[y1, x1, y2, x2] in normalized image coordinates, not clipped"}
    described = preprocessing.description(height, width, exif_orientation)
    return {
        "format": F.METADATA_KIND,
        "schema_version": F.METADATA_SCHEMA_VERSION,
        "project_version": alm_tf.__version__,
        "model_name": model_name,
        "model_version": int(model_version),
        "attributes": [str(a) for a in attributes],
        "thresholds": [float(t) for t in thresholds],
        "label_rule": "probability > threshold",
        # The attribute groups' description (`alm_tf.groups`), as the SavedModel's assets/groups.json.
        "groups": groups if groups is not None else groups_lib.infer(attributes).description(),
        "image_size": [height, width],
        "channel_order": described["channel_order"],
        "input": {
            "name": F.INPUT_NAME, "shape": [None, height, width, 3], "layout": "NHWC",
            "channel_order": described["channel_order"], "value_range": [0, 255],
            "dtype": "float32 (uint8 for the int8 LiteRT file)",
        },
        "preprocessing": {
            "outside_the_model": {k: described[k] for k in ("decode", image_input.EXIF_FLAG, "resize",
                                                           "channel_order", "value_range")},
            "inside_the_model": {"normalization": described["normalization"]},
        },
        "outputs": outputs,
        "files": dict(files),
    }


def int8_float_scopes(model: keras.Model) -> tuple[str, ...]:
    """Name scopes that the int8 LiteRT file keeps in float32: the ALM layers.

    Their box sampling (floor / one-hot of box coordinates, products of
    small weights) does not survive 8-bit activations; they are a small
    part of the compute (BUILD_NOTES.md, "Portable exports").
    """
    return tuple(f"/{layer.name}" for layer in model.layers
                 if isinstance(layer, AttributeLocalization))


def _file_entries(formats, precisions) -> dict[str, dict]:
    entries = {}
    if F.ONNX in formats:
        entries[F.ONNX] = {"path": F.ONNX_FILE, "input_dtype": "float32", "opset": F.ONNX_OPSET,
                           "runtime": "onnxruntime, TensorRT, Triton"}
    if F.LITERT in formats:
        for precision in (F.FLOAT32,) + tuple(precisions):
            entries[f"{F.LITERT}_{precision}"] = {
                "path": F.LITERT_FILES[precision],
                "input_dtype": "uint8" if precision == F.INT8 else "float32",
                "precision": precision, "runtime": "LiteRT (ai_edge_litert), builtin ops only"}
            if precision == F.INT8:
                entries[f"{F.LITERT}_{precision}"]["note"] = (
                    "int8 weights and activations except the ALM layers (float32); "
                    "uint8 input with scale 1, zero point 0; float32 outputs")
    if F.OPENVINO in formats:
        entries[F.OPENVINO] = {"path": F.OPENVINO_FILE, "input_dtype": "float32",
                               "runtime": "OpenVINO runtime, OpenVINO Model Server"}
    return entries


def check_request(formats: Iterable[str], litert_precisions: Iterable[str] = (),
                  calibration_images: Optional[np.ndarray] = None) -> tuple[tuple, tuple]:
    """Validated (portable formats, extra LiteRT precisions).

    Raises:
        PortableExportError: an unknown format or precision, a precision
            without `litert`, int8 without calibration images.
    """
    try:
        wanted = F.check_formats(formats) if formats else ()
        precisions = F.check_litert_precisions(litert_precisions)
    except ValueError as e:
        raise PortableExportError(str(e)) from None
    portable = tuple(f for f in wanted if f in F.PORTABLE_FORMATS)
    if precisions and F.LITERT not in portable:
        raise PortableExportError(f"LiteRT precision {precisions[0]!r} needs the litert format")
    if F.INT8 in precisions and (calibration_images is None or len(calibration_images) == 0):
        raise PortableExportError("int8 needs calibration images (--calibration_data)")
    return portable, precisions


def export_portable(model: keras.Model, attributes: Sequence[str], thresholds: Sequence[float],
                    image_size: Sequence[int], output_dir: str, formats: Iterable[str], *,
                    litert_precisions: Iterable[str] = (),
                    calibration_images: Optional[np.ndarray] = None,
                    model_version: int = 0, groups: Optional[dict] = None,
                    progress: bool = False, exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION,
                    ) -> dict[str, str]:
    """Writes the portable files of `formats` and model.json into `output_dir`.

    Args:
        model: a float32 model from `alm_tf.build_model` (outputs dict with
            `logits`, and `boxes` for ALM models).
        attributes, thresholds: length M each.
        image_size: (H, W) of the model input.
        output_dir: created if needed; existing files of the same names are
            replaced, others are left alone.
        formats: any of `onnx`, `litert`, `openvino` (`saved_model` is
            ignored here: see `export_version`).
        litert_precisions: extra LiteRT files, `float16` and/or `int8`.
        calibration_images: float32 (N, H, W, 3) RGB 0..255 (int8 only;
            `litert.load_calibration_images` reads them from TFRecords).
        model_version, groups, exif_orientation: recorded in model.json.
        progress: progress bar during calibration.

    Returns:
        {file key: absolute path} for every file written, model.json under
        "metadata" (keys as model.json's `files`).

    Raises:
        PortableExportError: bad request (see `check_request`), names or
            thresholds of the wrong length, or a conversion that needs ops
            the target runtime lacks.
    """
    portable, precisions = check_request(formats, litert_precisions, calibration_images)
    if not portable:
        raise PortableExportError(f"no portable format in {list(formats)}; choose from "
                                  f"{', '.join(F.PORTABLE_FORMATS)}")
    try:
        attributes, thresholds = artifacts.check_names_and_thresholds(
            attributes, thresholds, int(model.output[names.FUSED_OUTPUT].shape[-1]), "portable export")
    except artifacts.ModelSourceError as e:
        raise PortableExportError(str(e)) from None
    model = artifacts.as_float32(model)
    num_levels = int(model.output[F.BOXES].shape[1]) if F.BOXES in model.output else 0
    entries = _file_entries(portable, precisions)
    float_scopes = int8_float_scopes(model)

    os.makedirs(output_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-portable-", dir=output_dir)
    try:
        serve = serving_function(model, image_size)
        if F.ONNX in portable:
            _write_onnx(serve, os.path.join(tmp, F.ONNX_FILE))
        if F.LITERT in portable or F.OPENVINO in portable:
            frozen = os.path.join(tmp, "frozen_saved_model")
            write_frozen_saved_model(serve, frozen)
            if F.LITERT in portable:
                for precision in (F.FLOAT32,) + precisions:
                    try:
                        flatbuffer = litert.convert(frozen, precision, calibration_images,
                                                    float_scopes=float_scopes, progress=progress)
                    except litert.ConversionError as e:
                        raise PortableExportError(str(e)) from None
                    with open(os.path.join(tmp, F.LITERT_FILES[precision]), "wb") as f:
                        f.write(flatbuffer)
            if F.OPENVINO in portable:
                _write_openvino(frozen, os.path.join(tmp, F.OPENVINO_FILE))
            shutil.rmtree(frozen)
        payload = metadata(attributes, thresholds, image_size, num_levels=num_levels,
                           files=entries, model_name=model.name, model_version=model_version,
                           groups=groups, exif_orientation=exif_orientation)
        with open(os.path.join(tmp, F.METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        written = _move_into_place(tmp, output_dir, [e["path"] for e in entries.values()])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for key, path in written.items():
        logging.info("wrote %s", path)
    keys = {e["path"]: k for k, e in entries.items()}
    return {keys.get(rel, "metadata"): path for rel, path in written.items()}


def _move_into_place(tmp: str, output_dir: str, relative_paths: Sequence[str]) -> dict[str, str]:
    """Renames the finished files (and the openvino folder) from tmp into output_dir."""
    moved = {}
    names = list(relative_paths) + [F.METADATA_FILE]
    for rel in names:
        if os.path.dirname(rel):  # openvino/model.xml: move the folder as a whole
            folder = os.path.dirname(rel)
            target = os.path.join(output_dir, folder)
            if os.path.exists(target):
                old = os.path.join(output_dir, f".old-{folder}-{uuid.uuid4().hex[:8]}")
                os.rename(target, old)
                os.rename(os.path.join(tmp, folder), target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(os.path.join(tmp, folder), target)
        else:
            os.replace(os.path.join(tmp, rel), os.path.join(output_dir, rel))
        moved[rel] = os.path.abspath(os.path.join(output_dir, rel))
    return moved


def export_version(source, export_dir: str, formats: Iterable[str], *,
                   version: Optional[int] = None, overwrite: bool = False,
                   litert_precisions: Iterable[str] = (),
                   calibration_images: Optional[np.ndarray] = None,
                   progress: bool = False, inputs: Sequence[str] = (),
                   max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> str:
    """Writes `export_dir/<version>/` with every format asked for; returns its path.

    `source` is an `alm_tf.serving.export.ExportSource`. The whole version
    (the portable files first, then the SavedModel when `saved_model` is
    asked for) is written into a hidden staging folder and swapped into
    place (`alm_tf.outputs`): a failure leaves an existing version
    untouched, no new one, and no export dir this call created.
    `max_image_pixels`: the SavedModel's decoded-size limit (its metadata).

    Raises:
        PortableExportError / export.ExportError: bad request, existing
            version without `overwrite`, conversion problems.
        outputs.OutputError: the version folder contains, or lies inside,
            one of `inputs`.
    """
    wanted = F.check_formats(formats) if not isinstance(formats, str) else F.check_formats([formats])
    portable, _ = check_request(wanted, litert_precisions, calibration_images)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise PortableExportError(f"version must be a positive integer. Received: version={version!r}")
    try:
        final = saved_model_export.check_version(export_dir, version, overwrite)
    except saved_model_export.ExportError as e:
        raise PortableExportError(str(e)) from None
    if not portable:
        return saved_model_export.export_saved_model(source, export_dir, version, overwrite, inputs,
                                                     max_image_pixels)
    number = int(os.path.basename(final))
    with outputs.replaced_dir(final, overwrite=overwrite, inputs=inputs, flag="--export_dir") as staging:
        export_portable(
            source.model, source.attributes, source.thresholds, source.image_size, staging,
            portable, litert_precisions=litert_precisions, calibration_images=calibration_images,
            model_version=number, groups=source.groups.description(), progress=progress,
            exif_orientation=source.exif_orientation)
        if F.SAVED_MODEL in wanted:
            saved_model_export.write_saved_model(source, number, staging, max_image_pixels)
    return final
