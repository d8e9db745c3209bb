"""What a model leaves on disk, and the one way to load it (`files`, `loader`).

Layout of a trainer's model dir M (`files` names each part):
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
(`E/N`, or `E` for its highest version), a portable export (`.onnx`,
`.tflite`, OpenVINO `.xml`, run on onnxruntime, LiteRT or the OpenVINO
runtime, with the model.json beside it). Its `predict` takes RGB 0..255
images at the model's input size and answers `probabilities`, `labels`
(after the thresholds) and, for ALM models, `boxes`; a Keras model also
answers its logits (`logits` and each branch). Names are never invented:
a model without attribute names is refused. `predict_boxes` answers person
boxes in frames (`alm_tf.preprocessing.crops`), `answers` turns outputs into readable
answers with the model's attribute groups (`groups`: recorded in
config.json, the .keras description or the SavedModel's assets/groups.json;
else the known groups of its attribute list).
"""

from alm_tf.artifacts.files import (ASSETS_DIR, ATTRIBUTES_ASSET, ATTRIBUTES_SIDECAR, BOXES_INPUT,
                                    BOXES_SIGNATURE, BOX_INDICES_INPUT, CHECKPOINTS_DIR,
                                    CONFIG_FORMAT, CONFIG_NAME,
                                    DEFAULT_SIGNATURE, DEFAULT_THRESHOLD, EXAMPLES_INPUT,
                                    EXAMPLES_SIGNATURE, GROUPS_ASSET, GROUPS_KEY, IMAGES_INPUT,
                                    IMAGES_SIGNATURE, IMAGE_BYTES_INPUT, IMAGE_SIGNATURES,
                                    KERAS_METADATA, KERAS_SUFFIX, LOGS_DIR, METADATA_SIGNATURE,
                                    SAVED_MODEL_FILE,
                                    THRESHOLDS_NAME, WEIGHTS, ModelSourceError, as_float32,
                                    check_names_and_thresholds, checkpoints_dir, config_path,
                                    copy_model_file, is_model_dir, keras_description, leaf_layers,
                                    load_keras_model, logs_dir, model_config_of,
                                    read_attributes_file, read_config, read_json,
                                    read_keras_description, read_thresholds, save_keras,
                                    thresholds_path, weights_path, write_json, write_thresholds)
from alm_tf.artifacts.loader import (LoadedModel, from_keras_model, load, load_keras_file,
                                     load_model_dir, load_portable, load_saved_model,
                                     resolve_saved_model_dir)

__all__ = [
    "ASSETS_DIR", "ATTRIBUTES_ASSET", "ATTRIBUTES_SIDECAR", "BOXES_INPUT", "BOXES_SIGNATURE",
    "BOX_INDICES_INPUT", "CHECKPOINTS_DIR", "CONFIG_FORMAT", "CONFIG_NAME",
    "DEFAULT_SIGNATURE", "DEFAULT_THRESHOLD", "EXAMPLES_INPUT", "EXAMPLES_SIGNATURE",
    "GROUPS_ASSET", "GROUPS_KEY", "IMAGES_INPUT", "IMAGES_SIGNATURE", "IMAGE_BYTES_INPUT",
    "IMAGE_SIGNATURES", "KERAS_METADATA", "KERAS_SUFFIX", "LOGS_DIR", "METADATA_SIGNATURE",
    "SAVED_MODEL_FILE",
    "THRESHOLDS_NAME", "WEIGHTS", "as_float32", "check_names_and_thresholds", "checkpoints_dir",
    "config_path", "copy_model_file", "from_keras_model", "is_model_dir", "keras_description",
    "leaf_layers", "load", "load_keras_file", "load_keras_model", "load_model_dir", "load_portable",
    "load_saved_model", "LoadedModel", "logs_dir", "model_config_of", "ModelSourceError",
    "read_attributes_file", "read_config", "read_json", "read_keras_description", "read_thresholds",
    "resolve_saved_model_dir", "save_keras", "thresholds_path", "weights_path", "write_json",
    "write_thresholds",
]
