"""The embedded end-to-end demo (what `alm-demo` / `make demo` runs).

Stages, each in this process through the library functions the binaries
call (no flags are touched):

  1. synthetic data     `alm_tf.data.synth.generate`      -> D/synth/
  2. conversion         `alm_tf.data.convert.convert`     -> D/records/
  3. baseline training  `alm_tf.training.train`, alm_levels=()
                                                          -> D/models/baseline/
  4. ALM training       initialised from the baseline's final.keras (the
                        authors' two-stage recipe); the baseline's
                        backbone frozen, box kernels started at zero, box
                        biases at 100x the learning rate -> D/models/alm/
  5. evaluation         `alm_tf.evaluation.report.run_evaluation` of both on the
                        synthetic test split             -> D/eval/{baseline,alm}/
  6. export             `alm_tf.serving.export` of the ALM model -> D/export/1/
  7. predictions        every held-out (test) image through the SavedModel's
                        `serving_default`, localization pictures
                                                          -> D/predictions/
  8. localization hit rate from the SavedModel's boxes and regions.json
  9. D/summary.json and a printed table.

Localization hit rate (`localization_hit_rate` in summary.json): over the
pairs (test image, region-bound attribute) where the attribute is PRESENT
in the ground truth, a level's box hits when its centre ((y1+y2)/2,
(x1+x2)/2), normalized image coordinates, lies inside (borders included)
that attribute's true region box in regions.json. `levelK` is the share of
hits of level K's boxes; `overall` is the share over all (pair, level)
triples (the mean of the levels, as each level sees the same pairs).
Absent attributes are left out of the headline numbers: with nothing to
see, the box has nothing to find; the rate over all pairs (present or not)
is reported beside it as `all_pairs`, and, as a diagnostic only, the rate
counting the centre's height alone as `vertical_only`.

Beside it, `fixed_box_ceiling` (summary.json and the function of that
name): the hit rate of the best single point per attribute for this split,
the most boxes that stay the same for every image could reach. A hit rate near it says the boxes
found each attribute's body part; above it, they also follow each person.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from alm_tf import artifacts
from alm_tf.evaluation import report as evaluation
from alm_tf.evaluation import metrics
from alm_tf.inference import images as prediction
from alm_tf.config import ModelConfig
from alm_tf.training.config import BOX_KERNEL_INITS, check_lr_multiplier
from alm_tf.data import convert as convert_lib
from alm_tf.data import synth
from alm_tf.evaluation.localization import fixed_box_ceiling, localization_hit_rate
from alm_tf.serving import export as export_lib
from alm_tf.training import TrainConfig, train

__all__ = ["DemoConfig", "format_summary", "run_demo"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes and options of the demo (defaults: the full demo, about 4 min on 2 CPU cores).

    Args:
        output_dir: D, where everything goes.
        num_images: synthetic images (70% train, 10% val, 20% test).
        crop: how the synthetic crops frame the person
            (`alm_tf.data.synth.CROPS`): `"tight"` like the annotated boxes
            of the real data sets, or `"loose"` (BUILD_NOTES.md, issue 6).
        model: the ALM model (`ModelConfig`: backbone and its start
            weights, input size, Table 1 options; its ALM levels must not
            be empty); the baseline is the same model without ALM levels.
        batch_size: training batch size.
        baseline_steps: baseline training steps.
        alm_steps: ALM training steps (initialised from the baseline).
        alm_freeze_backbone: in the ALM stage, train only the heads on the
            baseline's frozen backbone (TrainConfig.freeze_backbone). With
            minutes of training from scratch, a backbone that keeps
            training drags the boxes off the body (BUILD_NOTES.md, issue 6:
            at 192x96 the hit rate fell from 0.33 to 0.26 as such a run
            went on, and reached 0.46-0.48 frozen); frozen, the stage is
            also about twice as fast per step.
        alm_cache_features: with `alm_freeze_backbone`, the ALM stage
            trains the heads on the backbone's taps of every training image
            and its mirror, computed once (TrainConfig.cache_features;
            files in the stage's model dir while it trains, not memory):
            the same loss and gradients per batch, a step costs the heads
            alone.
        alm_box_kernel_init: the ALM stage's `TrainConfig.box_kernel_init`.
            `zeros`: every image starts with the same box.
        alm_box_lr_multiplier, alm_box_bias_lr_multiplier: the ALM stage's
            learning-rate multipliers of the box kernels and biases. At
            1e-4 an Adam step moves a box's bias by about 1e-4, so in a few
            hundred steps the boxes could move only through the image
            features and stayed where those first pulled them (hit rate
            0.49); boxes that start equal, with a fast bias and a slow
            kernel, find where each attribute is (0.87 in the same steps
            on loose crops; BUILD_NOTES.md, issue 6). They hardly follow
            each person: theta is linear in globally pooled features.
        learning_rate: Adam learning rate (both stages; /10 for the last
            `decay_fraction` of each stage).
        baseline_learning_rate: the baseline stage's rate instead, when set.
            The baseline trains BN-Inception from scratch: at 1e-3 it gets
            in 55 steps the features that 110 steps at 1e-4 gave (ALM mA
            0.849 / 0.862 and hit rate 0.960 / 0.980, seeds 0 / 1, against
            0.852 / 0.847 and 0.968 / 0.936; 35 steps: hit rate 0.858;
            BUILD_NOTES.md, issue 17). The ALM stage keeps
            `learning_rate`, for which its box multipliers are set.
        decay_fraction: share of each stage's steps at the decayed rate.
        num_pictures: held-out images with a localization picture.
        seed: data and initialisation seed.
        keep_data: keep D/synth and D/records when they already exist with
            the same settings (faster re-runs).
        progress: show progress bars.
    """

    output_dir: str = "demo_output"
    num_images: int = 1200
    crop: str = synth.SynthConfig.crop
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batch_size: int = 32
    baseline_steps: int = 55
    alm_steps: int = 320
    alm_freeze_backbone: bool = True
    alm_cache_features: bool = True
    alm_box_kernel_init: str = "zeros"
    alm_box_lr_multiplier: float = 0.1
    alm_box_bias_lr_multiplier: float = 100.0
    learning_rate: float = 1e-4
    baseline_learning_rate: Optional[float] = 1e-3
    decay_fraction: float = 0.0
    num_pictures: int = 6
    seed: int = 0
    keep_data: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir must be set")
        if self.num_images < 20:
            raise ValueError(f"num_images must be >= 20. Received: num_images={self.num_images}")
        synth.check_crop(self.crop)
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig. Received: model={self.model!r}")
        if self.model.is_baseline:
            raise ValueError("the demo trains the baseline and then ALM: alm_levels must not be "
                             "empty. Received: alm_levels=[]")
        for name in ("batch_size", "baseline_steps", "alm_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}")
        if self.baseline_learning_rate is not None and not self.baseline_learning_rate > 0:
            raise ValueError("baseline_learning_rate must be > 0. "
                             f"Received: baseline_learning_rate={self.baseline_learning_rate}")
        for name in ("alm_box_lr_multiplier", "alm_box_bias_lr_multiplier"):
            check_lr_multiplier(name, getattr(self, name))
        if self.alm_box_kernel_init not in BOX_KERNEL_INITS:
            raise ValueError(f"alm_box_kernel_init must be one of {BOX_KERNEL_INITS}. "
                             f"Received: alm_box_kernel_init={self.alm_box_kernel_init!r}")
        if not 0 <= self.decay_fraction < 1:
            raise ValueError(f"decay_fraction must be in [0, 1). Received: decay_fraction={self.decay_fraction}")
        if self.num_pictures < 0:
            raise ValueError(f"num_pictures must be >= 0. Received: num_pictures={self.num_pictures}")


def stage_schedule(total: int, decay_fraction: float) -> tuple[int, int, tuple[int, ...]]:
    """(epochs, steps_per_epoch, decay_epochs) giving `total` steps with a late decay.

    Two "epochs" of the trainer: the second (decay_fraction of the steps)
    at lr / 10. Without decay, one epoch of `total` steps.
    """
    decayed = int(round(total * decay_fraction))
    if decayed < 1 or decayed >= total:
        return 1, total, (10**6,)
    # Equal-length trainer epochs: pick a period dividing both parts.
    period = math.gcd(total - decayed, decayed)
    epochs = total // period
    return epochs, period, ((total - decayed) // period,)


def _metrics_of(payload: dict) -> dict:
    return {k: float(payload[k]) for k in ("mA", "f1", "accuracy", "precision", "recall")}


def format_summary(summary: dict) -> str:
    """The printed table: mA / F1 of both models, hit rates, paths."""
    lines = ["", f"{'model':<10}{'mA':>9}{'F1':>9}{'acc':>9}{'prec':>9}{'recall':>9}"]
    for name in ("baseline", "alm"):
        m = summary[name]
        lines.append(f"{name:<10}{m['mA']:>9.4f}{m['f1']:>9.4f}{m['accuracy']:>9.4f}"
                     f"{m['precision']:>9.4f}{m['recall']:>9.4f}")
    hit = summary["localization_hit_rate"]
    fmt = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
    levels = sorted(k for k in hit if k.startswith("level"))
    lines += ["", f"localization hit rate ({hit['num_pairs']} present (image, attribute) pairs):",
              "  " + "  ".join(f"{k} {fmt(hit[k])}" for k in ["overall"] + levels)]
    lines.append("  " + "  ".join(f"{a} {fmt(v['overall'])}" for a, v in hit["per_attribute"].items()))
    vert = hit["vertical_only"]
    lines.append("  diagnostic, centre height only: " + "  ".join(f"{k} {fmt(vert[k])}" for k in ["overall"] + levels))
    if "fixed_box_ceiling" in hit:
        lines.append(f"  a fixed box per attribute could reach {fmt(hit['fixed_box_ceiling']['overall']).strip()}"
                     " (above it, boxes must follow each person)")
    lines += ["", "made:"]
    for key, value in summary["paths"].items():
        if isinstance(value, list):
            value = f"{len(value)} PNG files in {os.path.dirname(value[0])}" if value else "none"
        lines.append(f"  {key:<16} {value}")
    return "\n".join(lines)


def _say(message: str) -> None:
    print(message, flush=True)


def run_demo(config: DemoConfig, say: Callable[[str], None] = _say) -> dict:
    """Runs every stage; writes D/summary.json; returns the summary dict."""
    start = time.monotonic()
    timings: dict[str, float] = {}
    d = config.output_dir
    os.makedirs(d, exist_ok=True)
    paths = {
        "synthetic_data": os.path.join(d, "synth"),
        "records": os.path.join(d, "records"),
        "baseline_model": os.path.join(d, "models", "baseline"),
        "alm_model": os.path.join(d, "models", "alm"),
        "baseline_eval": os.path.join(d, "eval", "baseline"),
        "alm_eval": os.path.join(d, "eval", "alm"),
        "export": os.path.join(d, "export"),
        "predictions": os.path.join(d, "predictions"),
    }
    model = config.model
    say(f"alm-demo: {config.num_images} synthetic images ({config.crop} crops), input {model.image_height}x"
        f"{model.image_width}, backbone {model.backbone}"
        + (f" from {model.backbone_weights}" if model.backbone_weights else "") + f", batch {config.batch_size}, "
        f"baseline {config.baseline_steps} steps, ALM {config.alm_steps} steps "
        f"(from the baseline{', backbone frozen' if config.alm_freeze_backbone else ''}"
        f"{', heads on cached taps' if config.alm_freeze_backbone and config.alm_cache_features else ''}"
        ", boxes: "
        f"kernel init {config.alm_box_kernel_init}, lr x{config.alm_box_lr_multiplier:g} kernel / "
        f"x{config.alm_box_bias_lr_multiplier:g} bias), lr {config.learning_rate:g}, output {d}")
    stamp = {"num_images": config.num_images, "seed": config.seed, "crop": config.crop}
    stamp_path = os.path.join(d, "data_settings.json")

    def clock(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)
        say(f"    {name}: {timings[name]:.1f} s")

    # 1-2. Data.
    reuse = config.keep_data and os.path.exists(stamp_path) and os.path.exists(
        os.path.join(paths["records"], "manifest.json"))
    if reuse:
        with open(stamp_path) as f:
            reuse = json.load(f) == stamp
    t0 = time.monotonic()
    if reuse:
        say("[1/7] synthetic data: reusing " + paths["synthetic_data"])
        say("[2/7] conversion: reusing " + paths["records"])
    else:
        for key in ("synthetic_data", "records"):
            shutil.rmtree(paths[key], ignore_errors=True)
        say(f"[1/7] synthetic data -> {paths['synthetic_data']}")
        info = synth.generate(synth.SynthConfig(output_dir=paths["synthetic_data"],
                                                num_images=config.num_images, seed=config.seed,
                                                crop=config.crop))
        say(f"    {info['num_images']} images: {info['splits']}")
        say(f"[2/7] conversion (csv) -> {paths['records']}")
        result = convert_lib.convert(convert_lib.ConvertConfig(
            format="csv", annotations=info["annotations"], images_dir=paths["synthetic_data"],
            output_dir=paths["records"], workers=min(2, os.cpu_count() or 1),
            show_progress=config.progress))
        say(f"    {result.num_written} examples, {result.num_skipped} skipped")
        with open(stamp_path, "w") as f:
            json.dump(stamp, f)
    clock("data", t0)

    # 3-4. Training: the baseline, then ALM from the baseline.
    common = dict(data_dir=paths["records"], batch_size=config.batch_size, seed=config.seed,
                  val_split="none", progress=config.progress)
    box = dict(box_kernel_init=config.alm_box_kernel_init,
               box_lr_multiplier=config.alm_box_lr_multiplier,
               box_bias_lr_multiplier=config.alm_box_bias_lr_multiplier,
               freeze_backbone=config.alm_freeze_backbone,
               cache_features=config.alm_freeze_backbone and config.alm_cache_features)
    baseline_final = artifacts.weights_path(paths["baseline_model"], "final")
    # The ALM stage starts from the baseline (which started from the backbone weights).
    baseline_lr = config.baseline_learning_rate or config.learning_rate
    stages = (("baseline", model.replace(alm_levels=()), config.baseline_steps, None,
               dict(learning_rate=baseline_lr), 3),
              ("alm", model.replace(backbone_weights=None), config.alm_steps, baseline_final,
               dict(box, learning_rate=config.learning_rate), 4))
    for name, stage_model, steps, init, options, number in stages:
        key = f"{name}_model"
        shutil.rmtree(paths[key], ignore_errors=True)  # a fresh run, not a resume
        epochs, per_epoch, decay = stage_schedule(steps, config.decay_fraction)
        say(f"[{number}/7] training {'ALM' if name == 'alm' else name} ({steps} steps"
            + (f", initialised from {init}" if init else "") + f") -> {paths[key]}")
        t0 = time.monotonic()
        train(TrainConfig(model_dir=paths[key], model=stage_model, epochs=epochs,
                          steps_per_epoch=per_epoch, decay_epochs=decay, init_checkpoint=init,
                          **options, **common))
        clock(f"train_{name}", t0)

    # 5. Evaluation of both on the test split.
    say("[5/7] evaluation on the synthetic test split")
    t0 = time.monotonic()
    results = {}
    for name in ("baseline", "alm"):
        payload = evaluation.run_evaluation(paths["records"], "test", paths[f"{name}_model"],
                                            paths[f"{name}_eval"])
        results[name] = _metrics_of(payload)
    clock("evaluate", t0)

    # 6. Export.
    say(f"[6/7] export of the ALM model -> {paths['export']}/1")
    t0 = time.monotonic()
    shutil.rmtree(paths["export"], ignore_errors=True)
    saved_model = export_lib.export_saved_model(
        export_lib.load_source(paths["alm_model"]), paths["export"], version=1, overwrite=True)
    paths["saved_model"] = saved_model
    clock("export", t0)

    # 7. Predictions through the SavedModel on every held-out image.
    say("[7/7] predictions on the held-out images through the SavedModel + localization pictures")
    t0 = time.monotonic()
    with open(os.path.join(paths["synthetic_data"], "annotations.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    predictor = prediction.load_image_predictor(saved_model)
    attributes = predictor.attributes
    regions_file = os.path.join(paths["synthetic_data"], "regions.json")
    with open(regions_file) as f:
        regions_payload = json.load(f)
    attribute_regions = regions_payload["attribute_regions"]
    files = [os.path.join(paths["synthetic_data"], r["image"]) for r in rows]
    shutil.rmtree(paths["predictions"], ignore_errors=True)
    predicted = prediction.predict_files(
        predictor, files, paths["predictions"], batch_size=32, max_picture_rows=4,
        picture_attributes=[m for m, a in enumerate(attributes) if attribute_regions.get(a)],
        max_pictures=config.num_pictures, panel_height=192, progress=config.progress, report=say)
    if predicted.skipped:
        raise RuntimeError(f"{len(predicted.skipped)} held-out images could not be read")
    labels = np.array([[int(r[a]) for a in attributes] for r in rows], np.int64)
    images = [r["image"] for r in rows]
    hit = localization_hit_rate(predicted.outputs["boxes"], images, labels, attributes,
                                regions_payload["images"], attribute_regions)
    hit["fixed_box_ceiling"] = fixed_box_ceiling(images, labels, attributes, regions_payload["images"],
                                                 attribute_regions)
    saved_probs = predicted.outputs["probabilities"]
    served = metrics.compute_metrics(labels, saved_probs, 0.5, from_logits=False)
    paths["predictions_csv"] = predicted.csv_path
    paths["pictures"] = predicted.pictures
    clock("predict", t0)

    total = time.monotonic() - start
    summary = {
        "alm": results["alm"],
        "baseline": results["baseline"],
        "alm_saved_model_test_mA": float(served["mA"]),
        "localization_hit_rate": hit,
        "paths": {k: v for k, v in paths.items()},
        "settings": dict(dataclasses.asdict(config), model=config.model.to_dict()),
        "timings_s": timings,
        "demo_seconds": round(total, 1),
    }
    summary["paths"]["summary"] = os.path.join(d, "summary.json")
    with open(summary["paths"]["summary"], "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    say(format_summary(summary))
    return summary


def default_demo_config(output_dir: str = "demo_output", **overrides: Any) -> DemoConfig:
    """The full demo's settings (see DemoConfig), with overrides."""
    return DemoConfig(output_dir=output_dir, **overrides)


#: The tiny demo's input size (height, width).
TINY_IMAGE_SIZE = (64, 32)


def tiny_demo_config(output_dir: str, **overrides: Any) -> DemoConfig:
    """Smallest sizes that exercise every stage (tests)."""
    options = dict(num_images=60, model=ModelConfig(image_height=TINY_IMAGE_SIZE[0],
                                                    image_width=TINY_IMAGE_SIZE[1]), batch_size=8,
                   baseline_steps=2, alm_steps=2, num_pictures=2, progress=False)
    options.update(overrides)
    return DemoConfig(output_dir=output_dir, **options)
