"""Throughput of the data path on this machine.

Synthetic images (alm-synth's generator) -> conversion (images/s, with 1 and
N decoding processes) -> input pipeline (decode, resize 256x128, flip,
normalize, batch 32: images/s). With `--model_backbone` (default
`bn_inception`) also times a training step of the full ALM model through
`benchmarks/bench_backbones.throughput` and prints how many training steps
the pipeline could feed (pipeline images/s / train images/s; above 1 means
the input is not the bottleneck).

Usage:
  .venv/bin/python -m benchmarks.bench_data [--num_images=1000] \
      [--workers=2] [--batch_size=32] [--height=256] [--width=128] \
      [--min_image_height=80] [--max_image_height=240] \
      [--model_backbone=bn_inception|''] [--compare_resize] [--json=out.json]

`--compare_resize` also times the pipeline with the resize it had before
issue 13 (bilinear without antialiasing), alternating three runs of each,
and reports the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from alm_tf.data import make_dataset, synth  # noqa: E402
from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402


def _time_convert(src: str, out: str, workers: int) -> float:
    cfg = ConvertConfig(
        format="csv", annotations=os.path.join(src, "annotations.csv"), images_dir=src,
        output_dir=out, workers=workers, examples_per_shard=256, show_progress=False,
        splits=(("all", ("all",)),),  # a split outside train/val/test is kept only when named
    )
    start = time.perf_counter()
    result = convert(cfg)
    elapsed = time.perf_counter() - start
    return result.num_written / elapsed


def _time_pipeline(records: str, batch_size: int, height: int, width: int, epochs: int = 2) -> float:
    ds = make_dataset(records, "all", batch_size=batch_size, image_size=(height, width), training=True, seed=0, repeat=True)
    it = iter(ds)
    next(it)  # Warm up: trace, fill the buffers.
    images = 0
    for _ in range(3):
        next(it)
    n_batches = 0
    start = time.perf_counter()
    deadline = start + 20.0
    while time.perf_counter() < deadline and n_batches < epochs * 40:
        x, _ = next(it)
        n_batches += 1
        images += int(x.shape[0])
    return images / (time.perf_counter() - start)


def _train_images_per_s(backbone: str, batch_size: int, height: int, width: int) -> float | None:
    try:
        from benchmarks.bench_backbones import throughput  # noqa: PLC0415

        from alm_tf import build_model
    except ImportError as e:
        print(f"(model timing unavailable: {e})")
        return None
    model = build_model(26, backbone=backbone, input_shape=(height, width, 3))
    return throughput(model, True, batch_size, (height, width, 3), 2)[1]


def _compare_resize(records: str, args) -> dict:
    """Medians of 3 alternating runs: the antialiased resize vs the one before it."""
    import numpy as np

    from alm_tf.preprocessing import pixels as preprocessing

    official = preprocessing.resize_images

    def plain(images, height, width):
        return tf.image.resize(tf.cast(images, tf.float32), (height, width), antialias=False)

    times = {"antialiased": [], "plain": []}
    try:
        for _ in range(3):
            for name, fn in (("antialiased", official), ("plain", plain)):
                preprocessing.resize_images = fn
                times[name].append(_time_pipeline(records, args.batch_size, args.height, args.width))
    finally:
        preprocessing.resize_images = official
    a, p = float(np.median(times["antialiased"])), float(np.median(times["plain"]))
    return {"pipeline_images_per_s_antialiased": a, "pipeline_images_per_s_plain_resize": p,
            "antialiased_over_plain": a / p}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--min_image_height", type=int, default=80)
    parser.add_argument("--max_image_height", type=int, default=240)
    parser.add_argument("--model_backbone", default="bn_inception")
    parser.add_argument("--compare_resize", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.num_images < args.batch_size * 4:
        parser.error(f"--num_images must be >= 4 batches. Received: {args.num_images}")
    tmp = tempfile.mkdtemp(prefix="bench_data_")
    try:
        src = os.path.join(tmp, "synth")
        start = time.perf_counter()
        synth.generate(synth.SynthConfig(
            src, args.num_images, seed=0, min_height=args.min_image_height,
            max_height=args.max_image_height, split_fractions=(1.0, 0.0, 0.0),
        ))
        synth_ips = args.num_images / (time.perf_counter() - start)
        # One split called "all" for the pipeline.
        csv_path = os.path.join(src, "annotations.csv")
        with open(csv_path) as f:
            text = f.read().replace(",train,", ",all,")
        with open(csv_path, "w") as f:
            f.write(text)
        rows = {"cpus": os.cpu_count(), "num_images": args.num_images, "synth_images_per_s": synth_ips}
        rows["convert_images_per_s_1_worker"] = _time_convert(src, os.path.join(tmp, "r1"), 1)
        if args.workers > 1:
            rows[f"convert_images_per_s_{args.workers}_workers"] = _time_convert(src, os.path.join(tmp, "rn"), args.workers)
        rows["pipeline_images_per_s"] = _time_pipeline(os.path.join(tmp, "r1"), args.batch_size, args.height, args.width)
        if args.compare_resize:
            rows.update(_compare_resize(os.path.join(tmp, "r1"), args))
        if args.model_backbone:
            train_ips = _train_images_per_s(args.model_backbone, args.batch_size, args.height, args.width)
            if train_ips:
                rows["train_step_images_per_s"] = train_ips
                rows["pipeline_over_train_ratio"] = rows["pipeline_images_per_s"] / train_ips
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"tensorflow {tf.__version__}; batch {args.batch_size}, {args.height}x{args.width}")
    for key, value in rows.items():
        print(f"{key:<36} {value:,.1f}" if isinstance(value, float) else f"{key:<36} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
