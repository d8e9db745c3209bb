"""The heads alone: this tree's ALM layer against a git revision's, and a profile.

The heads are what the full model adds to the backbone: the 4d/5b lateral
convolutions and the three ALM levels, fed random backbone taps of the
BN-Inception ALM (M attributes, 256x128). The same weights go into both
versions; each round runs every version once (inference, or a forward and
backward for the train step), and the figure is the median. `--profile`
prints TensorFlow's per-op times of this tree's heads instead (op type,
then the costliest ops with their input shapes): where the time goes.

Usage:
    .venv/bin/python -m benchmarks.bench_heads [--reference main]
        [--batch_sizes 1,8,32] [--mode infer,train] [--rounds 15]
        [--threads 0] [--clock wall|cpu] [--profile]

`--threads 1 --clock cpu` (one op thread, process CPU time) is steady on a
loaded machine; `wall` with the default threads is what users feel.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks._common import reference_layer  # noqa: E402

TAPS = ("inception_3b_output", "inception_4d_output", "inception_5b_output")


def _heads(model, layer_cls):
    """keras.Model: backbone taps -> [level logits, boxes] x 3, sharing `model`'s laterals."""
    import keras

    taps = [model.get_layer(name).output for name in TAPS]
    inputs = [keras.Input(shape=t.shape[1:]) for t in taps]
    lat5 = model.get_layer("latlayer_5b")(inputs[2])
    lat4 = model.get_layer("latlayer_4d")(inputs[1])
    outputs = []
    for name, parts in (("st_3b", [lat5, lat4, inputs[0]]), ("st_4d", [lat5, lat4]), ("st_5b", [lat5])):
        source = model.get_layer(name)
        layer = layer_cls.from_config(source.get_config())
        outputs.append(layer(parts))
        layer.set_weights(source.get_weights())
    return keras.Model(inputs, outputs), [tuple(t.shape[1:]) for t in taps]


def _function(head, feeds, mode):
    import tensorflow as tf

    weights = tf.cos(tf.range(head.outputs[0][0].shape[-1], dtype=tf.float32))
    variables = head.trainable_variables

    def loss_of(outputs):
        return tf.add_n([tf.reduce_sum(logits * weights) + tf.reduce_sum(boxes)
                         for logits, boxes in outputs])

    if mode == "infer":
        return tf.function(lambda: loss_of(head(feeds, training=False)))

    def train():
        with tf.GradientTape() as tape:
            loss = loss_of(head(feeds, training=True))
        return tape.gradient(loss, variables)

    return tf.function(train)


def _profile(fn, shapes_of, rounds=5, top=30):
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(rounds):
            tf.nest.map_structure(np.asarray, fn())
        tf.profiler.experimental.stop()
        path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    by_op, by_type, count = collections.Counter(), collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith(("EagerLocal", "KernelAndDevice", "Executor",
                                                        "Threadpool", "__inference")):
                    continue
                op, kind = name.rsplit(":", 1)
                ms = event.duration_ps / 1e9 / rounds
                by_op[(op, kind)] += ms
                by_type[kind] += ms
                count[kind] += 1 / rounds
    print(f"  ops run: {sum(count.values()):.0f}, op time {sum(by_type.values()):.2f} ms")
    for kind, ms in by_type.most_common(12):
        print(f"  {ms:9.3f} ms  {count[kind]:4.0f} x {kind}")
    print("  costliest ops:")
    for (op, kind), ms in by_op.most_common(top):
        print(f"  {ms:9.3f} ms  {kind:24s} {op.split('/', 1)[-1]:40s} {shapes_of.get(op, '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default="main", help="git revision to compare with")
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--mode", default="infer,train")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--num_attributes", type=int, default=51)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    import alm_tf
    from alm_tf.layers.attribute_localization import AttributeLocalization

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    model = alm_tf.build_model(args.num_attributes, input_shape=(256, 128, 3))
    workdir = tempfile.mkdtemp(prefix="bench_heads_")
    classes = {"this tree": AttributeLocalization}
    if not args.profile:
        classes[args.reference] = reference_layer(args.reference, workdir)
    heads = {}
    for name, cls in classes.items():
        heads[name], tap_shapes = _heads(model, cls)
    rng = np.random.default_rng(0)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        feeds = [tf.constant(rng.normal(size=(batch, *s)).astype(np.float32)) for s in tap_shapes]
        for mode in args.mode.split(","):
            fns = {name: _function(head, feeds, mode) for name, head in heads.items()}
            results = {name: tf.nest.map_structure(np.asarray, fn()) for name, fn in fns.items()}
            if args.profile:
                graph = fns["this tree"].get_concrete_function().graph
                shapes_of = {op.name: [tuple(t.shape) for t in op.inputs if t.dtype != tf.resource][:2]
                             for op in graph.get_operations()}
                print(f"batch {batch} {mode}:")
                _profile(fns["this tree"], shapes_of)
                continue
            ours, ref = (tf.nest.flatten(results[n]) for n in classes)
            diff = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
                       for a, b in zip(ours, ref))
            inner = 5 if batch == 1 else 1
            times = {name: [] for name in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    start = clock()
                    for _ in range(inner):
                        tf.nest.map_structure(np.asarray, fn())
                    times[name].append((clock() - start) / inner)
            med = {name: statistics.median(t) * 1000 for name, t in times.items()}
            print(json.dumps({"batch": batch, "mode": mode, "clock": args.clock,
                              **{f"{name} ms": round(v, 2) for name, v in med.items()},
                              "ratio": round(med["this tree"] / med[args.reference], 3),
                              "max rel diff": float(f"{diff:.2e}")}), flush=True)


if __name__ == "__main__":
    main()
