"""Speed against the official network: train step and inference, alternating.

The official model is `alm_tf/testing/torch_reference.py` (a PyTorch re-implementation
of the official semantics: its ALMs run in a Python loop over attributes,
with `affine_grid` + `grid_sample` per attribute). Both sides get the same
random batch (256x128, M attributes), the same number of CPU threads, Adam
(lr 1e-4) and the official loss (four branch BCEs, positive weight
exp(1 - p), summed); ours is `alm_tf.training.step.make_train_step`, the
step `alm-train` runs. The machines here are shared and noisy, so the
variants run alternately, one step each per round, and each figure is the
median over the rounds; the ratio is official time / ours.

Usage:
    .venv/bin/python -m benchmarks.bench_official [--batch_size 32]
        [--rounds 5] [--mode train,infer] [--variants eager,xla]
        [--threads 0] [--num_attributes 51]

`--variants`: `eager` is our step as `alm-train` runs it by default;
`xla` adds `jit_compile` (`alm-train --jit_compile`). `--threads 0` keeps
each library's default (one thread per core); otherwise both use that many.
oneDNN is a process-wide switch (`TF_ENABLE_ONEDNN_OPTS`): compare it by
running this script under each setting, each run's ratio to the official
model being measured in that run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

VARIANTS = ("eager", "xla")
MODES = ("train", "infer")


def _ours(args, x, y, priors, variant, mode):
    import tensorflow as tf

    import alm_tf
    from alm_tf import names
    from alm_tf.training.optimizers import AdamWithLRMultipliers
    from alm_tf.training.step import StepSettings, make_train_step

    model = alm_tf.build_model(args.num_attributes, input_shape=(256, 128, 3))
    images, labels = tf.constant(x.transpose(0, 2, 3, 1)), tf.constant(y)
    if mode == "infer":
        infer = tf.function(lambda: model(images, training=False)[names.FUSED_OUTPUT],
                            jit_compile=variant == "xla")
        return lambda: infer().numpy()
    # alm-train's optimizer (step.make_optimizer without multipliers).
    optimizer = AdamWithLRMultipliers(learning_rate=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    optimizer.build(model.trainable_variables)
    settings = StepSettings(priors=priors, loss_weighting="official",
                            global_batch_size=args.batch_size, jit_compile=variant == "xla")
    step = make_train_step(model, optimizer, settings)
    return lambda: step((images, labels))[0].numpy()


def _official(args, x, y, priors, mode):
    import torch
    from torch.nn import functional as F

    from alm_tf.testing.torch_reference import ALMNet

    model = ALMNet(args.num_attributes)
    images, labels = torch.from_numpy(x), torch.from_numpy(y)
    if mode == "infer":
        model.eval()

        def infer():
            with torch.no_grad():
                logits = model(images)
            return torch.stack(logits).max(0).values.numpy()

        return infer
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    weight = torch.where(labels > 0.5, torch.exp(1.0 - torch.from_numpy(priors)),
                         torch.ones_like(labels))

    def train():
        optimizer.zero_grad()
        loss = sum(F.binary_cross_entropy_with_logits(out, labels, weight=weight)
                   for out in model(images))
        loss.backward()
        optimizer.step()
        return loss.item()

    return train


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", default="train,infer")
    parser.add_argument("--variants", default="eager")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--num_attributes", type=int, default=51)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    modes = [m for m in args.mode.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    for value, legal in ((modes, MODES), (variants, VARIANTS)):
        bad = sorted(set(value) - set(legal))
        if bad or not value:
            parser.error(f"choose from {legal}. Received: {value}")

    import tensorflow as tf
    import torch

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, 3, 256, 128)).astype(np.float32)
    y = (rng.random((args.batch_size, args.num_attributes)) < 0.3).astype(np.float32)
    priors = rng.uniform(0.05, 0.5, args.num_attributes).astype(np.float32)
    report = {"batch_size": args.batch_size, "threads": args.threads or os.cpu_count(),
              "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
              "torch": torch.__version__, "tensorflow": tf.__version__}
    for mode in modes:
        fns = {"official": _official(args, x, y, priors, mode)}
        for variant in variants:
            fns[variant] = _ours(args, x, y, priors, variant, mode)
        for name, fn in fns.items():  # tracing, XLA compilation, allocator warm-up
            start = time.perf_counter()
            for _ in range(args.warmup):
                fn()
            report[f"{mode}_{name}_warmup_s"] = round(time.perf_counter() - start, 1)
        times = {name: [] for name in fns}
        for _ in range(args.rounds):
            for name, fn in fns.items():
                times[name].append(_time(fn))
        official = statistics.median(times["official"])
        for name, values in times.items():
            med = statistics.median(values)
            report[f"{mode}_{name}_img_s"] = round(args.batch_size / med, 2)
            if name != "official":
                report[f"{mode}_{name}_speedup"] = round(official / med, 2)
        print(json.dumps(report), flush=True)
    print("\n| mode | variant | img/s | official img/s | speedup |\n| --- | --- | ---: | ---: | ---: |")
    for mode in modes:
        for variant in variants:
            print(f"| {mode} | {variant} | {report[f'{mode}_{variant}_img_s']} | "
                  f"{report[f'{mode}_official_img_s']} | {report[f'{mode}_{variant}_speedup']}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
