"""alm-predict: attribute predictions and localization pictures for image files.

  alm-predict --model=export/1 --images='photos/*.jpg' --output_dir=V
  alm-predict --model=runs/m/final.keras --images=photos/ --output_dir=V
  alm-predict --server=localhost:8500 --attributes_file=attributes.txt \
      --images=photo.png --output_dir=V

--model: a SavedModel dir from alm-export (E/N or E, highest version), a
.keras file (attribute names from a sibling config.json or
--attributes_file), or a model dir (config.json + final.keras). --server:
a TF Serving address instead. --images: a glob, a folder or one file; any
JPEG/PNG of any size. Writes V/predictions.csv (a row per image: the
probability `<attr>_prob` and the label `<attr>` of every attribute) and
V/pictures/<image>.png (input + one panel per ALM level with each shown
attribute's box). An unreadable image is reported and skipped. A
non-empty V is refused unless --overwrite, which replaces it whole (no
picture of an earlier run stays beside the new CSV; `alm_tf.outputs`).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from alm_tf import outputs, prediction
from pipelines import _cli

_OVERRIDE = {"allow_override": True}
_MODEL = flags.DEFINE_string("model", None, "SavedModel dir, .keras file or model dir.", **_OVERRIDE)
_SERVER = flags.DEFINE_string("server", None, "TF Serving host:port (instead of --model).", **_OVERRIDE)
_MODEL_NAME = flags.DEFINE_string("model_name", "alm", "Model name on the TF Serving server.", **_OVERRIDE)
_IMAGES = flags.DEFINE_string("images", None, "A glob, a folder or an image file.", **_OVERRIDE)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where predictions.csv and pictures/ go.", **_OVERRIDE)
_ATTRIBUTES = flags.DEFINE_string("attributes_file", None, "Attribute names, one a line.", **_OVERRIDE)
# Not `batch_size`: alm-train and alm-evaluate define it with other defaults.
_BATCH = flags.DEFINE_integer("images_per_call", 16, "Images per model call.", lower_bound=1, **_OVERRIDE)
_PICTURES = flags.DEFINE_bool("pictures", True, "Write a localization PNG per image.", **_OVERRIDE)
_ROWS = flags.DEFINE_integer("picture_attributes", 4, "Attributes per picture (predicted present "
                             "first).", lower_bound=1, **_OVERRIDE)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output_dir (whole: no "
                               "file of the earlier output stays).", **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-predict", message)


def main(argv: list[str]) -> None:
    """Predicts; exits 1 with one line on stderr on bad flags or input."""
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not _MODEL.value and not _SERVER.value:
        _fail("--model or --server is required")
    if _MODEL.value and _SERVER.value:
        _fail("give only one of --model and --server")
    for name, flag in (("images", _IMAGES), ("output_dir", _OUTPUT_DIR)):
        if not flag.value:
            _fail(f"--{name} is required")
    if _MODEL.value and not os.path.exists(_MODEL.value):
        _fail(f"--model not found: {_MODEL.value!r}")
    if _ATTRIBUTES.value and not os.path.isfile(_ATTRIBUTES.value):
        _fail(f"--attributes_file not found: {_ATTRIBUTES.value!r}")
    try:
        paths = prediction.find_images(_IMAGES.value)
    except FileNotFoundError as e:
        _fail(f"--images: {e}")
        return
    inputs = [p for p in (_MODEL.value, _ATTRIBUTES.value) if p] + paths
    try:
        outputs.check_target(_OUTPUT_DIR.value, overwrite=_OVERWRITE.value, inputs=inputs)
        predictor = prediction.load_image_predictor(
            _MODEL.value, attributes_file=_ATTRIBUTES.value, server=_SERVER.value,
            model_name=_MODEL_NAME.value)
        with outputs.replaced_dir(_OUTPUT_DIR.value, overwrite=_OVERWRITE.value,
                                  inputs=inputs) as staging:
            result = prediction.predict_files(
                predictor, paths, staging, batch_size=_BATCH.value,
                pictures=_PICTURES.value, max_picture_rows=_ROWS.value, progress=_PROGRESS.value,
                report=lambda line: print(f"alm-predict: {line}", file=sys.stderr))
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    csv_path = os.path.join(_OUTPUT_DIR.value, os.path.basename(result.csv_path))
    print(f"predicted {len(result.images)} images ({len(result.skipped)} skipped): {csv_path}"
          + (f", {len(result.pictures)} pictures in {os.path.join(_OUTPUT_DIR.value, 'pictures')}"
             if result.pictures else ""))


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-predict", main)


if __name__ == "__main__":
    run()
