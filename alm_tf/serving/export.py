"""SavedModel export of an ALM model for TF Serving.

One `keras.export.ExportArchive` with four endpoints that share a single
`serve()` tf.function (normalize -> model -> probabilities, thresholded
labels, boxes):

  serving_default   image_bytes tf.string [N]: encoded JPEG/PNG/BMP/GIF/WebP
                    of at most `max_image_pixels` (read from the header
                    before decoding), grayscale and RGBA converted to RGB
  predict_images    images float32 [N, H, W, 3]: RGB 0..255, any H and W
  predict_examples  examples tf.string [N]: serialized tf.Example with
                    `image/encoded`
  predict_boxes     image_bytes tf.string [F] (frames), boxes float32
                    [K, 4] (normalized [y1, x1, y2, x2]), box_indices
                    int32 [K] (each box's frame; negative: the frame at
                    the box's own position): outputs per box, each box
                    cropped as `alm_tf.preprocessing.crops` defines (full resolution,
                    then the same resize and normalization)
  metadata          no input: attributes, thresholds, image_height,
                    image_width, num_levels, model_name, model_version,
                    project_version, groups (the JSON description of
                    `alm_tf.groups`), max_image_pixels, exif_orientation
                    (the model's: a JPEG's EXIF Orientation ignored or
                    applied in serving_default and predict_boxes)

Outputs of the three image endpoints: `probabilities`
float32 (N, M), `labels` int32 (N, M) (probability > threshold, the rule
of `alm_tf.evaluation.report`), `boxes` float32 (N, L, M, 4) (absent for the
baseline). Images are brought to the model size with
`alm_tf.preprocessing.pixels.resize_images(decode_image(...))` per image and
normalized with `normalize_images`, exactly what the input pipeline does.
Bad input (bytes that are no image, an empty string, a zero-sized image,
an Example without `image/encoded`, an image whose header claims more
than `max_image_pixels` pixels) raises InvalidArgumentError with a
message: TF Serving answers it with HTTP 400 / gRPC INVALID_ARGUMENT.

The model is always served in float32 (a model trained in mixed precision
is converted). It comes from `alm_tf.artifacts.load` (a model dir or a
`.keras` file: a SavedModel has no Keras model to export again), which
brings its attribute names and thresholds (thresholds.json of a model dir,
alm-evaluate --tune_thresholds; else 0.5).

Layout written by `export_saved_model` (to a temp dir, then renamed):
  E/<version>/saved_model.pb, variables/
  E/<version>/assets/attributes.txt                    one name a line
  E/<version>/assets/groups.json                       attribute groups (alm_tf.groups)
  E/<version>/assets.extra/tf_serving_warmup_requests  PredictionLog records
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

import alm_tf
from alm_tf import artifacts, names, outputs
from alm_tf.artifacts import formats as F
from alm_tf.preprocessing import crops as people
from alm_tf.data import example as example_keys
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Batch sizes warmed up through serving_default (= allowed_batch_sizes
#: in savedmodel/batching_parameters.txt); the other signatures use 1.
WARMUP_BATCH_SIZES = (1, 2, 4, 8, 16, 32)

#: What exports take: a loaded model with a Keras model inside.
ExportSource = artifacts.LoadedModel


class ExportError(ValueError):
    """A user-facing export problem (bad path, missing names, version clash)."""


def load_source(path: str, which: str = "final") -> ExportSource:
    """A model dir or a .keras file, loaded by `alm_tf.artifacts.load`."""
    try:
        source = artifacts.load(path, which=which)
    except artifacts.ModelSourceError as e:
        raise ExportError(str(e)) from None
    if source.model is None:
        raise ExportError(f"{path!r} is a {source.kind}, not a Keras model: export from the model "
                          "dir or .keras file it was made from")
    return source


# ----------------------------------------------------------------- signatures


def _check_image_sizes(images: tf.Tensor) -> tf.Tensor:
    """Asserts that every image has a positive height and width."""
    shape = tf.shape(images)
    check = tf.debugging.assert_positive(
        shape[-3:-1], message="image has zero height or width")
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _checked_decoder(max_image_pixels: int, exif_orientation: str):
    """Encoded bytes -> RGB uint8 of a positive size, refused above `max_image_pixels`."""
    image_input.check_max_pixels(max_image_pixels)

    def decode(encoded):
        return _check_image_sizes(preprocessing.decode_image(encoded, max_image_pixels, exif_orientation))
    return decode


def _serve_function(source: ExportSource):
    """The one concrete `serve` function: (N, H, W, 3) RGB 0..255 float32 at
    the model size -> probabilities, thresholded labels and (ALM) boxes."""
    model = source.model
    height, width = source.image_size
    thresholds = tf.constant(source.thresholds, tf.float32)
    has_boxes = names.BOXES_OUTPUT in model.output

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)],
                 autograph=False, jit_compile=False)
    def serve(images_at_size):
        outputs = model(preprocessing.normalize_images(images_at_size), training=False)
        probabilities = tf.sigmoid(tf.cast(outputs[names.FUSED_OUTPUT], tf.float32))
        result = {
            F.PROBABILITIES: probabilities,
            F.LABELS: tf.cast(probabilities > thresholds, tf.int32),
        }
        if has_boxes:
            result[F.BOXES] = tf.cast(outputs[names.BOXES_OUTPUT], tf.float32)
        return result

    # The endpoints call this one concrete function: calling the tf.function
    # itself traced the model twice (its first call's variable-creation
    # trace, then the call's own), one full model trace more per export.
    return serve.get_concrete_function()


def _metadata_values(source: ExportSource, num_levels: int, model_version: int,
                     max_image_pixels: int) -> dict:
    """The metadata endpoint's constants (see the module docstring)."""
    height, width = source.image_size
    return {
        "attributes": tf.constant(list(source.attributes), tf.string),
        "thresholds": tf.constant(source.thresholds, tf.float32),
        "image_height": tf.constant(height, tf.int32),
        "image_width": tf.constant(width, tf.int32),
        "num_levels": tf.constant(num_levels, tf.int32),
        "model_name": tf.constant(source.model.name, tf.string),
        "groups": tf.constant(source.groups.to_json(), tf.string),
        "model_version": tf.constant(int(model_version), tf.int64),
        "project_version": tf.constant(alm_tf.__version__, tf.string),
        image_input.MAX_PIXELS_FLAG: tf.constant(max_image_pixels, tf.int64),
        image_input.EXIF_FLAG: tf.constant(source.exif_orientation, tf.string),
    }


def make_endpoints(source: ExportSource, model_version: int = 0,
                   max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> dict:
    """The endpoint functions: name -> (python function, input signature).

    All image endpoints call one `serve` function on (N, H, W, 3) RGB
    0..255 float32 images already at the model size. The endpoints taking
    encoded bytes refuse an image whose header claims more than
    `max_image_pixels` before decoding it (InvalidArgumentError).
    """
    decode = _checked_decoder(max_image_pixels, source.exif_orientation)
    serve = _serve_function(source)
    height, width = source.image_size
    boxes_output = source.model.output.get(names.BOXES_OUTPUT)
    num_levels = 0 if boxes_output is None else int(boxes_output.shape[1])
    num_attributes = len(source.attributes)

    def from_bytes(encoded_batch):
        images = tf.map_fn(lambda encoded: preprocessing.resize_images(decode(encoded), height, width),
                           encoded_batch, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32))
        return serve(images)

    def serving_default(image_bytes):
        return from_bytes(image_bytes)

    def predict_images(images):
        images = _check_image_sizes(images)
        return serve(preprocessing.resize_images(images, height, width))

    def no_people():  # K = 0 (a frame without people): empty answers, no model call
        empty = {F.PROBABILITIES: tf.zeros([0, num_attributes], tf.float32),
                 F.LABELS: tf.zeros([0, num_attributes], tf.int32)}
        if num_levels:
            empty[F.BOXES] = tf.zeros([0, num_levels, num_attributes, 4], tf.float32)
        return empty

    def predict_boxes(image_bytes, boxes, box_indices):
        crops = people.crops_from_frames(image_bytes, boxes, box_indices, height, width, decode=decode)
        return tf.cond(tf.shape(crops)[0] > 0, lambda: serve(crops), no_people)

    def predict_examples(examples):
        features = tf.io.parse_example(
            examples, {example_keys.ENCODED: tf.io.FixedLenFeature([], tf.string)})
        return from_bytes(features[example_keys.ENCODED])

    metadata_values = _metadata_values(source, num_levels, model_version, max_image_pixels)

    def metadata():
        return {k: tf.identity(v) for k, v in metadata_values.items()}

    def encoded(name):
        return tf.TensorSpec([None], tf.string, name=name)

    return {
        artifacts.DEFAULT_SIGNATURE: (serving_default, [encoded(artifacts.IMAGE_BYTES_INPUT)]),
        artifacts.IMAGES_SIGNATURE: (predict_images, [tf.TensorSpec([None, None, None, 3], tf.float32,
                                                                    name=artifacts.IMAGES_INPUT)]),
        artifacts.EXAMPLES_SIGNATURE: (predict_examples, [encoded(artifacts.EXAMPLES_INPUT)]),
        artifacts.BOXES_SIGNATURE: (predict_boxes, [
            encoded(artifacts.IMAGE_BYTES_INPUT),
            tf.TensorSpec([None, 4], tf.float32, name=artifacts.BOXES_INPUT),
            tf.TensorSpec([None], tf.int32, name=artifacts.BOX_INDICES_INPUT)]),
        artifacts.METADATA_SIGNATURE: (metadata, []),
    }


def build_archive(source: ExportSource, model_version: int = 0,
                  max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS,
                  ) -> keras.export.ExportArchive:
    """One ExportArchive holding the model and the four endpoints."""
    archive = keras.export.ExportArchive()
    # No archive.track(model): add_endpoint collects the variables the
    # endpoints use, and a tracked Keras model costs one more full trace
    # at save time (its `_default_save_signature`).
    for name, (fn, signature) in make_endpoints(source, model_version, max_image_pixels).items():
        if signature:
            archive.add_endpoint(name, fn, input_signature=signature)
        else:  # no inputs: hand over a traced tf.function
            traced = tf.function(fn, autograph=False)
            traced.get_concrete_function()
            archive.add_endpoint(name, traced)
    return archive


# --------------------------------------------------------------------- warmup


def warmup_image(height: int, width: int) -> np.ndarray:
    """A deterministic RGB uint8 test picture (gradients), (height, width, 3)."""
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    return np.stack([np.broadcast_to(y, (height, width)),
                     np.broadcast_to(x, (height, width)),
                     (y + x) / 2.0 * np.ones((height, width), np.float32)], -1).astype(np.uint8)


def warmup_requests(image_size: tuple[int, int], model_name: str = names.MODEL_NAME):
    """PredictionLog protos: serving_default and predict_boxes (row layout) at
    every WARMUP_BATCH_SIZES, the others at 1."""

    picture = warmup_image(*image_size)
    jpeg = tf.io.encode_jpeg(picture, quality=90).numpy()
    serialized = tf.train.Example(features=tf.train.Features(feature={
        example_keys.ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg]))
    })).SerializeToString()

    def log(signature, name, value=None):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        for key, tensor in (name.items() if isinstance(name, dict) else [(name, value)]):
            request.inputs[key].CopyFrom(tf.make_tensor_proto(tensor))
        return prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))

    logs = [log(artifacts.DEFAULT_SIGNATURE, artifacts.IMAGE_BYTES_INPUT, np.array([jpeg] * n, dtype=object))
            for n in WARMUP_BATCH_SIZES]
    logs.append(log(artifacts.IMAGES_SIGNATURE, artifacts.IMAGES_INPUT, picture[None].astype(np.float32)))
    logs.append(log(artifacts.EXAMPLES_SIGNATURE, artifacts.EXAMPLES_INPUT,
                    np.array([serialized], dtype=object)))
    # predict_boxes in the row layout (one frame per box, index -1), the one
    # a batching server accepts: every input's first dimension is K.
    for n in WARMUP_BATCH_SIZES:
        logs.append(log(artifacts.BOXES_SIGNATURE, {
            artifacts.IMAGE_BYTES_INPUT: np.array([jpeg] * n, dtype=object),
            artifacts.BOXES_INPUT: np.tile(np.asarray([[0.1, 0.2, 0.9, 0.8]], np.float32), (n, 1)),
            artifacts.BOX_INDICES_INPUT: np.full([n], -1, np.int32)}))
    return logs


def write_warmup(saved_model_dir: str, image_size: tuple[int, int]) -> int:
    """Writes assets.extra/tf_serving_warmup_requests; returns the record count."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    logs = warmup_requests(image_size)
    with tf.io.TFRecordWriter(path) as writer:
        for entry in logs:
            writer.write(entry.SerializeToString())
    return len(logs)


# --------------------------------------------------------------------- export


def existing_versions(export_dir: str) -> list[int]:
    """Integer-named version folders of an export dir (TF Serving's rule)."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(n) for n in os.listdir(export_dir)
                  if n.isdigit() and os.path.isdir(os.path.join(export_dir, n)))


def next_version(export_dir: str) -> int:
    versions = existing_versions(export_dir)
    return versions[-1] + 1 if versions else 1


def check_version(export_dir: str, version: Optional[int], overwrite: bool) -> str:
    """The version folder to write (`version` None: the next one); raises ExportError."""
    if version is None:
        version = next_version(export_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer. Received: version={version!r}")
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final) and not overwrite:
        raise ExportError(f"version {version} already exists: {final} (use --overwrite)")
    return final


def write_saved_model(source: ExportSource, version: int, folder: str,
                      max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """Writes the SavedModel, its assets and warmup requests into `folder`."""
    build_archive(source, version, max_image_pixels).write_out(folder, verbose=False)
    os.makedirs(os.path.join(folder, artifacts.ASSETS_DIR), exist_ok=True)
    with open(os.path.join(folder, artifacts.ASSETS_DIR, artifacts.ATTRIBUTES_ASSET), "w") as f:
        f.write("".join(f"{name}\n" for name in source.attributes))
    with open(os.path.join(folder, artifacts.ASSETS_DIR, artifacts.GROUPS_ASSET), "w") as f:
        f.write(source.groups.to_json() + "\n")
    write_warmup(folder, source.image_size)


def export_saved_model(source: ExportSource, export_dir: str, version: Optional[int] = None,
                       overwrite: bool = False, inputs: Sequence[str] = (),
                       max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> str:
    """Writes `export_dir/<version>/`; returns its path.

    Everything is written to a hidden staging folder beside it (TF Serving
    ignores names that are not integers) and swapped into place
    (`alm_tf.outputs`), so a failed export leaves nothing behind: no
    version folder, and no export dir it created.

    Raises:
        ExportError: the version exists and `overwrite` is False, or a bad
            version number.
        outputs.OutputError: the version folder contains, or lies inside,
            one of `inputs` (the model it exports).
    """
    final = check_version(export_dir, version, overwrite)
    with outputs.replaced_dir(final, overwrite=overwrite, inputs=inputs, flag="--export_dir") as staging:
        write_saved_model(source, int(os.path.basename(final)), staging, max_image_pixels)
    logging.info("exported %s to %s", source.origin, final)
    return final
