"""Model benchmark: parameters, multiply-adds, CPU speed and peak memory.

Measures, in ONE run (these machines are shared and noisy, so only ratios
measured side by side mean much):
- trainable parameters and multiply-accumulates (convolutions, dense layers
  and the ALM layers' matmuls) of the full ALM model and of the baseline;
- for each batch size, inference and train-step images/s of the full model
  and the baseline (interleaved repetitions, median), and of the ALM layers
  alone (fed the backbone's taps);
- peak resident memory of a training loop, each model in its own process.

`--reference REV` adds the full model built with git revision REV's ALM
layer (`benchmarks/_common.py`), timed in the same interleaved rounds:
a before/after of a change to the heads from one run.

Usage:
    .venv/bin/python -m benchmarks.bench_model [--batch_sizes 1,8,32]
        [--repeats 5] [--num_attributes 51] [--backbone bn_inception]
        [--reference main]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def _tf():
    import keras
    import tensorflow as tf

    return tf, keras


def count_macs(model) -> dict:
    """Multiply-accumulates of one image, split into parts."""
    from alm_tf.layers.attribute_localization import AttributeLocalization

    parts = {"backbone": 0, "laterals": 0, "alm": 0, "heads": 0}
    for layer in model.layers:
        sub = getattr(layer, "layers", None)
        layers = sub if sub else [layer]
        for item in layers:
            name = item.name
            if item.__class__.__name__ in ("Conv2D", "DepthwiseConv2D"):
                out = item.output.shape
                kh, kw = item.kernel_size
                cin = item.kernel.shape[2]
                macs = out[1] * out[2] * kh * kw * cin * (
                    item.kernel.shape[3] if item.__class__.__name__ == "Conv2D"
                    else 1)
                key = "laterals" if name.startswith("latlayer") else "backbone"
                parts[key] += int(macs)
            elif item.__class__.__name__ == "Dense":
                parts["heads"] += int(np.prod(item.kernel.shape))
            elif isinstance(item, AttributeLocalization):
                parts["alm"] += _alm_macs(item)
    parts["total"] = sum(parts.values())
    return parts


def _alm_macs(layer) -> int:
    m, c = layer.num_attributes, layer.channels
    macs = m * c * 4 + m * c  # box regressor, classifier
    if layer.channel_attention:
        r = c // layer.reduction
        macs += 2 * m * c * r
    for k, shape in enumerate(layer.part_shapes):
        h, w, ck = shape[1], shape[2], shape[3]
        macs += (m + 1) * h * w * ck  # weighted pools (+ the plain mean)
        if layer.lateral_units and k == len(layer.part_shapes) - 1:
            macs += (m + 1) * ck * layer.lateral_units
    return int(macs)


def _build(kind, args):
    import alm_tf
    from alm_tf import model as model_module

    levels = () if kind == "baseline" else (1, 2, 3)
    if kind != "reference":
        return alm_tf.build_model(args.num_attributes, backbone=args.backbone,
                                  input_shape=(256, 128, 3), alm_levels=levels)
    import tempfile

    from benchmarks._common import reference_layer

    ours = model_module.AttributeLocalization
    model_module.AttributeLocalization = reference_layer(
        args.reference, tempfile.mkdtemp(prefix="bench_model_"))
    try:
        return alm_tf.build_model(args.num_attributes, backbone=args.backbone,
                                  input_shape=(256, 128, 3), alm_levels=levels)
    finally:
        model_module.AttributeLocalization = ours


def _steps(model, batch, args):
    tf, keras = _tf()

    x = tf.random.normal((batch, 256, 128, 3))
    y = tf.cast(tf.random.uniform((batch, args.num_attributes)) > 0.5,
                tf.float32)
    from alm_tf.training.optimizers import AdamWithLRMultipliers

    optimizer = AdamWithLRMultipliers(learning_rate=1e-4)  # alm-train's Adam
    optimizer.build(model.trainable_variables)
    branches = [k for k in model.output if k.startswith("level")] + ["global"]

    @tf.function
    def infer():
        return model(x, training=False)["logits"]

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.add_n([tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(y, out[b]))
                for b in branches])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return infer, train


def _time(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        np.asarray(out)
        times.append(time.perf_counter() - start)
    return times


def _alm_only(model, batch):
    tf, keras = _tf()
    names = [layer.name for layer in model.layers]
    taps = [model.get_layer(n).output for n in
            ("inception_3b_output", "inception_4d_output",
             "inception_5b_output")]
    head_inputs = [keras.Input(shape=t.shape[1:]) for t in taps]
    # Re-run the pyramid + ALM part of the graph on fresh inputs.
    lat5 = model.get_layer("latlayer_5b")(head_inputs[2])
    lat4 = model.get_layer("latlayer_4d")(head_inputs[1])
    outs = [model.get_layer("st_3b")([lat5, lat4, head_inputs[0]])[0],
            model.get_layer("st_4d")([lat5, lat4])[0],
            model.get_layer("st_5b")([lat5])[0]]
    head = keras.Model(head_inputs, outs)
    feeds = [tf.random.normal((batch,) + tuple(t.shape[1:])) for t in taps]
    del names

    @tf.function
    def infer():  # every level's logits (one output alone would prune the others)
        return tf.add_n([tf.reduce_sum(out) for out in head(feeds, training=False)])

    return infer


def run_timing(args):
    tf, _ = _tf()
    kinds = ("full", "baseline") + (("reference",) if args.reference else ())
    models = {kind: _build(kind, args) for kind in kinds}
    if args.reference:
        models["reference"].set_weights(models["full"].get_weights())
    rows = []
    for batch in args.batch_sizes:
        fns = {k: _steps(m, batch, args) for k, m in models.items()}
        result = {"batch": batch}
        for mode, idx in (("infer", 0), ("train", 1)):
            times = {kind: [] for kind in models}
            for kind in times:  # warm-up / tracing
                _time(fns[kind][idx], 2)
            for _ in range(args.repeats):  # interleaved
                for kind in times:
                    times[kind] += _time(fns[kind][idx], 1)
            for kind in times:
                med = statistics.median(times[kind])
                result[f"{mode}_{kind}_ips"] = batch / med
            result[f"{mode}_ratio"] = (statistics.median(times["full"])
                                       / statistics.median(times["baseline"]))
            if args.reference:
                result[f"{mode}_reference_ratio"] = (
                    statistics.median(times["reference"])
                    / statistics.median(times["baseline"]))
        if args.backbone == "bn_inception":
            alm = _alm_only(models["full"], batch)
            _time(alm, 2)
            med = statistics.median(_time(alm, args.repeats))
            result["alm_only_ms"] = med * 1000
        rows.append(result)
        print(json.dumps(result), flush=True)
    return models, rows


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_memory_child(kind, batch, args):
    infer, train = _steps(_build(kind, args), batch, args)
    np.asarray(train())  # trace and build every kernel first
    rest = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM)
        f.write("5")
    for _ in range(3):
        np.asarray(train())
    # Peak RSS during steady-state training steps, and its rise above the
    # resting process (weights, optimizer slots, runtime).
    print(_status_mib("VmHWM"), _status_mib("VmHWM") - rest)


def measure_memory(kind, batch, args):
    cmd = [sys.executable, "-m", "benchmarks.bench_model", "--memory_child", kind,
           "--batch_sizes", str(batch), "--num_attributes",
           str(args.num_attributes), "--backbone", args.backbone]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    peak, rise = out.stdout.strip().splitlines()[-1].split()
    return int(peak), int(rise)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num_attributes", type=int, default=51)
    parser.add_argument("--backbone", default="bn_inception")
    parser.add_argument("--memory_child", default=None)
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument("--memory_runs", type=int, default=3)
    parser.add_argument("--reference", default="",
                        help="also time the full model with this git revision's ALM layer")
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.memory_child:
        run_memory_child(args.memory_child, args.batch_sizes[0], args)
        return
    from alm_tf.model import count_params

    models, rows = run_timing(args)
    print("\n| model | trainable params | MACs/image (G) |")
    print("| --- | ---: | ---: |")
    for kind, model in models.items():
        if kind == "reference":
            continue
        macs = count_macs(model)
        print(f"| {kind} | {count_params(model):,} | {macs['total'] / 1e9:.3f}"
              f" (backbone {macs['backbone'] / 1e9:.3f}, laterals "
              f"{macs['laterals'] / 1e9:.3f}, ALM {macs['alm'] / 1e9:.4f}) |")
    print("\n| batch | infer full img/s | infer base img/s | infer ratio | "
          "train full img/s | train base img/s | train ratio | ALM layers "
          "alone ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['batch']} | {r['infer_full_ips']:.1f} | "
              f"{r['infer_baseline_ips']:.1f} | {r['infer_ratio']:.3f} | "
              f"{r['train_full_ips']:.1f} | {r['train_baseline_ips']:.1f} | "
              f"{r['train_ratio']:.3f} | {r.get('alm_only_ms', float('nan')):.2f} |")
    if args.reference:
        print(f"\n| batch | infer ratio | infer ratio, {args.reference}'s ALM | "
              f"train ratio | train ratio, {args.reference}'s ALM |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['batch']} | {r['infer_ratio']:.3f} | "
                  f"{r['infer_reference_ratio']:.3f} | {r['train_ratio']:.3f} | "
                  f"{r['train_reference_ratio']:.3f} |")
    if not args.skip_memory:
        batch = max(args.batch_sizes)
        # RSS peaks vary run to run (allocator arenas, oneDNN caches): the
        # minimum of alternating runs of each model.
        full, base = [], []
        for _ in range(args.memory_runs):
            full.append(measure_memory("full", batch, args))
            base.append(measure_memory("baseline", batch, args))
        full, base = min(full), min(base)
        print(f"\nPeak RSS during training steps at batch {batch}: full "
              f"{full[0]} MiB, baseline {base[0]} MiB, ratio "
              f"{full[0] / base[0]:.3f}; rise above the resting process: "
              f"full {full[1]} MiB, baseline {base[1]} MiB, ratio "
              f"{full[1] / max(base[1], 1):.3f}")


if __name__ == "__main__":
    main()
