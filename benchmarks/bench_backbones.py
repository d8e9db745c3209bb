"""Parameters, multiply-adds and CPU throughput of the ALM backbones.

For each backbone: its parameters and multiply-adds (conv / depthwise /
dense MACs counted from layer shapes, and TensorFlow's profiler FLOPs on the
frozen inference graph as a cross-check; the profiler does not count Einsum),
then images/s for inference and
for a training step at batch 32, 256x128. When `alm_tf.build_model` exists
the timed network is the full ALM model (M = 26 attributes, a sigmoid
cross-entropy on the four branch logits, SGD); otherwise the backbone alone
(SGD on the sum of its outputs). The 1-minute load average is printed per
row: timings taken while other processes share the CPUs are not comparable.

On TensorFlow's CPU kernels ConvNeXt is far slower than its MACs suggest:
keras builds its 7x7 depthwise convolutions as `Conv2D(groups=C)`, and the
grouped convolution runs about 100x slower than `DepthwiseConv2D` on CPU.

Usage:
  .venv/bin/python -m benchmarks.bench_backbones \
      [--backbones=resnet50,mobilenet_v3_large] [--batch_size=32] \
      [--height=256] [--width=128] [--iters=3] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from alm_tf import build_model  # noqa: E402
from alm_tf.backbones import keras_applications as ka  # noqa: E402
from alm_tf.backbones.registry import BACKBONES  # noqa: E402

NUM_ATTRIBUTES = 26
ALL_BACKBONES = BACKBONES


def _leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    leaves = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves.extend(_leaf_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def _shape(tensor: Any) -> tuple:
    return tuple(tensor.shape)


def count_macs(model: keras.Model) -> int:
    """Per-image multiply-adds of Conv2D, DepthwiseConv2D and Dense layers."""
    total = 0
    for layer in _leaf_layers(model):
        if not isinstance(
            layer,
            (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense),
        ):
            continue
        try:
            out_shape = _shape(layer.output)
            in_shape = _shape(layer.input)
        except (AttributeError, ValueError):
            continue  # called several times or never: not in this count
        positions = int(np.prod([d for d in out_shape[1:-1]], dtype=np.int64))
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += positions * kh * kw * out_shape[-1]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = in_shape[-1] // layer.groups
            total += positions * kh * kw * cin * out_shape[-1]
        else:
            total += positions * in_shape[-1] * out_shape[-1]
    return int(total)


def profiler_flops(model: keras.Model, shape: tuple[int, int, int]) -> int:
    """TF profiler float operations of one image's frozen inference graph."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1,) + shape, tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return int(profile.total_float_ops)


def _trainable(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def build_backbone(name: str, shape: tuple[int, int, int]) -> keras.Model:
    if name == "bn_inception":
        from alm_tf.backbones.bn_inception import build_bn_inception

        return build_bn_inception(shape)
    return ka.build_keras_application_backbone(name, shape)


def _timed(step, batch: Any, iters: int) -> float:
    step(*batch)  # trace
    step(*batch)  # warm
    start = time.perf_counter()
    for _ in range(iters):
        out = step(*batch)
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    return time.perf_counter() - start


def throughput(
    model: keras.Model, full: bool, batch_size: int, shape: tuple, iters: int
) -> tuple[float, float]:
    """(inference images/s, train-step images/s)."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size,) + shape).astype(np.float32))
    labels = tf.constant(
        rng.integers(0, 2, size=(batch_size, NUM_ATTRIBUTES)).astype(np.float32)
    )
    optimizer = keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9)
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function
    def infer(x, y):
        return model(x, training=False)

    @tf.function
    def train(x, y):
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            if full:
                keys = [k for k in ("level1", "level2", "level3", "global") if k in outputs]
                loss = tf.add_n(
                    [
                        tf.reduce_mean(
                            tf.nn.sigmoid_cross_entropy_with_logits(y, outputs[k])
                        )
                        for k in keys
                    ]
                )
            else:
                loss = tf.add_n([tf.reduce_sum(o) for o in outputs]) * 1e-6
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    t_infer = _timed(infer, (images, labels), iters)
    t_train = _timed(train, (images, labels), iters)
    return batch_size * iters / t_infer, batch_size * iters / t_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(ALL_BACKBONES))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    names = [n for n in args.backbones.split(",") if n]
    for name in names:
        if name not in ALL_BACKBONES:
            parser.error(
                f"--backbones: expected names from {list(ALL_BACKBONES)}. "
                f"Received: {name!r}"
            )
    shape = (args.height, args.width, 3)
    full = build_model is not None
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs; batch {args.batch_size}, {shape[0]}x{shape[1]}, "
        f"{args.iters} timed iterations; load average {os.getloadavg()[0]:.1f}; "
        "timed network: "
        + (f"full ALM model, M={NUM_ATTRIBUTES}" if full else "backbone alone"),
        flush=True,
    )
    rows = []
    for name in names:
        keras.backend.clear_session()
        backbone = build_backbone(name, shape)
        row: dict[str, Any] = {
            "backbone": name,
            "backbone_params": backbone.count_params(),
            "backbone_trainable_params": _trainable(backbone),
            "backbone_gmacs": count_macs(backbone) / 1e9,
            "backbone_gflops_profiler": profiler_flops(backbone, shape) / 1e9,
        }
        timed = backbone
        if full:
            timed = build_model(NUM_ATTRIBUTES, backbone=name, input_shape=shape)
            row["model_params"] = timed.count_params()
            row["model_trainable_params"] = _trainable(timed)
            row["model_gflops_profiler"] = profiler_flops(timed, shape) / 1e9
        infer_ips, train_ips = throughput(timed, full, args.batch_size, shape, args.iters)
        # Other processes on the same CPUs skew the timings: record the load.
        row["load_average_1min"] = os.getloadavg()[0]
        row["infer_images_per_s"] = infer_ips
        row["train_images_per_s"] = train_ips
        rows.append(row)
        print(json.dumps(row), flush=True)

    header = [
        "backbone",
        "backbone params (trainable)",
        "backbone GMACs",
        "backbone GFLOPs (profiler)",
    ]
    if full:
        header += ["ALM params (trainable)", "ALM GFLOPs (profiler)"]
    header += ["infer img/s", "train img/s", "load avg"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [
            r["backbone"],
            f"{r['backbone_params']:,} ({r['backbone_trainable_params']:,})",
            f"{r['backbone_gmacs']:.2f}",
            f"{r['backbone_gflops_profiler']:.2f}",
        ]
        if full:
            cells += [
                f"{r['model_params']:,} ({r['model_trainable_params']:,})",
                f"{r['model_gflops_profiler']:.2f}",
            ]
        cells += [
            f"{r['infer_images_per_s']:.1f}",
            f"{r['train_images_per_s']:.1f}",
            f"{r['load_average_1min']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
