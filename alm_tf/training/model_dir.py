"""The model directory: config.json, checkpoints, init weights, rebuilding.

Layout of a model dir M (see CONTRACT.md):
  M/config.json      everything needed to rebuild the model and its
                     preprocessing (format below)
  M/checkpoints/     tf.train.Checkpoint files (model, optimizer, step,
                     epoch, best validation mA, RNG state)
  M/logs/train, M/logs/validation   TensorBoard event files
  M/final.keras      weights at the end of training
  M/best.keras       weights with the best validation mA (= final when no
                     validation split)
  M/thresholds.json  optional per-attribute thresholds (alm-evaluate)

config.json keys: `format_version` (1), `model` (`ModelConfig.to_dict()`:
rebuild with `alm_tf.ModelConfig.from_dict(config["model"]).build()`),
`image_size` [H, W], `attributes` (names), `preprocessing` (resize method
and ImageNet mean/std on 0..1 RGB), `data_dir`, `manifest` (path),
`priors` (train positive ratios used by the loss), `train` (every
TrainConfig field), `threshold` (0.5).
"""

from __future__ import annotations

import json
import logging
import os

import keras

CONFIG_NAME = "config.json"
THRESHOLDS_NAME = "thresholds.json"
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def config_path(model_dir: str) -> str:
    return os.path.join(model_dir, CONFIG_NAME)


def read_config(model_dir: str) -> dict:
    path = config_path(model_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {CONFIG_NAME} in model dir {model_dir!r}.")
    with open(path) as f:
        return json.load(f)


def write_json(path: str, payload: dict) -> None:
    """Writes JSON atomically (temp file + rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_thresholds(model_dir: str, attributes: list[str]):
    """Per-attribute thresholds from M/thresholds.json, or None."""
    path = os.path.join(model_dir, THRESHOLDS_NAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        payload = json.load(f)
    values = payload["thresholds"]
    if isinstance(values, dict):
        values = [values[name] for name in attributes]
    return [float(v) for v in values]


def _leaf_layers(model):
    for layer in model.layers:
        sub = getattr(layer, "layers", None)
        if sub:
            yield from _leaf_layers(layer)
        else:
            yield layer


def load_matching_weights(model: keras.Model, path: str) -> tuple[int, int]:
    """Copies every layer whose name and weight shapes match from a .keras file.

    Returns (matched, skipped): counts of the model's layers with weights
    that were loaded / left as initialised.
    """
    import alm_tf  # noqa: F401  registers the custom layers for loading

    if not os.path.exists(path):
        raise FileNotFoundError(f"init_checkpoint not found: {path}")
    source = keras.saving.load_model(path, compile=False)
    source_layers = {layer.name: layer for layer in _leaf_layers(source)}
    matched, skipped = 0, 0
    for layer in _leaf_layers(model):
        if not layer.weights:
            continue
        other = source_layers.get(layer.name)
        ok = other is not None and [tuple(w.shape) for w in other.weights] == [
            tuple(w.shape) for w in layer.weights
        ]
        if ok:
            layer.set_weights(other.get_weights())
            matched += 1
        else:
            skipped += 1
            logging.info("init_checkpoint: skipped layer %s", layer.name)
    logging.info("init_checkpoint %s: %d layers matched, %d skipped", path, matched, skipped)
    return matched, skipped
