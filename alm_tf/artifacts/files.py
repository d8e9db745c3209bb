"""Files a model leaves on disk: the model-dir layout, config.json,
thresholds, `.keras` files that carry their description, SavedModel names.

See `alm_tf.artifacts` for the layout.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from typing import Any, Optional

import keras
import numpy as np

import alm_tf
from alm_tf import groups as groups_lib
from alm_tf import outputs
from alm_tf.config import ModelConfig
from alm_tf.preprocessing import pixels as preprocessing

CONFIG_NAME = "config.json"
THRESHOLDS_NAME = "thresholds.json"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
#: Which weights of a model dir: `final` (end of training) or `best`.
WEIGHTS = ("final", "best")
CONFIG_FORMAT = 2
#: The file name ending of a Keras model file.
KERAS_SUFFIX = ".keras"
#: The description a `.keras` file of this project carries inside its zip.
KERAS_METADATA = "alm_tf.json"
#: Sidecar with attribute names of `.keras` files written before KERAS_METADATA.
ATTRIBUTES_SIDECAR = ".attributes.txt"
#: SavedModel layout (alm-export): assets/attributes.txt (names one a line), assets/groups.json.
SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"
ATTRIBUTES_ASSET = "attributes.txt"
GROUPS_ASSET = "groups.json"
#: The config.json / .keras description key holding the groups description.
GROUPS_KEY = "groups"
#: The SavedModel's endpoints: encoded images, decoded images, tf.Examples,
#: frames with person boxes, and the description of the model.
DEFAULT_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "predict_images"
EXAMPLES_SIGNATURE = "predict_examples"
BOXES_SIGNATURE = "predict_boxes"
METADATA_SIGNATURE = "metadata"
#: The endpoints that answer one row per image.
IMAGE_SIGNATURES = (DEFAULT_SIGNATURE, IMAGES_SIGNATURE, EXAMPLES_SIGNATURE)
#: Input names: DEFAULT_SIGNATURE takes IMAGE_BYTES_INPUT, IMAGES_SIGNATURE
#: IMAGES_INPUT, EXAMPLES_SIGNATURE EXAMPLES_INPUT, BOXES_SIGNATURE
#: IMAGE_BYTES_INPUT (frames), BOXES_INPUT and BOX_INDICES_INPUT.
IMAGE_BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
EXAMPLES_INPUT = "examples"
BOXES_INPUT = "boxes"
BOX_INDICES_INPUT = "box_indices"
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


def read_json(path: str) -> Any:
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
    config = read_json(path)
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
    payload = read_json(path)
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
        payload = read_json(path)
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
        "preprocessing": (preprocessing.description(*image_size, *(
            [model_config.exif_orientation] if model_config is not None else []))
                          if image_size else None),
    }


def save_keras(model: keras.Model, path: str, description: dict, *, overwrite: bool = True) -> str:
    """Saves `model` to `path` (.keras) with `description` inside, atomically,
    with the user's umask."""
    if not str(path).endswith(KERAS_SUFFIX):
        raise ModelSourceError(f"a Keras model file must end with '.keras'. Received: {str(path)!r}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A fresh name, not mkstemp: the file gets the user's umask (mkstemp's
    # is 0600), and the pid in the name tells a dead run's leftover.
    tmp = outputs.temp_name(folder, KERAS_SUFFIX)
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


def leaf_layers(model):
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from leaf_layers(layer)
        else:
            yield layer


def as_float32(model: keras.Model) -> keras.Model:
    """The model itself when all layers compute in float32, else a float32 copy."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in leaf_layers(model)):
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


def copy_model_file(source: str, target: str) -> None:
    """Copies a file atomically (temp name + rename)."""
    shutil.copyfile(source, f"{target}.tmp")
    os.replace(f"{target}.tmp", target)
