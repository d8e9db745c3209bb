"""The one loader: every model source a binary accepts -> `LoadedModel`.

See `alm_tf.artifacts` for the sources and what a LoadedModel answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
import numpy as np
import tensorflow as tf

from alm_tf import groups as groups_lib
from alm_tf import names
from alm_tf.preprocessing import crops as people
from alm_tf.artifacts.files import (ASSETS_DIR, ATTRIBUTES_ASSET, ATTRIBUTES_SIDECAR, BOXES_SIGNATURE,
                                    CONFIG_NAME, DEFAULT_SIGNATURE, GROUPS_ASSET, GROUPS_KEY,
                                    IMAGES_SIGNATURE, KERAS_SUFFIX, METADATA_SIGNATURE, read_json,
                                    SAVED_MODEL_FILE, ModelSourceError, as_float32,
                                    check_names_and_thresholds, config_path, is_model_dir,
                                    load_keras_model, model_config_of, read_attributes_file,
                                    read_config, read_keras_description, read_thresholds,
                                    thresholds_path, weights_path)
from alm_tf.config import ModelConfig
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.artifacts import formats
from alm_tf.artifacts import runtimes


@dataclasses.dataclass
class LoadedModel:
    """A model from any source, and what ships with it.

    Attributes:
        kind: `keras` (a model dir or .keras file), `saved_model`, or the
            portable format (`onnx`, `litert`, `openvino`).
        origin: the file or folder loaded.
        attributes, thresholds: one per attribute.
        image_size: (height, width) the model takes.
        predict: RGB 0..255 float32 (N, H, W, 3) at `image_size` -> dict of
            numpy arrays (`probabilities`, `labels`, `boxes` for ALM
            models; a Keras model also `logits` and each branch's logits).
        predict_encoded: list of encoded images (JPEG/PNG/...) -> the same
            dict; decoded and resized with `alm_tf.preprocessing.pixels`
            (a SavedModel runs its own `serving_default`).
        model: the float32 Keras model (kind `keras`), else None.
        model_config: its ModelConfig when known.
        model_dir: the model dir it came from, if any.
        num_levels: ALM levels with boxes (0 for a baseline).
        groups: its `alm_tf.groups.AttributeGroups` (default: the known
            groups of its attribute list, else none).
        boxes_signature: a SavedModel's `predict_boxes` (None otherwise).
        max_image_pixels: the decoded-size limit of `predict_encoded`
            (`alm_tf.preprocessing.image_input`); a SavedModel's is the one it was
            exported with (its metadata), else settable by the caller.
        exif_orientation: how `predict_encoded` treats a JPEG's EXIF
            Orientation (`ModelConfig.exif_orientation`; a SavedModel's
            from its metadata).
    """

    kind: str
    origin: str
    attributes: tuple[str, ...]
    thresholds: tuple[float, ...]
    image_size: tuple[int, int]
    predict: Callable[[Any], dict]
    predict_encoded: Optional[Callable[[Sequence[bytes]], dict]] = None
    model: Optional[keras.Model] = None
    model_config: Optional[ModelConfig] = None
    model_dir: Optional[str] = None
    num_levels: int = 0
    handle: Any = None  # keeps a SavedModel's resources alive
    groups: Optional[groups_lib.AttributeGroups] = None
    boxes_signature: Optional[Callable] = None
    max_image_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION

    def __post_init__(self) -> None:
        if self.predict_encoded is None:
            self.predict_encoded = self._decode_and_predict
        if self.groups is None:
            self.groups = groups_lib.infer(self.attributes)
        elif tuple(self.groups.attributes) != tuple(self.attributes):
            raise ModelSourceError(f"{self.origin}: its groups describe other attributes than its own")

    def predict_boxes(self, frames: Sequence, boxes, box_indices) -> dict:
        """Answers per person box: `predict` on each box's crop (`alm_tf.preprocessing.crops.predict_boxes`).

        frames: F encoded frames (bytes) or decoded RGB arrays (H, W, 3);
        boxes: (K, 4) normalized [y1, x1, y2, x2]; box_indices: (K,) the
        frame of each box (negative: frame k for box k). A SavedModel given
        encoded frames runs its `predict_boxes` signature.
        """
        return people.predict_boxes(self, frames, boxes, box_indices)

    def answers(self, outputs: dict, thresholds: groups_lib.ThresholdSpec = None) -> list[dict]:
        """Readable answers (`alm_tf.groups`) of `predict`-style outputs, one per row.

        `thresholds`: per-request thresholds (a float, one per attribute, a
        name -> value map); default the model's (its `labels`).
        """
        labels = groups_lib.relabel(outputs[formats.PROBABILITIES], outputs[formats.LABELS], thresholds,
                                    self.attributes)
        return self.groups.answers(outputs[formats.PROBABILITIES], labels)

    @property
    def has_boxes(self) -> bool:
        return self.num_levels > 0

    @property
    def preprocessing(self) -> dict:
        return preprocessing.description(*self.image_size, self.exif_orientation)

    def _decode_and_predict(self, encoded: Sequence[bytes]) -> dict:
        height, width = self.image_size
        images = tf.stack([preprocessing.resize_images(
            preprocessing.decode_image(e, self.max_image_pixels, self.exif_orientation), height, width)
                           for e in encoded])
        return self.predict(images)


def _threshold_outputs(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return (probabilities > thresholds).astype(np.int32)


def _keras_loaded(model: keras.Model, attributes, thresholds, origin: str, *,
                  model_config: Optional[ModelConfig] = None, model_dir: Optional[str] = None) -> LoadedModel:
    model = as_float32(model)
    outputs = model.output
    if not isinstance(outputs, dict) or names.FUSED_OUTPUT not in outputs:
        raise ModelSourceError(f"{origin} is not an ALM model (no '{names.FUSED_OUTPUT}' output)")
    num = int(outputs[names.FUSED_OUTPUT].shape[-1])
    attributes, thresholds = check_names_and_thresholds(attributes, thresholds, num, origin)
    height, width = (int(d) for d in model.inputs[0].shape[1:3])
    num_levels = int(outputs[names.BOXES_OUTPUT].shape[1]) if names.BOXES_OUTPUT in outputs else 0
    cut = np.asarray(thresholds, np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
    def forward(images):
        return model(preprocessing.normalize_images(images), training=False)

    def predict(images) -> dict:
        out = {k: np.asarray(v) for k, v in forward(tf.cast(images, tf.float32)).items()}
        out[formats.PROBABILITIES] = tf.sigmoid(out[names.FUSED_OUTPUT]).numpy()
        out[formats.LABELS] = _threshold_outputs(out[formats.PROBABILITIES], cut)
        return out

    return LoadedModel("keras", origin, attributes, thresholds, (height, width), predict,
                       model=model, model_config=model_config, model_dir=model_dir,
                       exif_orientation=(model_config.exif_orientation if model_config
                                         else image_input.DEFAULT_EXIF_ORIENTATION),
                       num_levels=num_levels)


def from_keras_model(model: keras.Model, attributes: Sequence[str],
                     thresholds: Optional[Sequence[float]] = None, origin: str = "<in memory>",
                     model_config: Optional[ModelConfig] = None) -> LoadedModel:
    """A Keras model in memory as a LoadedModel (benchmarks, tests, the exporter)."""
    return _keras_loaded(model, attributes, thresholds, origin, model_config=model_config)


def _sidecar_attributes(path: str) -> Optional[list[str]]:
    sidecar = path[: -len(KERAS_SUFFIX)] + ATTRIBUTES_SIDECAR
    return read_attributes_file(sidecar) if os.path.isfile(sidecar) else None


def load_keras_file(path: str, attributes: Optional[Sequence[str]] = None) -> LoadedModel:
    """A `.keras` file with its description (or sidecars, see the module doc)."""
    description = read_keras_description(path) if os.path.isfile(path) else None
    model = load_keras_model(path)
    folder = os.path.dirname(os.path.abspath(path))
    thresholds, model_config, model_dir, stored_groups, dataset = None, None, None, None, None
    if description:
        names_found = description.get("attributes")
        thresholds = description.get("thresholds")
        stored_groups = description.get(GROUPS_KEY)
        if description.get("model"):
            model_config = model_config_of(description, path)
    else:
        names_found = _sidecar_attributes(path)
        if names_found is None and is_model_dir(folder):
            config = read_config(folder)
            names_found, model_dir = config["attributes"], folder
            model_config = model_config_of(config, config_path(folder))
            stored_groups, dataset = config.get(GROUPS_KEY), _dataset_of(config)
    if is_model_dir(folder) and os.path.isfile(thresholds_path(folder)):
        thresholds = read_thresholds(folder, attributes or names_found or [])
    names_found = list(attributes) if attributes else names_found
    if not names_found:
        raise ModelSourceError(f"no attribute names for {path!r}: it carries none, and there is no "
                               f"{os.path.basename(path)[:-len('.keras')]}{ATTRIBUTES_SIDECAR} or "
                               f"{CONFIG_NAME} beside it (pass an attributes file)")
    loaded = _keras_loaded(model, names_found, thresholds, path, model_config=model_config,
                           model_dir=model_dir)
    loaded.groups = _groups_of(stored_groups, loaded.attributes, path, dataset)
    return loaded


def load_model_dir(model_dir: str, which: str = "final",
                   attributes: Optional[Sequence[str]] = None) -> LoadedModel:
    """A trainer's model dir: `which`.keras, names from config.json, thresholds.json."""
    config = read_config(model_dir)
    model_config = model_config_of(config, config_path(model_dir))
    weights = weights_path(model_dir, which)
    if not os.path.isfile(weights):
        raise ModelSourceError(f"{weights} does not exist (train first?)")
    names_found = list(attributes) if attributes else config["attributes"]
    thresholds = read_thresholds(model_dir, names_found)
    loaded = _keras_loaded(load_keras_model(weights), names_found, thresholds, weights,
                           model_config=model_config, model_dir=model_dir)
    loaded.groups = _groups_of(config.get(GROUPS_KEY), loaded.attributes, config_path(model_dir),
                               _dataset_of(config))
    return loaded


def resolve_saved_model_dir(path: str) -> Optional[str]:
    """`path` if it holds saved_model.pb, else its highest numeric version subdir, else None."""
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    if not os.path.isdir(path):
        return None
    versions = [d for d in os.listdir(path)
                if d.isdigit() and os.path.isfile(os.path.join(path, d, SAVED_MODEL_FILE))]
    return os.path.join(path, max(versions, key=int)) if versions else None


def load_saved_model(path: str, attributes: Optional[Sequence[str]] = None) -> LoadedModel:
    """A SavedModel from alm-export: `predict_images`, `serving_default`, `metadata`."""
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001  a damaged SavedModel
        message = " ".join(str(e).split())[:200] or type(e).__name__
        raise ModelSourceError(f"cannot load SavedModel {path!r}: {message}") from None
    signatures = loaded.signatures
    missing = [s for s in (DEFAULT_SIGNATURE, IMAGES_SIGNATURE, METADATA_SIGNATURE) if s not in signatures]
    if missing:
        raise ModelSourceError(f"SavedModel {path!r} has no {missing[0]!r} signature: not one "
                               "alm-export wrote")
    meta = {k: v.numpy() for k, v in signatures[METADATA_SIGNATURE]().items()}
    asset = os.path.join(path, ASSETS_DIR, ATTRIBUTES_ASSET)
    names_found = (list(attributes) if attributes else read_attributes_file(asset) if os.path.isfile(asset)
                   else [a.decode("utf-8") for a in meta["attributes"].tolist()])
    height, width = int(meta["image_height"]), int(meta["image_width"])
    attributes_, thresholds = check_names_and_thresholds(
        names_found, meta["thresholds"].tolist(), len(meta["thresholds"]), path)
    groups_file = os.path.join(path, ASSETS_DIR, GROUPS_ASSET)
    if os.path.isfile(groups_file):
        stored = read_json(groups_file)
    else:  # the metadata signature carries the same JSON
        stored = json.loads(meta["groups"].decode("utf-8")) if "groups" in meta else None
    if attributes and isinstance(stored, dict) and stored.get("attributes") != list(attributes_):
        stored = None  # names given by the caller: the stored groups do not apply
    groups = _groups_of(stored, attributes_, path)
    images_fn, bytes_fn = signatures[IMAGES_SIGNATURE], signatures[DEFAULT_SIGNATURE]
    keys = formats.ANSWER_KEYS

    def predict(images) -> dict:
        out = images_fn(images=tf.cast(images, tf.float32))
        return {k: v.numpy() for k, v in out.items() if k in keys}

    def predict_encoded(encoded: Sequence[bytes]) -> dict:
        out = bytes_fn(image_bytes=tf.constant(list(encoded), tf.string))
        return {k: v.numpy() for k, v in out.items() if k in keys}

    return LoadedModel("saved_model", path, attributes_, thresholds, (height, width), predict,
                       predict_encoded=predict_encoded, num_levels=int(meta["num_levels"]),
                       handle=loaded, groups=groups,
                       boxes_signature=signatures.get(BOXES_SIGNATURE),
                       max_image_pixels=int(meta.get(image_input.MAX_PIXELS_FLAG,
                                                     image_input.DEFAULT_MAX_IMAGE_PIXELS)),
                       exif_orientation=_text(meta.get(image_input.EXIF_FLAG,
                                                       image_input.DEFAULT_EXIF_ORIENTATION)))


def _portable_exif(metadata: dict, path: str) -> str:
    """model.json's EXIF choice (files written before it was recorded: `ignore`)."""
    outside = (metadata.get("preprocessing") or {}).get("outside_the_model") or {}
    value = outside.get(image_input.EXIF_FLAG, image_input.DEFAULT_EXIF_ORIENTATION)
    try:
        return image_input.check_exif_orientation(value)
    except ValueError as e:
        raise ModelSourceError(f"{path}: model.json: {e}") from None


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_portable(path: str, attributes: Optional[Sequence[str]] = None) -> LoadedModel:
    """A portable export (.onnx, .tflite, OpenVINO .xml) and the model.json beside it."""
    try:
        portable = runtimes.open_portable(path)
    except (runtimes.PortableModelError, ImportError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelSourceError(message if repr(path) in message
                               else f"cannot open {path!r}: {message}") from None
    names_found = list(attributes) if attributes else list(portable.attributes)
    attributes_, thresholds = check_names_and_thresholds(
        names_found, [float(t) for t in portable.thresholds], len(portable.thresholds), path)
    boxes = portable.metadata.get("outputs", {}).get(names.BOXES_OUTPUT)
    num_levels = int(boxes["shape"][1]) if boxes else 0

    def predict(images) -> dict:
        out = portable.predict(np.asarray(images, np.float32))
        out[formats.LABELS] = portable.labels(out[formats.PROBABILITIES])
        return out

    stored = portable.metadata.get(GROUPS_KEY) or None
    if attributes and isinstance(stored, dict) and stored.get("attributes") != list(attributes_):
        stored = None  # names given by the caller: the stored groups do not apply
    return LoadedModel(portable.format, path, attributes_, thresholds, tuple(portable.image_size),
                       predict, num_levels=num_levels, handle=portable,
                       groups=_groups_of(stored, attributes_, path),
                       exif_orientation=_portable_exif(portable.metadata, path))


def load(source: str, *, which: str = "final", attributes: Optional[Sequence[str]] = None,
         attributes_file: Optional[str] = None, groups_file: Optional[str] = None) -> LoadedModel:
    """Loads any model source a binary accepts (see the module docstring).

    Args:
        source: a model dir, a `.keras` file, a SavedModel (`E/N` or `E`),
            or a portable export (`.onnx`, `.tflite`, OpenVINO `.xml`, with
            the model.json alm-export writes beside it).
        which: `final` or `best` weights of a model dir.
        attributes, attributes_file: attribute names that override the
            model's own (for older files that carry none).
        groups_file: attribute groups (`alm_tf.groups`) that override the
            model's own.

    Raises:
        ModelSourceError: one line naming what is wrong.
    """
    loaded = _load(source, which, read_attributes_file(attributes_file) if attributes_file else attributes)
    if groups_file:
        try:
            loaded.groups = groups_lib.read_groups_file(groups_file, loaded.attributes)
        except groups_lib.GroupsError as e:
            raise ModelSourceError(str(e)) from None
    return loaded


def _load(source: str, which: str, attributes: Optional[Sequence[str]]) -> LoadedModel:
    if not source:
        raise ModelSourceError("no model given")
    if not os.path.exists(source):
        raise ModelSourceError(f"model not found: {source!r}")
    if is_model_dir(source):
        return load_model_dir(source, which, attributes)
    saved = resolve_saved_model_dir(source)
    if saved:
        return load_saved_model(saved, attributes)
    if os.path.isfile(source) and source.endswith(KERAS_SUFFIX):
        return load_keras_file(source, attributes)
    if os.path.isfile(source) and formats.is_portable_path(source):
        return load_portable(source, attributes)
    if os.path.isdir(source):
        raise ModelSourceError(f"{source!r} is a folder with neither {CONFIG_NAME} (a model dir) nor "
                               f"{SAVED_MODEL_FILE} (a SavedModel)")
    raise ModelSourceError(f"model must be a model dir, a .keras file, a SavedModel or a portable "
                           f"export (.onnx, .tflite, OpenVINO .xml). Received: {source!r}")


def _dataset_of(config: dict) -> Optional[str]:
    data = config.get("data")
    return data.get("dataset") if isinstance(data, dict) else None


def _groups_of(stored: Optional[dict], attributes: Sequence[str], origin: str,
               dataset: Optional[str] = None) -> groups_lib.AttributeGroups:
    """Stored groups (a description), else the known groups of the attributes."""
    if stored is None:
        return groups_lib.infer(attributes, dataset)
    try:
        return groups_lib.from_description(stored, attributes, f"{origin}: groups")
    except groups_lib.GroupsError as e:
        raise ModelSourceError(str(e)) from None
