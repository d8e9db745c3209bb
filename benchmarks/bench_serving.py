"""SavedModel vs Keras model on CPU: latency at batch 1, images/s at batch 32.

The full ALM model (BN-Inception, 256x128, M = 26, random weights) is
written to a temporary model dir, exported with `alm_tf.serving.export`,
and loaded with `tf.saved_model.load`. Timed side by side, in alternation
so that drifting CPU load hits both alike:

  savedmodel  the `predict_images` signature (RGB 0..255 float32 at 256x128)
  keras       a tf.function of the same preprocessing (resize_images +
              normalize_images) -> Keras model -> sigmoid -> thresholds
  bytes       `serving_default` on JPEG bytes (adds decoding; reported only)

The target: the SavedModel within 10% of the Keras model. The 1-minute load
average is printed: timings taken while other processes share the CPUs are
not comparable.

Usage:
  .venv/bin/python -m benchmarks.bench_serving [--latency_runs=50]
      [--throughput_runs=5] [--batch_size=32] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import alm_tf  # noqa: E402
from alm_tf import artifacts  # noqa: E402
from alm_tf.preprocessing import pixels as preprocessing  # noqa: E402
from alm_tf.serving import export  # noqa: E402

NUM_ATTRIBUTES = 26
HEIGHT, WIDTH = 256, 128


def _timed(fn, arg):
    start = time.perf_counter()
    out = fn(arg)
    out["probabilities"].numpy()  # wait for the result
    return time.perf_counter() - start


def _alternate(fns: dict, args: dict, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        for name, fn in fns.items():
            _timed(fn, args[name])
    times = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            times[name].append(_timed(fn, args[name]))
    return {name: np.asarray(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency_runs", type=int, default=50)
    parser.add_argument("--throughput_runs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    model = alm_tf.build_model(NUM_ATTRIBUTES, input_shape=(HEIGHT, WIDTH, 3))
    names = tuple(f"attribute_{m}" for m in range(NUM_ATTRIBUTES))
    source = artifacts.from_keras_model(model, names, origin="bench")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export.export_saved_model(source, tmp)
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(path)
        predict_images = loaded.signatures["predict_images"]
        serving_default = loaded.signatures["serving_default"]
        thresholds = tf.constant(source.thresholds)

        @tf.function(jit_compile=False)
        def keras_fn(images):
            x = preprocessing.normalize_images(preprocessing.resize_images(images, HEIGHT, WIDTH))
            outputs = model(x, training=False)
            probabilities = tf.sigmoid(outputs["logits"])
            return {"probabilities": probabilities, "boxes": outputs["boxes"],
                    "labels": tf.cast(probabilities > thresholds, tf.int32)}

        fns = {"savedmodel": lambda x: predict_images(images=x), "keras": keras_fn,
               "bytes": lambda x: serving_default(image_bytes=x)}
        rng = np.random.default_rng(0)
        results = {"export_s": round(export_s, 1), "load_avg_1min_start": os.getloadavg()[0],
                   "cpus": os.cpu_count(), "tensorflow": tf.__version__}
        for batch, runs, warmup in ((1, args.latency_runs, 5), (args.batch_size, args.throughput_runs, 2)):
            images = rng.integers(0, 256, (batch, HEIGHT, WIDTH, 3)).astype(np.uint8)
            jpegs = tf.constant([tf.io.encode_jpeg(x, quality=90).numpy() for x in images])
            inputs = {"savedmodel": tf.constant(images, tf.float32),
                      "keras": tf.constant(images, tf.float32), "bytes": jpegs}
            a = predict_images(images=inputs["savedmodel"])["probabilities"].numpy()
            b = keras_fn(inputs["keras"])["probabilities"].numpy()
            results[f"max_abs_diff_batch{batch}"] = float(np.abs(a - b).max())
            times = _alternate(fns, inputs, runs, warmup)
            for name, t in times.items():
                if batch == 1:
                    results[f"{name}_p50_ms"] = round(1e3 * float(np.percentile(t, 50)), 2)
                    results[f"{name}_p95_ms"] = round(1e3 * float(np.percentile(t, 95)), 2)
                else:
                    results[f"{name}_images_per_s_batch{batch}"] = round(batch * len(t) / t.sum(), 2)
        results["load_avg_1min_end"] = os.getloadavg()[0]
    k, s = results["keras_p50_ms"], results["savedmodel_p50_ms"]
    results["latency_p50_ratio_savedmodel_over_keras"] = round(s / k, 3)
    tk = results[f"keras_images_per_s_batch{args.batch_size}"]
    ts = results[f"savedmodel_images_per_s_batch{args.batch_size}"]
    results["throughput_ratio_savedmodel_over_keras"] = round(ts / tk, 3)
    results["within_10_percent"] = bool(s <= 1.1 * k and ts >= tk / 1.1)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
