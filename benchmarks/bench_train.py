"""Training throughput of the real configuration through alm-train's loop.

Synthetic pedestrians (alm-synth's generator, JPEG) -> alm-convert's
converter -> `alm_tf.training.train` (the same loop, input pipeline,
loss and optimizer as `alm-train`): BN-Inception ALM, 256x128, batch 32 by
default. Reports images/s over the measured steps (after `--warmup` steps
that include tracing) and the share of step time spent waiting for the
input batch (`next(iterator)` on the distributed dataset).

Usage:
  .venv/bin/python -m benchmarks.bench_train [--steps=5] [--warmup=2] \
      [--batch_size=32] [--height=256] [--width=128] [--backbone=bn_inception] \
      [--alm_levels=1,2,3] [--mixed_precision=none] [--jit_compile] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from alm_tf.data import synth  # noqa: E402
from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402
from alm_tf.config import ModelConfig  # noqa: E402
from alm_tf.training import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--backbone", default="bn_inception")
    parser.add_argument("--alm_levels", default="1,2,3")
    parser.add_argument("--mixed_precision", default="none")
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--num_images", type=int, default=0,
                        help="synthetic images (default: enough for the steps)")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench_train_")
    try:
        total = args.warmup + args.steps
        num_images = args.num_images or int(total * args.batch_size / 0.7) + 16
        start = time.perf_counter()
        synth.generate(synth.SynthConfig(output_dir=os.path.join(work, "raw"),
                                         num_images=num_images, seed=0))
        convert(ConvertConfig(format="csv", annotations=os.path.join(work, "raw", "annotations.csv"),
                              images_dir=os.path.join(work, "raw"),
                              output_dir=os.path.join(work, "records"), show_progress=False))
        print(f"data: {num_images} synthetic images in {time.perf_counter() - start:.1f} s")
        levels = tuple(int(v) for v in args.alm_levels.split(",") if v)
        model = ModelConfig(backbone=args.backbone, image_height=args.height,
                            image_width=args.width, alm_levels=levels)
        config = TrainConfig(
            data_dir=os.path.join(work, "records"), model_dir=os.path.join(work, "model"),
            model=model, batch_size=args.batch_size, epochs=1, steps_per_epoch=total,
            mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
            val_split="none", progress=True)
        start = time.perf_counter()
        result = train(config)
        wall = time.perf_counter() - start
        timings = np.array(result.timings[args.warmup:])
        wait, step = timings[:, 0].sum(), timings[:, 1].sum()
        report = {
            "backbone": args.backbone, "alm_levels": list(levels),
            "image_size": [args.height, args.width], "batch_size": args.batch_size,
            "mixed_precision": args.mixed_precision, "jit_compile": args.jit_compile,
            "measured_steps": len(timings),
            "images_per_second": float(args.batch_size * len(timings) / step),
            "seconds_per_step": float(step / len(timings)),
            "input_wait_fraction": float(wait / step),
            "warmup_seconds": float(sum(t for _, t in result.timings[: args.warmup])),
            "train_call_seconds": wall, "cpu_count": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
