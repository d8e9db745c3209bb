"""LiteRT (.tflite) conversion in float32, float16 and int8, and its checks.

The converter starts from the frozen SavedModel that `portable` writes
(one `serving_default` signature: `images` RGB 0..255 -> `probabilities`,
`boxes`). Only TFLite builtin ops are allowed: `SELECT_TF_OPS` (Flex) is
never turned on (Keras' `Model.export(format="litert")` turns it on
silently), and `operators` lets a test prove that no custom op slipped in.

int8 is post-training integer quantization calibrated on real images
(`load_calibration_images`): int8 weights and activations, uint8 input
(raw RGB pixel values: the input scale is forced to 1 and its zero point
to 0, see `calibration_samples`), float32 outputs (probabilities keep
their resolution). The ALM layers can be kept in float32 (`float_scopes`,
what `portable` does): the backbone and pyramid, nearly all the compute,
stay int8.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as lite_convert
from tensorflow.lite.python import util as lite_util
from tqdm.auto import tqdm

from alm_tf.data import example, manifest as manifest_lib
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.artifacts import formats as F


class ConversionError(ValueError):
    """A model or data set that cannot be converted as asked."""


# ----------------------------------------------------------------- calibration


def load_calibration_images(data_dir: str, image_size: Sequence[int], num_images: int, *,
                            progress: bool = False) -> np.ndarray:
    """The first `num_images` images of the training split, float32 (N, H, W, 3) RGB 0..255.

    Read from the converter's TFRecords (`alm_tf.data.read_manifest`),
    decoded and resized with `alm_tf.preprocessing.pixels` exactly as the
    input pipeline does, without its normalization. The split is the first
    of CALIBRATION_SPLITS the manifest has. Undecodable records are skipped.

    Raises:
        ConversionError: no manifest, no training split, no images, or
            num_images < 1.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ConversionError(f"calibration_images must be a positive int. Received: {num_images!r}")
    try:
        manifest = manifest_lib.read_manifest(data_dir)
    except (FileNotFoundError, ValueError) as e:
        raise ConversionError(f"calibration data: {e}") from None
    split = next((s for s in F.CALIBRATION_SPLITS if s in manifest["splits"]), None)
    if split is None:
        raise ConversionError(f"calibration data {data_dir!r} has no {' or '.join(F.CALIBRATION_SPLITS)} "
                              f"split (it has: {', '.join(manifest['splits']) or 'none'})")
    shards = [os.path.join(data_dir, name) for name in manifest["splits"][split]["shards"]]
    num_attributes = len(manifest["attributes"])
    height, width = int(image_size[0]), int(image_size[1])

    def decode(serialized):
        features = example.parse_example(serialized, num_attributes)
        # Records hold images alm-convert checked against its --max_image_pixels.
        image = preprocessing.decode_image(features[example.ENCODED], max_pixels=None)
        return preprocessing.resize_images(image, height, width)

    dataset = (tf.data.TFRecordDataset(shards).map(decode).ignore_errors()
               .take(num_images).batch(32))
    bar = _progress(num_images, f"calibration images ({split})", progress)
    batches = []
    for batch in dataset:
        batches.append(np.clip(batch.numpy(), 0.0, 255.0))
        bar.update(len(batches[-1]))
    bar.close()
    if not batches:
        raise ConversionError(f"calibration data {data_dir!r}: split {split!r} has no readable image")
    return np.concatenate(batches).astype(np.float32)


def _progress(total: int, description: str, enabled: bool):
    return tqdm(total=total, desc=description, unit="img", disable=not enabled)


def range_anchor(height: int, width: int) -> np.ndarray:
    """A (H, W, 3) float32 picture holding both 0 and 255 in every channel."""
    ramp = np.linspace(0.0, 255.0, height * width, dtype=np.float32).reshape(height, width)
    return np.stack([ramp, ramp[::-1, ::-1], ramp.T.reshape(height, width)], axis=-1)


def calibration_samples(images: np.ndarray, progress: bool = False) -> Iterator[list]:
    """The representative data set: one range anchor, then each image as a batch of 1.

    The anchor makes the observed input range exactly [0, 255], so the
    converter gives the uint8 input scale 1 and zero point 0: the int8
    model then takes raw pixel values. (It widens no other range much: it
    is one picture among the calibration images.)
    """
    height, width = images.shape[1], images.shape[2]
    yield [range_anchor(height, width)[None]]
    bar = _progress(len(images), "int8 calibration", progress)
    for image in images:
        yield [np.asarray(image, np.float32)[None]]
        bar.update(1)
    bar.close()


# ----------------------------------------------------------------- conversion


def convert(saved_model_dir: str, precision: str = F.FLOAT32,
            calibration_images: Optional[np.ndarray] = None, *,
            float_scopes: Sequence[str] = (), progress: bool = False) -> bytes:
    """A .tflite flatbuffer of the SavedModel's serving_default signature.

    Args:
        saved_model_dir: a frozen-by-conversion SavedModel (portable's).
        precision: "float32", "float16" (float16 weights, float32 compute
            and input) or "int8" (integer ops, uint8 input, float32 outputs).
        calibration_images: float32 (N, H, W, 3) RGB 0..255; int8 only.
        float_scopes: int8 only: ops whose output tensor names contain one
            of these strings stay in float32 (portable passes the ALM
            layers: see `quantize_int8`).
        progress: show a progress bar during calibration.

    Raises:
        ConversionError: int8 without calibration images, a bad precision,
            or a result with custom (Flex) ops.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == F.FLOAT16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    elif precision == F.INT8:
        if calibration_images is None or len(calibration_images) == 0:
            raise ConversionError("int8 needs calibration images (--calibration_data)")
        flatbuffer = quantize_int8(converter, np.asarray(calibration_images, np.float32),
                                   float_scopes, progress)
    elif precision == F.FLOAT32:
        flatbuffer = converter.convert()
    else:
        raise ConversionError(f"unknown LiteRT precision {precision!r}; choose from "
                              f"{', '.join(F.LITERT_FILES)}")
    custom = custom_operators(flatbuffer)
    if custom:
        raise ConversionError(f"the {precision} LiteRT model needs custom ops {sorted(custom)} "
                              f"that the LiteRT runtime does not have")
    if precision == F.INT8:
        scale, zero_point = input_quantization(flatbuffer)
        if not (abs(scale - 1.0) < 1e-6 and zero_point == 0):
            raise ConversionError(f"int8 input quantization is scale={scale}, zero_point="
                                  f"{zero_point}; expected 1 and 0 (raw pixels)")
    return flatbuffer


def quantize_int8(converter, images: np.ndarray, float_scopes: Sequence[str] = (),
                  progress: bool = False) -> bytes:
    """Post-training integer quantization, uint8 input, float32 outputs.

    Calibrates on `images`; every op is quantized to int8 except those whose
    output tensor names contain one of `float_scopes`: they run in float32
    between a dequantize and a quantize. Without scopes this is the
    converter's full-integer mode. With scopes it calibrates only
    (`_experimental_calibrate_only`) and quantizes with the node denylist
    of `tf.lite.python.convert.mlir_quantize`, the path TF's own
    `QuantizationDebugger` takes (no public converter option does this).
    The ALM head needs it: its box sampling weights (floor / one-hot of
    coordinates) do not survive 8-bit activations (BUILD_NOTES.md,
    "Portable exports", gives the accuracy with and without scopes).
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: calibration_samples(images, progress)
    if not float_scopes:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
        return converter.convert()
    converter._experimental_calibrate_only = True  # noqa: SLF001  see the docstring
    calibrated = converter.convert()
    denied = [name for name in tensor_names(calibrated)
              if any(scope in name for scope in float_scopes)]
    # The two steps TFLiteConverter itself takes for integer quantization.
    quantized = lite_convert.mlir_quantize(
        calibrated, input_data_type=tf.uint8, output_data_type=tf.float32,
        denylisted_nodes=denied)
    return lite_util.modify_model_io_type(quantized, tf.uint8, tf.float32)


# ------------------------------------------------------------------ inspection


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def operators(flatbuffer: bytes) -> set[str]:
    """Operator names of a .tflite: builtin names ("CONV_2D") and custom codes ("FlexEinsum")."""
    schema = _schema()
    names = {value: key for key, value in vars(schema.BuiltinOperator).items()
             if not key.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    result = set()
    for code in model.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if code.customCode:
            result.add(code.customCode.decode() if isinstance(code.customCode, bytes)
                       else str(code.customCode))
        else:
            result.add(names.get(builtin, str(builtin)))
    return result


def tensor_names(flatbuffer: bytes) -> list[str]:
    """Names of every tensor of the main subgraph of a .tflite."""
    model = _schema().ModelT.InitFromPackedBuf(flatbuffer, 0)
    return [t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            for t in model.subgraphs[0].tensors]


def custom_operators(flatbuffer: bytes) -> set[str]:
    """The custom operators (Flex ops are custom ops named "Flex...") of a .tflite."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    custom = set()
    for code in model.operatorCodes or []:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.CUSTOM:
            name = code.customCode
            custom.add(name.decode() if isinstance(name, bytes) else str(name))
    return custom


def input_quantization(flatbuffer: bytes) -> tuple[float, int]:
    """(scale, zero_point) of the first input; (0.0, 0) when it is not quantized."""
    from ai_edge_litert import interpreter

    detail = interpreter.Interpreter(model_content=flatbuffer).get_input_details()[0]
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)
