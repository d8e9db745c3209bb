"""What a model leaves on disk, and the one way to load it.

Layout of a trainer's model dir M (CONTRACT.md):
  M/config.json      format 2: `model` (the `ModelConfig`, stored once),
                     `attributes`, `preprocessing`, `data` (data_dir,
                     manifest, dataset, splits, loss priors), `train` (the
                     TrainConfig's training fields); format 1 (older runs)
                     is read too
  M/checkpoints/     tf.train.Checkpoint files (model, optimizer, step,
                     epoch, best validation mA, RNG state)
  M/logs/train, M/logs/validation   TensorBoard event files
  M/final.keras      weights at the end of training
  M/best.keras       weights with the best validation mA
  M/thresholds.json  optional per-attribute thresholds (alm-evaluate)

A `.keras` file written by this project (the trainer, `alm-import-torch`)
carries its own description inside the zip, as `alm_tf.json` beside Keras'
files: attribute names, the model config, thresholds, preprocessing, the
attribute groups (`alm_tf.groups`).
Older files are read with their sidecars: `<stem>.attributes.txt`, or the
config.json (and thresholds.json) of the model dir they sit in.

`load(source)` turns every model source a binary accepts into one
`LoadedModel`: a model dir, a `.keras` file, a SavedModel from alm-export
(`E/N`, or `E` for its highest version). Its `predict` takes RGB 0..255
images at the model's input size and answers `probabilities`, `labels`
(after the thresholds) and, for ALM models, `boxes`; a Keras model also
answers its logits (`logits` and each branch). Names are never invented:
a model without attribute names is refused. `predict_boxes` answers person
boxes in frames (`alm_tf.people`), `answers` turns outputs into readable
answers with the model's attribute groups (`groups`: recorded in
config.json, the .keras description or the SavedModel's
assets/groups.json; else the known groups of its attribute list).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
import numpy as np
import tensorflow as tf

import alm_tf
from alm_tf import groups as groups_lib
from alm_tf import names, people
from alm_tf.config import ModelConfig
from alm_tf.data import preprocessing

CONFIG_NAME = "config.json"
THRESHOLDS_NAME = "thresholds.json"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
#: Which weights of a model dir: `final` (end of training) or `best`.
WEIGHTS = ("final", "best")
CONFIG_FORMAT = 2
#: The description a `.keras` file of this project carries inside its zip.
KERAS_METADATA = "alm_tf.json"
#: Sidecar with attribute names of `.keras` files written before KERAS_METADATA.
ATTRIBUTES_SIDECAR = ".attributes.txt"
#: SavedModel layout (alm-export): names one a line, the metadata signature.
SAVED_MODEL_FILE = "saved_model.pb"
ATTRIBUTES_ASSET = "attributes.txt"
GROUPS_ASSET = "groups.json"
#: The config.json / .keras description key holding the groups description.
GROUPS_KEY = "groups"
BOXES_SIGNATURE = "predict_boxes"
METADATA_SIGNATURE = "metadata"
DEFAULT_THRESHOLD = 0.5


class ModelSourceError(ValueError):
    """A model source that cannot be loaded; the message is one line naming it."""


# ------------------------------------------------------------------ layout


def config_path(model_dir: str) -> str:
    return os.path.join(model_dir, CONFIG_NAME)


def thresholds_path(model_dir: str) -> str:
    return os.path.join(model_dir, THRESHOLDS_NAME)


def weights_path(model_dir: str, which: str = "final") -> str:
    if which not in WEIGHTS:
        raise ModelSourceError(f"which must be one of {list(WEIGHTS)}. Received: which={which!r}")
    return os.path.join(model_dir, f"{which}.keras")


def checkpoints_dir(model_dir: str) -> str:
    return os.path.join(model_dir, CHECKPOINTS_DIR)


def logs_dir(model_dir: str, kind: str) -> str:
    return os.path.join(model_dir, LOGS_DIR, kind)


def is_model_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(config_path(path))


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically (temp file + rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ModelSourceError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None


def read_config(model_dir: str) -> dict:
    """A model dir's config.json (format 1 or 2)."""
    path = config_path(model_dir)
    if not os.path.isfile(path):
        raise ModelSourceError(f"no {CONFIG_NAME} in model dir {model_dir!r}")
    config = _read_json(path)
    if not isinstance(config, dict) or "model" not in config or "attributes" not in config:
        raise ModelSourceError(f"{path} is not a model dir's config (no 'model' or 'attributes')")
    return config


def model_config_of(config: dict, origin: str) -> ModelConfig:
    """The ModelConfig stored in a config.json / .keras description."""
    try:
        return ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelSourceError(f"{origin}: bad model config: {e}") from None


def check_names_and_thresholds(attributes: Sequence[str], thresholds: Optional[Sequence[float]],
                               num_outputs: int, origin: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Names and thresholds that fit a model with `num_outputs` attributes (0.5 by default)."""
    attributes = tuple(str(a) for a in attributes)
    if len(attributes) != num_outputs:
        raise ModelSourceError(f"{origin}: {len(attributes)} attribute names for a model with "
                               f"{num_outputs} outputs")
    if any(not a or "\n" in a for a in attributes):
        raise ModelSourceError(f"{origin}: attribute names must be non-empty single lines")
    if thresholds is None:
        thresholds = [DEFAULT_THRESHOLD] * num_outputs
    try:
        thresholds = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise ModelSourceError(f"{origin}: thresholds must be numbers") from None
    if len(thresholds) != num_outputs:
        raise ModelSourceError(f"{origin}: {len(thresholds)} thresholds for {num_outputs} attributes")
    bad = [t for t in thresholds if not (np.isfinite(t) and 0.0 <= t <= 1.0)]
    if bad:
        raise ModelSourceError(f"{origin}: thresholds must lie in [0, 1]. Received: {bad[0]}")
    return attributes, thresholds


def read_thresholds(model_dir: str, attributes: Sequence[str]) -> Optional[list[float]]:
    """Per-attribute thresholds from `model_dir`/thresholds.json, or None.

    Refuses a file tuned for other attributes than `attributes`.
    """
    path = thresholds_path(model_dir)
    if not os.path.isfile(path):
        return None
    payload = _read_json(path)
    tuned_for = payload.get("attributes") if isinstance(payload, dict) else None
    if tuned_for is not None and list(tuned_for) != list(attributes):
        raise ModelSourceError(f"{path} was tuned for other attributes than the model's")
    values = payload.get("thresholds") if isinstance(payload, dict) else None
    if isinstance(values, dict):
        missing = [a for a in attributes if a not in values]
        if missing:
            raise ModelSourceError(f"{path} has no threshold for attribute {missing[0]!r}")
        values = [values[a] for a in attributes]
    if not isinstance(values, list):
        raise ModelSourceError(f"{path} has no 'thresholds' list")
    return values


def write_thresholds(path: str, attributes: Sequence[str], thresholds: Sequence[float],
                     split: str) -> None:
    write_json(path, {"split": split, "attributes": list(attributes),
                      "thresholds": [float(t) for t in thresholds]})


def read_attributes_file(path: str) -> list[str]:
    """Attribute names: one a line (txt), a JSON list, or a JSON object with `attributes`."""
    if not os.path.isfile(path):
        raise ModelSourceError(f"attributes file not found: {path!r}")
    if path.endswith(".json"):
        payload = _read_json(path)
        values = payload.get("attributes") if isinstance(payload, dict) else payload
        if not isinstance(values, list):
            raise ModelSourceError(f"{path} holds no list of attribute names")
    else:
        with open(path, encoding="utf-8") as f:
            values = [line.strip() for line in f if line.strip()]
    if not values:
        raise ModelSourceError(f"no attribute names in {path}")
    return [str(v) for v in values]


# ------------------------------------------------------------- .keras files


def keras_description(attributes: Sequence[str], model_config: Optional[ModelConfig] = None,
                      thresholds: Optional[Sequence[float]] = None,
                      image_size: Optional[Sequence[int]] = None,
                      groups: Optional[dict] = None) -> dict:
    """What a `.keras` file of this project carries about itself (KERAS_METADATA).

    `groups`: a groups description (`AttributeGroups.description()`);
    default: the known groups of `attributes` (`alm_tf.groups.infer`).
    """
    if image_size is None and model_config is not None:
        image_size = model_config.image_size
    if groups is None:
        groups = groups_lib.infer(attributes).description()
    return {
        GROUPS_KEY: groups,
        "format_version": 1,
        "project_version": alm_tf.__version__,
        "attributes": list(attributes),
        "model": model_config.to_dict() if model_config is not None else None,
        "thresholds": None if thresholds is None else [float(t) for t in thresholds],
        "preprocessing": preprocessing.description(*image_size) if image_size else None,
    }


def save_keras(model: keras.Model, path: str, description: dict, *, overwrite: bool = True) -> str:
    """Saves `model` to `path` (.keras) with `description` inside, atomically."""
    if not str(path).endswith(".keras"):
        raise ModelSourceError(f"a Keras model file must end with '.keras'. Received: {str(path)!r}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(KERAS_METADATA, json.dumps(description, indent=2, sort_keys=True))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return str(path)


def read_keras_description(path: str) -> Optional[dict]:
    """The KERAS_METADATA of a `.keras` file, or None (older files)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if KERAS_METADATA not in archive.namelist():
                return None
            return json.loads(archive.read(KERAS_METADATA))
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError):
        return None


def load_keras_model(path: str) -> keras.Model:
    """`keras.saving.load_model` with one-line errors that name the real problem."""
    if os.path.isdir(path):
        raise ModelSourceError(f"{path!r} is a folder, not a .keras file")
    if not os.path.isfile(path):
        raise ModelSourceError(f"no such .keras file: {path!r}")
    if not zipfile.is_zipfile(path):
        raise ModelSourceError(f"{path!r} is not a .keras file (not a zip archive)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001  any failure is a bad file
        message = " ".join(str(e).split())[:200] or type(e).__name__
        raise ModelSourceError(f"cannot load {path!r}: {message}") from None


def _replace_float_policies(node):
    """A copy of a Keras config with every mixed dtype policy made float32."""
    if isinstance(node, dict):
        node = {k: _replace_float_policies(v) for k, v in node.items()}
        if (node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
                and isinstance(node.get("config"), dict)
                and str(node["config"].get("name", "")).startswith("mixed_")):
            node["config"] = dict(node["config"], name="float32")
        return node
    if isinstance(node, list):
        return [_replace_float_policies(v) for v in node]
    if isinstance(node, str) and node.startswith("mixed_"):
        return "float32"
    return node


def _leaf_layers(model):
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from _leaf_layers(layer)
        else:
            yield layer


def as_float32(model: keras.Model) -> keras.Model:
    """The model itself when all layers compute in float32, else a float32 copy."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in _leaf_layers(model)):
        return model
    config = _replace_float_policies(model.get_config())
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


# ------------------------------------------------------------- the loader


@dataclasses.dataclass
class LoadedModel:
    """A model from any source, and what ships with it.

    Attributes:
        kind: `keras` (a model dir or .keras file) or `saved_model`.
        origin: the file or folder loaded.
        attributes, thresholds: one per attribute.
        image_size: (height, width) the model takes.
        predict: RGB 0..255 float32 (N, H, W, 3) at `image_size` -> dict of
            numpy arrays (`probabilities`, `labels`, `boxes` for ALM
            models; a Keras model also `logits` and each branch's logits).
        predict_encoded: list of encoded images (JPEG/PNG/...) -> the same
            dict; decoded and resized with `alm_tf.data.preprocessing`
            (a SavedModel runs its own `serving_default`).
        model: the float32 Keras model (kind `keras`), else None.
        model_config: its ModelConfig when known.
        model_dir: the model dir it came from, if any.
        num_levels: ALM levels with boxes (0 for a baseline).
        groups: its `alm_tf.groups.AttributeGroups` (default: the known
            groups of its attribute list, else none).
        boxes_signature: a SavedModel's `predict_boxes` (None otherwise).
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

    def __post_init__(self) -> None:
        if self.predict_encoded is None:
            self.predict_encoded = self._decode_and_predict
        if self.groups is None:
            self.groups = groups_lib.infer(self.attributes)
        elif tuple(self.groups.attributes) != tuple(self.attributes):
            raise ModelSourceError(f"{self.origin}: its groups describe other attributes than its own")

    def predict_boxes(self, frames: Sequence, boxes, box_indices) -> dict:
        """Answers per person box: `predict` on each box's crop (`alm_tf.people.predict_boxes`).

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
        labels = groups_lib.relabel(outputs["probabilities"], outputs["labels"], thresholds,
                                    self.attributes)
        return self.groups.answers(outputs["probabilities"], labels)

    @property
    def has_boxes(self) -> bool:
        return self.num_levels > 0

    @property
    def preprocessing(self) -> dict:
        return preprocessing.description(*self.image_size)

    def _decode_and_predict(self, encoded: Sequence[bytes]) -> dict:
        height, width = self.image_size
        images = tf.stack([preprocessing.resize_images(preprocessing.decode_image(e), height, width)
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
        out["probabilities"] = tf.sigmoid(out[names.FUSED_OUTPUT]).numpy()
        out["labels"] = _threshold_outputs(out["probabilities"], cut)
        return out

    return LoadedModel("keras", origin, attributes, thresholds, (height, width), predict,
                       model=model, model_config=model_config, model_dir=model_dir,
                       num_levels=num_levels)


def from_keras_model(model: keras.Model, attributes: Sequence[str],
                     thresholds: Optional[Sequence[float]] = None, origin: str = "<in memory>",
                     model_config: Optional[ModelConfig] = None) -> LoadedModel:
    """A Keras model in memory as a LoadedModel (benchmarks, tests, the exporter)."""
    return _keras_loaded(model, attributes, thresholds, origin, model_config=model_config)


def _sidecar_attributes(path: str) -> Optional[list[str]]:
    sidecar = path[: -len(".keras")] + ATTRIBUTES_SIDECAR
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
    missing = [s for s in ("serving_default", "predict_images", METADATA_SIGNATURE) if s not in signatures]
    if missing:
        raise ModelSourceError(f"SavedModel {path!r} has no {missing[0]!r} signature: not one "
                               "alm-export wrote")
    meta = {k: v.numpy() for k, v in signatures[METADATA_SIGNATURE]().items()}
    asset = os.path.join(path, "assets", ATTRIBUTES_ASSET)
    names_found = (list(attributes) if attributes else read_attributes_file(asset) if os.path.isfile(asset)
                   else [a.decode("utf-8") for a in meta["attributes"].tolist()])
    height, width = int(meta["image_height"]), int(meta["image_width"])
    attributes_, thresholds = check_names_and_thresholds(
        names_found, meta["thresholds"].tolist(), len(meta["thresholds"]), path)
    groups_file = os.path.join(path, "assets", GROUPS_ASSET)
    if os.path.isfile(groups_file):
        stored = _read_json(groups_file)
    else:  # the metadata signature carries the same JSON
        stored = json.loads(meta["groups"].decode("utf-8")) if "groups" in meta else None
    if attributes and isinstance(stored, dict) and stored.get("attributes") != list(attributes_):
        stored = None  # names given by the caller: the stored groups do not apply
    groups = _groups_of(stored, attributes_, path)
    images_fn, bytes_fn = signatures["predict_images"], signatures["serving_default"]
    keys = ("probabilities", "labels", "boxes")

    def predict(images) -> dict:
        out = images_fn(images=tf.cast(images, tf.float32))
        return {k: v.numpy() for k, v in out.items() if k in keys}

    def predict_encoded(encoded: Sequence[bytes]) -> dict:
        out = bytes_fn(image_bytes=tf.constant(list(encoded), tf.string))
        return {k: v.numpy() for k, v in out.items() if k in keys}

    return LoadedModel("saved_model", path, attributes_, thresholds, (height, width), predict,
                       predict_encoded=predict_encoded, num_levels=int(meta["num_levels"]),
                       handle=loaded, groups=groups,
                       boxes_signature=signatures[BOXES_SIGNATURE] if BOXES_SIGNATURE in signatures else None)


def load(source: str, *, which: str = "final", attributes: Optional[Sequence[str]] = None,
         attributes_file: Optional[str] = None, groups_file: Optional[str] = None) -> LoadedModel:
    """Loads any model source a binary accepts (see the module docstring).

    Args:
        source: a model dir, a `.keras` file, or a SavedModel (`E/N` or `E`).
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
    if os.path.isfile(source) and source.endswith(".keras"):
        return load_keras_file(source, attributes)
    if os.path.isdir(source):
        raise ModelSourceError(f"{source!r} is a folder with neither {CONFIG_NAME} (a model dir) nor "
                               f"{SAVED_MODEL_FILE} (a SavedModel)")
    raise ModelSourceError(f"model must be a model dir, a .keras file or a SavedModel. "
                           f"Received: {source!r}")


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


def copy_model_file(source: str, target: str) -> None:
    """Copies a file atomically (temp name + rename)."""
    shutil.copyfile(source, f"{target}.tmp")
    os.replace(f"{target}.tmp", target)
