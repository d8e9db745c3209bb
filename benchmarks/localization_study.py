"""How the ALM boxes move during the ALM stage: hit rate and mA over steps.

The demo's second stage run by the trainer itself (`alm_tf.training.train`
with a callback), so that the localization hit rate
(`alm_tf.evaluation.localization.localization_hit_rate`, the demo's definition) can be
read every `--eval_every` steps on the synthetic test split. It starts from
a baseline `.keras` (for example `demo_output/models/baseline/final.keras`,
alm-train's `--init_checkpoint`) with alm-train's box options, with the
backbone frozen (`--freeze_backbone`, the demo's choice) or not. This is the script behind the "why the ALM stage
freezes the backbone" and "boxes that start equal" figures in BUILD_NOTES.md.

Usage (after `make demo`, which leaves the data and the baseline):
  .venv/bin/python -m benchmarks.localization_study \
      --synth=demo_output/synth --records=demo_output/records \
      --baseline=demo_output/models/baseline/final.keras \
      [--height=256 --width=128] [--steps=320] [--eval_every=80] \
      [--learning_rate=1e-4] [--decay_fraction=0] [--freeze_backbone] [--box_kernel_init=torch|zeros]
      [--box_lr_multiplier=1] [--box_bias_lr_multiplier=1] [--box_init_scale=S]
      [--seed=0] [--json=out.json]

The demo's ALM stage is `--freeze_backbone --box_kernel_init=zeros
--box_lr_multiplier=0.1 --box_bias_lr_multiplier=100`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", required=True, help="alm-synth output (annotations.csv, regions.json)")
    parser.add_argument("--records", required=True, help="alm-convert output of the same data")
    parser.add_argument("--baseline", required=True, help="baseline .keras to start from")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=320)
    parser.add_argument("--eval_every", type=int, default=80)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--decay_fraction", type=float, default=0.0,
                        help="the last share of the steps at learning_rate / 10 (the demo's decay_fraction)")
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--freeze_backbone", action="store_true")
    parser.add_argument("--box_lr_multiplier", type=float, default=1.0,
                        help="learning rate of the ALM box kernels relative to the rest "
                             "(TrainConfig.box_lr_multiplier)")
    parser.add_argument("--box_bias_lr_multiplier", type=float, default=1.0,
                        help="the same for the box biases (TrainConfig.box_bias_lr_multiplier)")
    parser.add_argument("--box_init_scale", type=float, default=None,
                        help="start every ALM box at this scale (sx = sy), centred; default: PyTorch's init")
    parser.add_argument("--box_kernel_init", choices=("torch", "zeros"), default="torch",
                        help="zeros: every image starts with the same box (TrainConfig.box_kernel_init)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the curve here")
    args = parser.parse_args()
    if args.box_init_scale is not None and not 0 < args.box_init_scale < 1:
        parser.error(f"--box_init_scale must be in (0, 1). Received: {args.box_init_scale}")
    for path in (args.synth, args.records, args.baseline):
        if not os.path.exists(path):
            parser.error(f"not found: {path}")

    import tempfile

    import keras

    from alm_tf.demo import run as demo
    from alm_tf.evaluation import localization
    from alm_tf.evaluation import metrics
    from alm_tf.config import ModelConfig
    from alm_tf.preprocessing import pixels as preprocessing
    from alm_tf.training import TrainConfig, train

    with open(os.path.join(args.synth, "annotations.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    with open(os.path.join(args.synth, "regions.json")) as f:
        regions = json.load(f)
    images = np.stack([
        preprocessing.preprocess_images(preprocessing.decode_image(
            open(os.path.join(args.synth, r["image"]), "rb").read()), args.height, args.width).numpy()
        for r in rows])

    curve = []

    class Study(keras.callbacks.Callback):
        """Reads the hit rate every --eval_every steps (and sets --box_init_scale at the start)."""

        def on_train_begin(self, logs=None):
            if args.box_init_scale is not None:
                for layer in self.model.layers:
                    if hasattr(layer, "box_bias"):
                        b = np.zeros(tuple(layer.box_bias.shape), np.float32)
                        b[:, :2] = np.log(args.box_init_scale / (1 - args.box_init_scale))
                        layer.box_bias.assign(b)
            self.evaluate(0)

        def on_train_batch_end(self, step, logs=None):
            if step % args.eval_every == 0 or step == args.steps:
                self.evaluate(step)

        def evaluate(self, step: int) -> None:
            attributes = self.attributes
            labels = np.array([[int(r[a]) for a in attributes] for r in rows])
            out = self.model.predict(images, batch_size=64, verbose=0)
            hit = localization.localization_hit_rate(out["boxes"], [r["image"] for r in rows], labels,
                                                     attributes, regions["images"],
                                                     regions["attribute_regions"])
            m = metrics.compute_metrics(labels, out["logits"], 0.5, from_logits=True)
            point = {"step": step, "mA": float(m["mA"]), "hit_rate": hit["overall"],
                     "levels": [hit[f"level{k}"] for k in (1, 2, 3)],
                     "height_only": hit["vertical_only"]["overall"],
                     "per_attribute": {a: {k: v[k] for k in ("overall", "level1", "level2", "level3") if k in v}
                                       for a, v in hit["per_attribute"].items()}}
            curve.append(point)
            print(f"step {step:4d}: mA {point['mA']:.3f}  hit rate {point['hit_rate']:.3f} "
                  f"(levels {' / '.join(f'{v:.2f}' for v in point['levels'])}, "
                  f"height only {point['height_only']:.3f})", flush=True)

    study = Study()
    with open(os.path.join(args.records, "manifest.json")) as f:
        study.attributes = json.load(f)["attributes"]
    epochs, per_epoch, decay = demo.stage_schedule(args.steps, args.decay_fraction)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as model_dir:
        train(TrainConfig(
            data_dir=args.records, model_dir=model_dir,
            model=ModelConfig(image_height=args.height, image_width=args.width),
            batch_size=args.batch_size, epochs=epochs, steps_per_epoch=per_epoch,
            decay_epochs=decay, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
            init_checkpoint=args.baseline, freeze_backbone=args.freeze_backbone,
            box_kernel_init=args.box_kernel_init, box_lr_multiplier=args.box_lr_multiplier,
            box_bias_lr_multiplier=args.box_bias_lr_multiplier, seed=args.seed, val_split="none",
            progress=False), callbacks=[study])
    seconds = time.monotonic() - start
    print(f"{args.steps} steps in {seconds:.0f} s (with the evaluations), "
          f"backbone {'frozen' if args.freeze_backbone else 'trained'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "curve": curve, "seconds": seconds}, f, indent=2)


if __name__ == "__main__":
    main()
