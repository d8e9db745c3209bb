"""How the ALM boxes move during the ALM stage: hit rate and mA over steps.

The demo's second stage, unrolled so that the localization hit rate
(`alm_tf.demo.localization_hit_rate`, the demo's definition) can be read
every `--eval_every` steps on the synthetic test split. It starts from a
baseline `.keras` (for example `demo_output/models/baseline/final.keras`)
and trains with the trainer's loss, Adam (with alm-train's box
learning-rate multipliers) and L2 decay (added to the gradient as
alm-train does), with the backbone frozen (`--freeze_backbone`,
the demo's choice) or not. This is the script behind the "why the ALM stage
freezes the backbone" and "boxes that start equal" figures in BUILD_NOTES.md.

Usage (after `make demo`, which leaves the data and the baseline):
  .venv/bin/python benchmarks/localization_study.py \
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
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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

    import keras
    import tensorflow as tf

    import alm_tf
    from alm_tf import demo, losses, metrics
    from alm_tf.data import pipeline, preprocessing
    from alm_tf.model import freeze_backbone, zero_box_kernels
    from alm_tf.training import model_dir as md, optimizers

    keras.utils.set_random_seed(args.seed)
    manifest = pipeline.read_manifest(args.records)
    attributes = list(manifest["attributes"])
    priors = tf.constant(np.asarray(manifest["splits"]["train"]["positive_ratio"], np.float32))
    model = alm_tf.build_model(len(attributes), input_shape=(args.height, args.width, 3))
    md.load_matching_weights(model, args.baseline)
    if args.box_init_scale is not None:
        for layer in model.layers:
            if hasattr(layer, "box_bias"):
                b = np.zeros(tuple(layer.box_bias.shape), np.float32)
                b[:, :2] = np.log(args.box_init_scale / (1 - args.box_init_scale))
                layer.box_bias.assign(b)
    if args.box_kernel_init == "zeros":
        zero_box_kernels(model)
    if args.freeze_backbone:
        freeze_backbone(model)
    train_vars = model.trainable_variables

    with open(os.path.join(args.synth, "annotations.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    with open(os.path.join(args.synth, "regions.json")) as f:
        regions = json.load(f)
    images = np.stack([
        preprocessing.preprocess_images(preprocessing.decode_image(
            open(os.path.join(args.synth, r["image"]), "rb").read()), args.height, args.width).numpy()
        for r in rows])
    labels = np.array([[int(r[a]) for a in attributes] for r in rows])

    curve = []

    def evaluate(step: int) -> None:
        out = model.predict(images, batch_size=64, verbose=0)
        hit = demo.localization_hit_rate(out["boxes"], [r["image"] for r in rows], labels, attributes,
                                         regions["images"], regions["attribute_regions"])
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

    optimizer = optimizers.AdamWithLRMultipliers(
        args.learning_rate, lr_multipliers={optimizers.BOX_KERNEL: args.box_lr_multiplier,
                                            optimizers.BOX_BIAS: args.box_bias_lr_multiplier})
    optimizer.build(train_vars)

    @tf.function
    def step_fn(x, y):
        with tf.GradientTape() as tape:
            loss, _ = losses.alm_loss(y, model(x, training=True), priors, "official")
            objective = loss + 0.5 * args.weight_decay * tf.add_n(
                [tf.reduce_sum(tf.square(v)) for v in train_vars])
        grads = tape.gradient(objective, train_vars)
        optimizer.apply_gradients(zip(grads, train_vars))
        return loss

    data = pipeline.make_dataset(args.records, "train", batch_size=args.batch_size,
                                 image_size=(args.height, args.width), training=True,
                                 seed=args.seed, repeat=True)
    evaluate(0)
    start = time.monotonic()
    decay_from = args.steps - int(round(args.steps * args.decay_fraction))
    for step, (x, y) in enumerate(data.take(args.steps), 1):
        if step == decay_from + 1:
            optimizer.learning_rate = args.learning_rate * 0.1
        step_fn(x, y)
        if step % args.eval_every == 0 or step == args.steps:
            evaluate(step)
    seconds = time.monotonic() - start
    print(f"{args.steps} steps in {seconds:.0f} s (with the evaluations), "
          f"backbone {'frozen' if args.freeze_backbone else 'trained'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "curve": curve, "seconds": seconds}, f, indent=2)


if __name__ == "__main__":
    main()
