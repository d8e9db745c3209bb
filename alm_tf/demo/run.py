"""The embedded end-to-end demo (what `alm-demo` / `make demo` runs).

`run_demo(DemoConfig(...))` runs the stages of `alm_tf.demo.stages` in
this process through the library functions the binaries call (no flags
are touched), then writes D/summary.json and prints a table:

  synthetic data -> TFRecords -> baseline training -> ALM training from the
  baseline -> evaluation of both -> SavedModel export -> predictions on the
  held-out images through the SavedModel, with localization pictures ->
  the localization hit rate of the SavedModel's boxes.

summary.json: `alm` and `baseline` (each `mA`, `f1`, `accuracy`,
`precision`, `recall` on the test split), `alm_saved_model_test_mA`,
`localization_hit_rate` (`alm_tf.evaluation.localization.localization_hit_rate`,
which defines it, with `fixed_box_ceiling` beside it), `paths` (what the
demo made), `settings` (the recipe), `timings_s` (seconds per stage) and
`demo_seconds`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence

from alm_tf.demo.recipe import (TINY_IMAGE_SIZE, DemoConfig, default_demo_config, stage_schedule,
                                tiny_demo_config)
from alm_tf.demo.stages import STAGES, DemoRun, Stage, demo_paths

__all__ = ["DemoConfig", "TINY_IMAGE_SIZE", "default_demo_config", "format_summary", "run_demo",
           "stage_schedule", "tiny_demo_config"]

#: The summary's file name in D.
SUMMARY_JSON = "summary.json"


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
    if "footage" in summary:
        f = summary["footage"]
        lines += ["", f"footage: {f['tracks']} tracks of {f['people']} people, tracker IDF1 {f['idf1']:.3f}, "
                      f"MOTA {f['mota']:.3f}, HOTA {f['hota']:.3f}, per-track mA {fmt(f['per_track_mA']).strip()}"]
    lines += ["", "made:"]
    for key, value in summary["paths"].items():
        if isinstance(value, list):
            value = f"{len(value)} PNG files in {os.path.dirname(value[0])}" if value else "none"
        lines.append(f"  {key:<16} {value}")
    return "\n".join(lines)


def _say(message: str) -> None:
    print(message, flush=True)


def _announce(config: DemoConfig, say: Callable[[str], None]) -> None:
    """The first line: what the demo is about to do."""
    model = config.model
    say(f"alm-demo: {config.num_images} synthetic images ({config.crop} crops), input {model.image_height}x"
        f"{model.image_width}, backbone {model.backbone}"
        + (f" from {model.backbone_weights}" if model.backbone_weights else "") + f", batch {config.batch_size}, "
        f"baseline {config.baseline_steps} steps, ALM {config.alm_steps} steps "
        f"(from the baseline{', backbone frozen' if config.alm_freeze_backbone else ''}"
        f"{', heads on cached taps' if config.alm_freeze_backbone and config.alm_cache_features else ''}"
        ", boxes: "
        f"kernel init {config.alm_box_kernel_init}, lr x{config.alm_box_lr_multiplier:g} kernel / "
        f"x{config.alm_box_bias_lr_multiplier:g} bias), lr {config.learning_rate:g}, "
        f"output {config.output_dir}")


def run_demo(config: DemoConfig, say: Callable[[str], None] = _say,
             stages: Sequence[Stage] = STAGES) -> dict:
    """Runs every stage; writes D/summary.json; returns the summary dict."""
    start = time.monotonic()
    os.makedirs(config.output_dir, exist_ok=True)
    _announce(config, say)
    run = DemoRun(config=config, paths=demo_paths(config.output_dir), say=say)
    timings: dict[str, float] = {}
    numbered = sum(1 for stage in stages if stage.numbered)
    number = 0
    for stage in stages:
        if stage.numbered:
            number += 1
            run.label = f"[{number}/{numbered}] "
        t0 = time.monotonic()
        stage.run(run)
        timings[stage.name] = round(time.monotonic() - t0, 1)
        say(f"    {stage.name}: {timings[stage.name]:.1f} s")
    results = dict(run.summary)
    summary = {"alm": results.pop("alm"), "baseline": results.pop("baseline"), **results,
               "paths": dict(run.paths),
               "settings": dict(dataclasses.asdict(config), model=config.model.to_dict()),
               "timings_s": timings,
               "demo_seconds": round(time.monotonic() - start, 1)}
    summary["paths"]["summary"] = os.path.join(config.output_dir, SUMMARY_JSON)
    with open(summary["paths"]["summary"], "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    say(format_summary(summary))
    return summary
