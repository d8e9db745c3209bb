"""The demo's stages, each through the library functions the binaries call.

A stage is a `Stage(name, run, numbered)`: `run(demo_run)` reads what the
stages before it left in the `DemoRun` (paths, `summary` entries, the
`state` they hand on) and adds its own. `run_demo` (`alm_tf.demo.run`) runs
them in order, times each under its name and prints `[k/N]` before the
numbered ones; a new stage is one more `Stage` in its list.

  synth           `alm_tf.data.synth.generate`          -> D/synth/
  convert         `alm_tf.data.convert.convert`         -> D/records/
  train_baseline  `alm_tf.training.train`, no ALM levels -> D/models/baseline/
  train_alm       initialised from the baseline's final.keras (the authors'
                  two-stage recipe) with the recipe's box options
                                                        -> D/models/alm/
  evaluate        `alm_tf.evaluation.report.run_evaluation` of both on the
                  synthetic test split                  -> D/eval/{baseline,alm}/
  export          `alm_tf.serving.export` of the ALM model -> D/export/1/
  predict         every held-out (test) image through the SavedModel's
                  `serving_default` (`alm_tf.inference.images.predict_files`,
                  as alm-predict does), with localization pictures
                                                        -> D/predictions/
  localization    the localization hit rate of the SavedModel's boxes and
                  the fixed-box ceiling (`alm_tf.evaluation.localization`
                  defines both), and the SavedModel's test mA
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from alm_tf import artifacts
from alm_tf.data import convert as convert_lib
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.data import synth
from alm_tf.data.manifest import MANIFEST
from alm_tf.demo import footage_stage as footage_stage_lib
from alm_tf.demo.recipe import DemoConfig, stage_schedule
from alm_tf.evaluation import metrics
from alm_tf.evaluation import report as evaluation
from alm_tf.evaluation.localization import fixed_box_ceiling, localization_hit_rate
from alm_tf.inference import images as prediction
from alm_tf.serving import export as export_lib
from alm_tf.training import TrainConfig, train

#: The demo's folders below D, by key (summary.json's "paths" lists them).
FOLDERS = {
    "synthetic_data": ("synth",),
    "records": ("records",),
    "baseline_model": ("models", "baseline"),
    "alm_model": ("models", "alm"),
    "baseline_eval": ("eval", "baseline"),
    "alm_eval": ("eval", "alm"),
    "export": ("export",),
    "predictions": ("predictions",),
    "footage": ("footage",),
}
#: What the data stages record in D to tell whether `keep_data` may reuse D/synth and D/records.
DATA_SETTINGS = "data_settings.json"
#: The summary's metrics of each model.
METRIC_KEYS = ("mA", "f1", "accuracy", "precision", "recall")


@dataclasses.dataclass
class DemoRun:
    """What the stages share.

    Attributes:
        config: the recipe.
        paths: what the demo made, by key (summary.json's "paths").
        say: where progress lines go.
        summary: summary.json's entries the stages add ("alm", "baseline",
            "localization_hit_rate", ...).
        state: what a stage hands to the ones after it (not written).
        label: "[k/N] " of the running numbered stage.
    """

    config: DemoConfig
    paths: dict[str, Any]
    say: Callable[[str], None]
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the demo: `run(demo_run)`, timed as `name`; numbered ones print `[k/N]`."""

    name: str
    run: Callable[[DemoRun], None]
    numbered: bool = True


def demo_paths(output_dir: str) -> dict[str, str]:
    """D's folders by key (`FOLDERS`)."""
    return {key: os.path.join(output_dir, *parts) for key, parts in FOLDERS.items()}


def _data_settings(config: DemoConfig) -> dict:
    return {"num_images": config.num_images, "seed": config.seed, "crop": config.crop}


def _reusable_data(run: DemoRun) -> bool:
    """`keep_data` and D/synth, D/records made with the same data settings."""
    stamp = os.path.join(run.config.output_dir, DATA_SETTINGS)
    if not (run.config.keep_data and os.path.exists(stamp)
            and os.path.exists(os.path.join(run.paths["records"], MANIFEST))):
        return False
    with open(stamp) as f:
        return json.load(f) == _data_settings(run.config)


def synth_stage(run: DemoRun) -> None:
    """Synthetic pedestrians with known attribute regions (or the kept ones)."""
    config, folder = run.config, run.paths["synthetic_data"]
    run.state["reuse_data"] = _reusable_data(run)
    if run.state["reuse_data"]:
        run.say(f"{run.label}synthetic data: reusing {folder}")
        return
    for key in ("synthetic_data", "records"):
        shutil.rmtree(run.paths[key], ignore_errors=True)
    run.say(f"{run.label}synthetic data -> {folder}")
    info = synth.generate(synth.SynthConfig(output_dir=folder, num_images=config.num_images,
                                            seed=config.seed, crop=config.crop))
    run.state["annotations"] = info["annotations"]
    run.say(f"    {info['num_images']} images: {info['splits']}")


def convert_stage(run: DemoRun) -> None:
    """The synthetic CSV to TFRecords; records the data settings for `keep_data`."""
    if run.state["reuse_data"]:
        run.say(f"{run.label}conversion: reusing {run.paths['records']}")
        return
    run.say(f"{run.label}conversion (csv) -> {run.paths['records']}")
    result = convert_lib.convert(ConvertConfig(
        format="csv", annotations=run.state["annotations"], images_dir=run.paths["synthetic_data"],
        output_dir=run.paths["records"], workers=min(2, os.cpu_count() or 1),
        show_progress=run.config.progress))
    run.say(f"    {result.num_written} examples, {result.num_skipped} skipped")
    with open(os.path.join(run.config.output_dir, DATA_SETTINGS), "w") as f:
        json.dump(_data_settings(run.config), f)


def _train_stage(run: DemoRun, name: str, model, steps: int, init, **options) -> None:
    config, model_dir = run.config, run.paths[f"{name}_model"]
    shutil.rmtree(model_dir, ignore_errors=True)  # a fresh run, not a resume
    epochs, per_epoch, decay = stage_schedule(steps, config.decay_fraction)
    run.say(f"{run.label}training {'ALM' if name == 'alm' else name} ({steps} steps"
            + (f", initialised from {init}" if init else "") + f") -> {model_dir}")
    train(TrainConfig(model_dir=model_dir, model=model, epochs=epochs, steps_per_epoch=per_epoch,
                      decay_epochs=decay, init_checkpoint=init, data_dir=run.paths["records"],
                      batch_size=config.batch_size, seed=config.seed, val_split="none",
                      progress=config.progress, **options))


def train_baseline_stage(run: DemoRun) -> None:
    """The model without ALM levels, from the backbone's start weights."""
    config = run.config
    _train_stage(run, "baseline", config.model.replace(alm_levels=()), config.baseline_steps, None,
                 learning_rate=config.baseline_learning_rate or config.learning_rate)


def train_alm_stage(run: DemoRun) -> None:
    """ALM from the baseline's final.keras with the recipe's box options."""
    config = run.config
    _train_stage(run, "alm", config.model.replace(backbone_weights=None), config.alm_steps,
                 artifacts.weights_path(run.paths["baseline_model"], "final"),
                 learning_rate=config.learning_rate,
                 box_kernel_init=config.alm_box_kernel_init,
                 box_lr_multiplier=config.alm_box_lr_multiplier,
                 box_bias_lr_multiplier=config.alm_box_bias_lr_multiplier,
                 freeze_backbone=config.alm_freeze_backbone,
                 cache_features=config.alm_freeze_backbone and config.alm_cache_features)


def evaluate_stage(run: DemoRun) -> None:
    """Both models on the synthetic test split (alm-evaluate's report)."""
    run.say(f"{run.label}evaluation on the synthetic test split")
    for name in ("baseline", "alm"):
        payload = evaluation.run_evaluation(run.paths["records"], "test", run.paths[f"{name}_model"],
                                            run.paths[f"{name}_eval"])
        run.summary[name] = {k: float(payload[k]) for k in METRIC_KEYS}


def export_stage(run: DemoRun) -> None:
    """The ALM model as SavedModel version 1."""
    run.say(f"{run.label}export of the ALM model -> {run.paths['export']}/1")
    shutil.rmtree(run.paths["export"], ignore_errors=True)
    run.paths["saved_model"] = export_lib.export_saved_model(
        export_lib.load_source(run.paths["alm_model"]), run.paths["export"], version=1, overwrite=True)


def _load_regions(run: DemoRun) -> tuple[list[dict], dict]:
    """The test split's annotation rows and regions.json of the synthetic data."""
    folder = run.paths["synthetic_data"]
    with open(os.path.join(folder, synth.ANNOTATIONS_FILE), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    with open(os.path.join(folder, synth.REGIONS_FILE)) as f:
        return rows, json.load(f)


def predict_stage(run: DemoRun) -> None:
    """Every held-out image through the SavedModel; localization pictures of the first ones."""
    run.say(f"{run.label}predictions on the held-out images through the SavedModel + localization "
            "pictures")
    rows, regions = _load_regions(run)
    predictor = prediction.load_image_predictor(run.paths["saved_model"])
    attribute_regions = regions["attribute_regions"]
    files = [os.path.join(run.paths["synthetic_data"], r["image"]) for r in rows]
    shutil.rmtree(run.paths["predictions"], ignore_errors=True)
    predicted = prediction.predict_files(
        predictor, files, run.paths["predictions"], batch_size=32, max_picture_rows=4,
        picture_attributes=[m for m, a in enumerate(predictor.attributes) if attribute_regions.get(a)],
        max_pictures=run.config.num_pictures, panel_height=192, progress=run.config.progress,
        report=run.say)
    if predicted.skipped:
        raise RuntimeError(f"{len(predicted.skipped)} held-out images could not be read")
    run.paths["predictions_csv"] = predicted.csv_path
    run.paths["pictures"] = predicted.pictures
    run.state.update(test_rows=rows, regions=regions, attributes=predictor.attributes,
                     predicted=predicted)


def localization_stage(run: DemoRun) -> None:
    """The hit rate of the SavedModel's boxes, the fixed-box ceiling, the SavedModel's mA."""
    rows, regions, attributes = run.state["test_rows"], run.state["regions"], run.state["attributes"]
    outputs = run.state["predicted"].outputs
    labels = np.array([[int(r[a]) for a in attributes] for r in rows], np.int64)
    images = [r["image"] for r in rows]
    hit = localization_hit_rate(outputs["boxes"], images, labels, attributes, regions["images"],
                                regions["attribute_regions"])
    hit["fixed_box_ceiling"] = fixed_box_ceiling(images, labels, attributes, regions["images"],
                                                 regions["attribute_regions"])
    served = metrics.compute_metrics(labels, outputs["probabilities"], 0.5, from_logits=False)
    run.summary["alm_saved_model_test_mA"] = float(served["mA"])
    run.summary["localization_hit_rate"] = hit


def footage_stage(run: DemoRun) -> None:
    """A synthetic street video through the default detector, tracker and the SavedModel, scored."""
    run.say(f"{run.label}a synthetic street video through the person detector, the tracker and the "
            "SavedModel")
    shutil.rmtree(run.paths["footage"], ignore_errors=True)
    result = footage_stage_lib.run_footage_stage(run.paths["footage"], run.paths["saved_model"],
                                                 run.config.seed, report=run.say)
    made = result.pop("paths")
    run.paths["street_video"] = made["video"]
    run.paths["people"] = made["people_dir"]
    run.summary["footage"] = result


#: The demo's stages, in order.
STAGES = (
    Stage("synth", synth_stage),
    Stage("convert", convert_stage),
    Stage("train_baseline", train_baseline_stage),
    Stage("train_alm", train_alm_stage),
    Stage("evaluate", evaluate_stage),
    Stage("export", export_stage),
    Stage("predict", predict_stage),
    Stage("localization", localization_stage, numbered=False),
    Stage("footage", footage_stage),
)
