"""Per-batch losses of the feature cache on disk against a float32 cache in memory.

On a trained model dir (e.g. the demo's `models/alm`, BN-Inception ALM at
256x128): the backbone's taps of the first `--images` training images and
their mirrors go (a) into float32 arrays in memory, the cache's former
form, and (b) through `feature_cache.build_cache` into files. From the
same starting weights, `--steps` training steps of the heads (the
model's own TrainConfig: optimizer, learning-rate multipliers, loss) run
on the batches `feature_cache.example_order` gives, gathered from (a) and
read by `feature_cache.cached_dataset` from (b). Prints the largest
absolute and relative difference of the per-step losses and how many
are bit-identical.

Usage:
  .venv/bin/python -m benchmarks.cache_losses --model_dir=demo_output/models/alm \
      --data_dir=demo_output/records [--images=256] [--steps=20] [--seed=0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from alm_tf import artifacts, data as data_lib, model as model_lib  # noqa: E402
from alm_tf.training import TrainConfig, feature_cache  # noqa: E402
from alm_tf.training.step import StepSettings, make_optimizer, make_train_step  # noqa: E402


def _losses(args, config, priors, images_ds, on_disk: bool, work: str) -> list[float]:
    model = artifacts.load_keras_model(artifacts.weights_path(args.model_dir, "final"))
    model_lib.freeze_backbone(model)
    backbone, heads = feature_cache.split_model(model)
    optimizer = make_optimizer(config)
    optimizer.build(heads.trainable_variables)
    step = make_train_step(heads, optimizer, StepSettings.from_config(config, priors))
    if on_disk:
        cache = feature_cache.build_cache(backbone, images_ds, args.images, work, progress=False)
        batches = feature_cache.cached_dataset(cache, config.batch_size, args.seed)
    else:
        taps, labels = [[] for _ in backbone.outputs], []
        for batch in images_ds:
            images, batch_labels = batch[0], batch[1]
            plain = backbone(images, training=False)
            mirrored = backbone(tf.reverse(images, axis=[2]), training=False)
            for out, p, m in zip(taps, plain, mirrored):
                out.append(np.stack([p.numpy(), m.numpy()], axis=1))
            labels.append(batch_labels.numpy())
        taps = [np.concatenate(t) for t in taps]
        assert all(t.dtype == np.float32 for t in taps)
        labels = np.concatenate(labels).astype(np.float32)
        order, batch_size = feature_cache.example_order(len(labels), config.batch_size, args.seed)
        batches = order.batch(batch_size, drop_remainder=True).map(lambda i, v: (
            tuple(tf.gather_nd(t, tf.stack([i, v], 1)) for t in taps), tf.gather(labels, i)))
    return [float(step(batch)[0]) for batch in batches.take(args.steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    saved = artifacts.read_config(args.model_dir)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved["train"].items() if k in fields and k != "model"})
    height, width = saved["model"]["image_height"], saved["model"]["image_width"]
    images_ds = data_lib.make_dataset(args.data_dir, "train", batch_size=config.batch_size,
                                      image_size=(height, width), training=False).unbatch() \
        .take(args.images).batch(config.batch_size)
    with tempfile.TemporaryDirectory() as work:
        memory = _losses(args, config, saved["data"]["priors"], images_ds, False, work)
        disk = _losses(args, config, saved["data"]["priors"], images_ds, True,
                       os.path.join(work, feature_cache.DIRECTORY))
    diff = np.abs(np.array(disk) - np.array(memory))
    print(f"{args.steps} steps of batch {config.batch_size} on {args.images} images: "
          f"{int((diff == 0).sum())} losses bit-identical, max |diff| {diff.max():.3g}, "
          f"max relative {np.max(diff / np.abs(memory)):.3g}")
    print("first losses, memory:", [f"{x:.7f}" for x in memory[:5]])
    print("first losses, disk:  ", [f"{x:.7f}" for x in disk[:5]])


if __name__ == "__main__":
    main()
