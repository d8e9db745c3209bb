r"""alm-evaluate: metrics report of a trained model on a split.

  alm-evaluate --data_dir=records/pa100k --split=test --model=runs/pa100k \
      --output_dir=reports/pa100k [--which=best] [--tune_thresholds]

--model: any model alm_tf.artifacts.load opens: a model dir (config.json +
final.keras / best.keras), a .keras file, a SavedModel dir from alm-export
(its `predict_images` signature), or a portable export (model.onnx,
model*.tflite, openvino/model.xml; the same report, so the cost of a
format or of int8 quantization shows directly).
Writes R/metrics.json (mA, accuracy, precision, recall, f1 of the fused
output, plus `branches`) and R/per_attribute.csv, and prints a table.
--tune_thresholds picks per-attribute thresholds on --threshold_split
(maximising each attribute's mA) and saves thresholds.json in R and, for a
model dir, in the model dir: every later alm-export of that model dir
ships these thresholds (delete M/thresholds.json to go back to 0.5).

Every record of the split is counted against the manifest first: missing
or corrupt records fail with one line naming the shard and the counts;
--allow_corrupt_records evaluates the usable ones and says how many in
metrics.json (`records`) and the log. A non-empty --output_dir is refused
unless --overwrite, which replaces it whole (`alm_tf.outputs`).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from alm_tf import outputs
from alm_tf.evaluation import report as evaluation
from alm_tf.data.manifest import MANIFEST
from pipelines import _cli, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

_DATA_DIR = _shared_flags.data_dir()
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate.", **_OVERRIDE)
_MODEL = flags.DEFINE_string("model", None, "Model dir, .keras file, SavedModel dir, or a portable "
                             "export (.onnx, .tflite, OpenVINO .xml).", **_OVERRIDE)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where metrics.json and per_attribute.csv go.", **_OVERRIDE)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Evaluation batch size.", **_OVERRIDE)
_WHICH = _shared_flags.which()
_TUNE = flags.DEFINE_bool("tune_thresholds", False, "Tune per-attribute thresholds on "
                          "--threshold_split; writes thresholds.json into --output_dir and, when "
                          "--model is a model dir, into the model dir, where every later alm-export "
                          "ships it.", **_OVERRIDE)
_THRESHOLD_SPLIT = flags.DEFINE_string("threshold_split", "val", "Split used to tune thresholds.", **_OVERRIDE)
_ALLOW_CORRUPT = flags.DEFINE_bool(
    "allow_corrupt_records", False, "Go on when shards hold fewer usable records than the manifest "
    "says (missing, truncated or corrupt shards, records that do not fit): evaluate the usable "
    "ones, counted in metrics.json `records`.", **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, outputs.OVERWRITE_HELP, **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-evaluate", message)


def _check_flags() -> None:
    for name, flag in (("data_dir", _DATA_DIR), ("model", _MODEL), ("output_dir", _OUTPUT_DIR)):
        if not flag.value:
            raise ValueError(f"--{name} is required")
    if not os.path.exists(_MODEL.value):
        raise ValueError(f"--model not found: {_MODEL.value!r}")
    if not os.path.exists(os.path.join(_DATA_DIR.value, MANIFEST)):
        raise ValueError(f"--data_dir has no {MANIFEST}: {_DATA_DIR.value!r}")
    if _BATCH.value < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: {_BATCH.value}")
    if _TUNE.value and _THRESHOLD_SPLIT.value == _SPLIT.value:
        raise ValueError(f"--threshold_split must differ from --split "
                         f"(both {_SPLIT.value!r}): tuning on the evaluated split leaks")


def main(argv: list[str]) -> None:
    """Evaluates; exits 1 with one line on stderr on bad flags or input."""
    try:
        _check_flags()
        with outputs.replaced_dir(_OUTPUT_DIR.value, overwrite=_OVERWRITE.value,
                                  inputs=[_MODEL.value, _DATA_DIR.value]) as staging:
            payload = evaluation.run_evaluation(
                _DATA_DIR.value, _SPLIT.value, _MODEL.value, staging,
                batch_size=_BATCH.value, which=_WHICH.value, tune=_TUNE.value,
                threshold_split=_THRESHOLD_SPLIT.value,
                allow_corrupt_records=_ALLOW_CORRUPT.value)
            written = sorted(os.listdir(staging))
    except (ValueError, OSError) as e:
        _fail(_cli.first_line(e))
        return
    records = payload.get("records", {})
    if "skipped" in records:
        first = (records.get("problems") or ["images that do not decode"])[0]
        print(f"alm-evaluate: warning: evaluated {records['evaluated']} of the {records['expected']} "
              f"records of split {_SPLIT.value!r} (--allow_corrupt_records; {first})", file=sys.stderr)
    print("wrote " + ", ".join(os.path.join(_OUTPUT_DIR.value, name) for name in written))


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-evaluate", main)


if __name__ == "__main__":
    run()
