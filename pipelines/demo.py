"""alm-demo: the embedded end-to-end demo (what `make demo` runs).

  alm-demo [--output_dir=demo_output]

Synthetic data -> TFRecords -> baseline training -> ALM training from the
baseline -> evaluation of both -> SavedModel export -> predictions on the
held-out images through the SavedModel -> localization pictures ->
D/summary.json. The last line printed is `demo finished in N s`.
The recipe and its defaults: alm_tf/demo/recipe.py (DemoConfig); the
stages: alm_tf/demo/stages.py; the localization hit rate's definition:
alm_tf/evaluation/localization.py.
"""

from __future__ import annotations

import os
import time

from absl import flags, logging

from alm_tf import outputs
from alm_tf.demo import run as demo
from alm_tf.training.config import BOX_KERNEL_INITS
from alm_tf.data.synth import CROPS, SynthConfig
from pipelines import _cli, _model_flags, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

# Flag names shared with other binaries keep their defaults (output_dir
# None, seed 0, progress True): with allow_override, the last definition's
# default wins for every binary in a process (tests, notebooks).
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where everything goes (default: "
                                  f"{demo.DemoConfig.output_dir}).",
                                  **_OVERRIDE)
_NUM_IMAGES = flags.DEFINE_integer("synthetic_images", None, "Synthetic images (default: the demo's).", **_OVERRIDE)
# The same name, default and choices as alm-synth's --crop.
_CROP = flags.DEFINE_enum("crop", SynthConfig.crop, CROPS, "How the synthetic crops frame the "
                          "person: tight, like the annotated boxes of PETA, RAP and PA-100K; loose: "
                          "a detector box with context and poor centring.", **_OVERRIDE)
_BASELINE_STEPS = flags.DEFINE_integer("baseline_steps", None, "Baseline training steps.", **_OVERRIDE)
_ALM_STEPS = flags.DEFINE_integer("alm_steps", None, "ALM training steps.", **_OVERRIDE)
_BASELINE_LR = _cli.define_finite_float("baseline_learning_rate", None, "The baseline stage's Adam "
                                        "learning rate (default: the demo's; it trains from "
                                        "scratch).", **_OVERRIDE)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data and the initialisation.", **_OVERRIDE)
_KEEP_DATA = flags.DEFINE_bool("keep_data", False, "Reuse D/synth and D/records of an earlier run "
                               "with the same data settings.", **_OVERRIDE)
_PROGRESS = _shared_flags.progress()
_FREEZE = flags.DEFINE_bool("alm_freeze_backbone", True, "Train the ALM stage's heads on the "
                            "baseline's frozen backbone (--noalm_freeze_backbone: train all).",
                            **_OVERRIDE)
_CACHE = flags.DEFINE_bool("alm_cache_features", True, "With a frozen backbone, train the ALM "
                           "stage's heads on the backbone's taps computed once per training image "
                           "and its mirror (the same loss per batch, far faster steps).",
                           **_OVERRIDE)
_BOX_INIT = flags.DEFINE_enum("alm_box_kernel_init", None, BOX_KERNEL_INITS,
                              "ALM stage: box kernels' start (default "
                              f"{demo.DemoConfig.alm_box_kernel_init}; zeros: one box for every "
                              "image at first; torch: the official init).", **_OVERRIDE)
_BOX_LR = _cli.define_finite_float("alm_box_lr_multiplier", None, "ALM stage: learning rate of the "
                                   "box kernels relative to the others (default "
                                   f"{demo.DemoConfig.alm_box_lr_multiplier:g}).", **_OVERRIDE)
_BOX_BIAS_LR = _cli.define_finite_float("alm_box_bias_lr_multiplier", None, "ALM stage: learning "
                                        "rate of the box biases relative to the others (default "
                                        f"{demo.DemoConfig.alm_box_bias_lr_multiplier:g}).",
                                        **_OVERRIDE)
_TINY = flags.DEFINE_bool("tiny", False, "Tiny sizes (a smoke test of every stage, about a minute; "
                          "the model flags then keep their tiny values unless given).", **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-demo", message)


def main(argv: list[str]) -> None:
    """Runs the demo; exits 1 with one line on stderr on bad flags."""
    start = time.monotonic()
    # TensorFlow's INFO lines (SavedModel signature renames, ...) would bury
    # the demo's own progress; warnings and errors still show.
    logging.set_verbosity(logging.WARNING)
    overrides = {"seed": _SEED.value, "keep_data": _KEEP_DATA.value, "progress": _PROGRESS.value,
                 "alm_freeze_backbone": _FREEZE.value, "alm_cache_features": _CACHE.value,
                 "crop": _CROP.value}
    for key, flag in (("num_images", _NUM_IMAGES), ("baseline_steps", _BASELINE_STEPS),
                      ("alm_steps", _ALM_STEPS), ("baseline_learning_rate", _BASELINE_LR),
                      ("alm_box_kernel_init", _BOX_INIT),
                      ("alm_box_lr_multiplier", _BOX_LR),
                      ("alm_box_bias_lr_multiplier", _BOX_BIAS_LR)):
        if flag.value is not None:
            overrides[key] = flag.value
    try:
        model = _model_flags.model_config()
        if _TINY.value:  # tiny sizes unless the model flags say otherwise
            model = model.replace(**{k: v for k, v in zip(("image_height", "image_width"),
                                                           demo.TINY_IMAGE_SIZE)
                                     if not flags.FLAGS[k].present})
            config = demo.tiny_demo_config(_OUTPUT_DIR.value or demo.DemoConfig.output_dir, model=model, **overrides)
        else:
            config = demo.default_demo_config(_OUTPUT_DIR.value or demo.DemoConfig.output_dir, model=model,
                                              **overrides)
    except ValueError as e:
        message = str(e).splitlines()[0].replace("Received: num_images=", "Received: --synthetic_images=")
        _fail(message)
        return
    if os.path.exists(config.output_dir) and not os.path.isdir(config.output_dir):
        _fail(f"--output_dir exists and is not a folder: {config.output_dir!r}")
    try:  # the demo writes below D: never where its backbone weights lie
        outputs.check_apart(config.output_dir, [config.model.backbone_weights])
    except outputs.OutputError as e:
        _fail(str(e))
    demo.run_demo(config)
    print(f"demo finished in {int(round(time.monotonic() - start))} s", flush=True)


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-demo", main)


if __name__ == "__main__":
    run()
