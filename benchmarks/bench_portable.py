"""CPU speed of the exported formats, side by side in one run.

    python -m benchmarks.bench_portable [--num_attributes=26] [--reps=30] [--reps32=5]
        [--threads=N] [--calibration_images=16]

The full ALM model (BN-Inception, 256x128, random weights: speed does not
depend on them) is exported to a SavedModel (`predict_images`, what TF
Serving runs), ONNX, LiteRT float32 and int8 and OpenVINO. Every runtime
gets the same pre-resized RGB 0..255 images; repetitions are interleaved
(one call of each runtime per round) so that load on the machine hits all
of them alike. Prints batch-1 latency p50/p95, batch-1 and batch-32
throughput and the file sizes, as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np



def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    if path.endswith(".xml"):
        return os.path.getsize(path) + os.path.getsize(path[:-4] + ".bin")
    return os.path.getsize(path)


def build_runners(files, saved_model_dir, threads):
    """name -> (callable on float32 images, file size in bytes)."""
    import tensorflow as tf

    from alm_tf.artifacts import runtimes

    runners = {}
    loaded = tf.saved_model.load(saved_model_dir)
    signature = loaded.signatures["predict_images"]
    runners["SavedModel (TF)"] = (lambda x: signature(images=tf.constant(x))["probabilities"].numpy(),
                                  _size(saved_model_dir))
    for key, label in (("onnx", "ONNX Runtime"), ("litert_float32", "LiteRT float32"),
                       ("litert_int8", "LiteRT int8"), ("openvino", "OpenVINO")):
        model = runtimes.open_portable(files[key], num_threads=threads)
        runners[label] = (model.predict, _size(files[key]))
    return runners


def measure(runners, images, reps):
    """Interleaved timing: name -> list of seconds per call."""
    times = {name: [] for name in runners}
    for name, (fn, _) in runners.items():  # warm-up (and LiteRT's resize)
        fn(images)
    for _ in range(reps):
        for name, (fn, _) in runners.items():
            start = time.perf_counter()
            fn(images)
            times[name].append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_attributes", type=int, default=26)
    parser.add_argument("--reps", type=int, default=30, help="batch-1 rounds")
    parser.add_argument("--reps32", type=int, default=5, help="batch-32 rounds")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: all)")
    parser.add_argument("--calibration_images", type=int, default=16)
    args = parser.parse_args()

    import alm_tf
    from alm_tf import artifacts
    from alm_tf.serving import export, portable

    height, width = 256, 128
    model = alm_tf.build_model(args.num_attributes, input_shape=(height, width, 3))
    names = tuple(f"attr{i}" for i in range(args.num_attributes))
    rng = np.random.RandomState(0)
    calibration = rng.uniform(0, 255, (args.calibration_images, height, width, 3)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        source = artifacts.from_keras_model(model, names, origin="bench")
        saved_model = export.export_saved_model(source, os.path.join(tmp, "sm"), 1)
        files = portable.export_portable(model, names, source.thresholds, (height, width), tmp,
                                         ["onnx", "litert", "openvino"], litert_precisions=["int8"],
                                         calibration_images=calibration)
        print(f"exports: {time.time() - start:.0f} s", flush=True)
        runners = build_runners(files, saved_model, args.threads)
        one = rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)
        many = rng.uniform(0, 255, (32, height, width, 3)).astype(np.float32)
        t1 = measure(runners, one, args.reps)
        t32 = measure(runners, many, args.reps32)
    base = 1.0 / np.median(t1["SavedModel (TF)"])
    print(f"\nCPU: {os.cpu_count()} cores, threads={args.threads or 'runtime default'}, "
          f"M={args.num_attributes}, {height}x{width}, {args.reps} batch-1 rounds, "
          f"{args.reps32} batch-32 rounds (interleaved)\n")
    print("| runtime | batch-1 p50 ms | batch-1 p95 ms | batch-1 img/s | x SavedModel (b1) "
          "| batch-32 img/s | file MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (_, size) in runners.items():
        p50, p95 = np.percentile(t1[name], [50, 95]) * 1000
        rate1 = 1.0 / np.median(t1[name])
        rate32 = 32.0 / np.median(t32[name])
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {rate1:.1f} | {rate1 / base:.2f} "
              f"| {rate32:.1f} | {size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
