"""The ALM training loop: tf.function + strategy.run, resumable and exact.

Why not `model.fit`: Keras 3 `fit` fails under MultiWorkerMirroredStrategy
on TF 2.20/2.21, and we need control over resumption.

Reproducibility contract: with `seed` and `deterministic`, the data order
of epoch e is a pure function of (seed, e) (shuffle seeded with
`epoch_seed(seed, e)`, resumed mid-epoch by skipping the steps already
done), the learning rate a pure function of e, and everything else that
changes (model, optimizer slots, loss scale, step, epoch, best mA, RNG)
lives in the checkpoint. A run killed at any moment and re-run with the
same command therefore ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import summary_pb2

from alm_tf import losses, metrics
from alm_tf.training import distribution, model_dir as md, optimizers
from alm_tf.training.config import RESUME_KEYS, ConfigError, TrainConfig


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    step: int
    history: list  # one dict of validation metrics per epoch (this run)
    init_matched: Optional[tuple[int, int]] = None
    replicas: int = 1
    # (seconds waiting for the input batch, seconds for the whole step) of
    # every step this run executed.
    timings: list = dataclasses.field(default_factory=list)


_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def scalar_summary(name: str, value, step: int) -> None:
    """`tf.summary.scalar` without needing the tensorboard package installed."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_SCALAR_METADATA)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of an epoch: a pure function of (seed, epoch)."""
    return (int(seed) * 100_003 + int(epoch)) % (2**31 - 1)


def learning_rate_for_epoch(config: TrainConfig, epoch: int) -> float:
    decays = sum(1 for e in config.decay_epochs if epoch >= e)
    return config.learning_rate * config.decay_factor**decays


def split_info(manifest: dict, split: str) -> Optional[dict]:
    """The manifest entry of a split (top-level or under `splits`), or None."""
    for holder in (manifest.get("splits", {}), manifest):
        entry = holder.get(split)
        if isinstance(entry, dict) and "num_examples" in entry:
            return entry
    return None


def resolve_train_split(manifest: dict, config: TrainConfig) -> str:
    if config.train_split is not None:
        if split_info(manifest, config.train_split) is None:
            raise ConfigError(
                f"train_split {config.train_split!r} is not in the manifest of "
                f"{config.data_dir}. Received: train_split={config.train_split!r}")
        return config.train_split
    for name in ("train", "trainval"):
        if split_info(manifest, name) is not None:
            return name
    raise ConfigError(
        f"The manifest of {config.data_dir} has neither a 'train' nor a 'trainval' "
        "split; name one. Received: train_split=None")


def resolve_val_split(manifest: dict, config: TrainConfig, train_split: str) -> Optional[str]:
    if config.val_split is not None:
        if config.val_split in ("", "none"):
            return None
        if split_info(manifest, config.val_split) is None:
            raise ConfigError(
                f"val_split {config.val_split!r} is not in the manifest of "
                f"{config.data_dir}. Received: val_split={config.val_split!r}"
            )
        return config.val_split
    if train_split != "trainval" and split_info(manifest, "val") is not None:
        return "val"
    return None


def make_optimizer(config: TrainConfig):
    multipliers = {optimizers.BOX_KERNEL: config.box_lr_multiplier,
                   optimizers.BOX_BIAS: config.box_bias_lr_multiplier}
    multipliers = {k: v for k, v in multipliers.items() if v != 1.0}
    if config.optimizer == "adamw":
        cls = optimizers.AdamWWithLRMultipliers if multipliers else keras.optimizers.AdamW
        kwargs = {"weight_decay": config.weight_decay}
    else:  # L2 decay goes into the gradient in the step (PyTorch Adam).
        cls = optimizers.AdamWithLRMultipliers if multipliers else keras.optimizers.Adam
        kwargs = {}
    if multipliers:
        kwargs["lr_multipliers"] = multipliers
    opt = cls(learning_rate=config.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **kwargs)
    if config.mixed_precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def _check_resume(config: TrainConfig, path: str) -> None:
    if not os.path.exists(path):
        return
    saved = md.read_config(os.path.dirname(path)).get("train", {})
    current = config.to_json()
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for key in RESUME_KEYS:
        # A key the saved run predates had its default there.
        old, new = saved.get(key, defaults[key]), current[key]
        if isinstance(old, list):
            old = tuple(old)
        if old != new:
            raise ConfigError(
                f"{key} differs from the run in model_dir {config.model_dir} "
                f"({old!r}); resuming needs the same value. Received: {key}={new!r}"
            )


def _save_keras(model: keras.Model, path: str) -> None:
    tmp = path[: -len(".keras")] + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


def train(config: TrainConfig,
          model_builder: Optional[Callable] = None,
          data_module=None) -> TrainResult:
    """Trains (or resumes training of) ALM as `config` says.

    Args:
      config: the validated TrainConfig.
      model_builder: `f(ModelConfig) -> keras.Model` (default:
        `ModelConfig.build`); tests pass a tiny model.
      data_module: object with `read_manifest` and `make_dataset` (default
        `alm_tf.data`).

    Returns:
      TrainResult with the trained model (also saved as final.keras).
    """
    # The strategy first: multi-worker collectives need a fresh context.
    strategy = distribution.make_strategy(config.strategy)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.mixed_precision.global_policy().name
    policy = "float32" if config.mixed_precision == "none" else config.mixed_precision
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        return _train(config, strategy, model_builder, data_module)
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _train(config, strategy, model_builder, data_module):
    if data_module is None:
        import alm_tf.data as data_module
    from alm_tf.config import ModelConfig

    chief = distribution.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(
            f"batch_size must be divisible by the {replicas} replicas. "
            f"Received: batch_size={config.batch_size}")
    manifest = data_module.read_manifest(config.data_dir)
    attributes = list(manifest["attributes"])
    train_split = resolve_train_split(manifest, config)
    train_info = split_info(manifest, train_split)
    val_split = resolve_val_split(manifest, config, train_split)
    priors = np.asarray(train_info["positive_ratio"], np.float32)
    steps_per_epoch = config.steps_per_epoch or (
        train_info["num_examples"] // config.batch_size)
    if steps_per_epoch < 1:
        raise ConfigError(
            f"The {train_split} split has {train_info['num_examples']} "
            f"examples, fewer than one batch. Received: batch_size={config.batch_size}")
    total_steps = config.epochs * steps_per_epoch
    model_config = ModelConfig(
        num_attributes=len(attributes), backbone=config.backbone,
        image_height=config.image_height, image_width=config.image_width,
        alm_levels=config.alm_levels, top_down=config.top_down,
        channel_attention=config.channel_attention, fusion=config.fusion,
        upsampling=config.upsampling)
    ckpt_dir = os.path.join(config.model_dir, "checkpoints")
    os.makedirs(ckpt_dir, exist_ok=True)
    _check_resume(config, md.config_path(config.model_dir))
    if chief:
        md.write_json(md.config_path(config.model_dir), {
            "format_version": md.FORMAT_VERSION,
            "model": model_config.to_dict(),
            "image_size": [config.image_height, config.image_width],
            "attributes": attributes,
            "preprocessing": {"resize": "bilinear", "scale": "0..1",
                              "mean": md.IMAGENET_MEAN, "std": md.IMAGENET_STD},
            "data_dir": os.path.abspath(config.data_dir),
            "manifest": os.path.abspath(os.path.join(config.data_dir, "manifest.json")),
            "dataset": manifest.get("dataset"),
            "priors": priors.tolist(),
            "train": config.to_json(),
            "train_split": train_split,
            "val_split": val_split,
            "threshold": 0.5,
        })

    with strategy.scope():
        model = (model_builder or (lambda c: c.build()))(model_config)
        if config.box_kernel_init == "zeros":
            from alm_tf.model import zero_box_kernels

            print(f"box_kernel_init=zeros: the box kernels of {zero_box_kernels(model)} ALM "
                  "layers start at zero")
        if config.freeze_backbone:
            from alm_tf.model import freeze_backbone

            frozen = freeze_backbone(model)
            print(f"freeze_backbone: {frozen:,} backbone weights frozen, "
                  f"{sum(int(np.prod(v.shape)) for v in model.trainable_variables):,} trained")
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        best_var = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_mA")
    # State for any randomness drawn inside the loop (none at present: the
    # data order and flips are seeded by (seed, epoch) in the input pipeline).
    rng = tf.random.Generator.from_seed(config.seed)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var,
                                     epoch=epoch_var, best_mA=best_var, rng=rng)
    if chief:
        write_dir = ckpt_dir
    else:
        task_type, task_id = distribution.worker_info(strategy)
        write_dir = os.path.join(ckpt_dir, f".tmp_{task_type}_{task_id}")
    manager = tf.train.CheckpointManager(checkpoint, write_dir,
                                         max_to_keep=config.keep_checkpoints,
                                         checkpoint_name="ckpt")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    init_matched = None
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        logging.info("Resuming from %s (step %d)", latest, int(step_var.numpy()))
    elif config.init_checkpoint:
        init_matched = md.load_matching_weights(model, config.init_checkpoint)
        print(f"init_checkpoint: {init_matched[0]} layers matched, "
              f"{init_matched[1]} skipped")

    def save_checkpoint():
        path = manager.save(checkpoint_number=int(step_var.numpy()))
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
        return path

    # ---- steps -----------------------------------------------------------
    priors_t = tf.constant(priors)
    decay_l2 = config.optimizer == "adam" and config.weight_decay > 0
    float16 = config.mixed_precision == "mixed_float16"
    train_vars = model.trainable_variables
    train_metric = metrics.ALMMetrics(len(attributes), name="train_metrics")

    def forward_backward(images, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss, branches = losses.alm_loss(
                labels, outputs, priors_t, config.loss_weighting,
                global_batch_size=config.batch_size)
            objective = loss
            if decay_l2:  # d/dw = wd * w / replicas; the all-reduce sums replicas.
                objective += (0.5 * config.weight_decay / replicas) * tf.add_n(
                    [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in train_vars])
            if float16:
                objective = optimizer.scale_loss(objective)
        grads = tape.gradient(objective, train_vars)
        return grads, loss, branches, outputs["logits"]

    if config.jit_compile:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(images, labels):
        grads, loss, branches, logits = forward_backward(images, labels)
        optimizer.apply_gradients(zip(grads, train_vars))
        return loss, branches, metrics.batch_counts(labels, logits)

    @tf.function
    def train_step(batch):
        loss, branches, counts = strategy.run(replica_step, args=batch)
        reduce = lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)  # noqa: E731
        counts = tf.nest.map_structure(reduce, counts)
        train_metric.update_from_counts(counts)
        return reduce(loss), tf.nest.map_structure(reduce, branches)

    def dataset_fn(epoch, skip):
        def fn(ctx: tf.distribute.InputContext):
            kwargs = {}
            if config.shuffle_buffer:
                kwargs["shuffle_buffer"] = config.shuffle_buffer
            ds = data_module.make_dataset(
                config.data_dir, train_split,
                batch_size=config.batch_size,  # global; make_dataset splits it by ctx
                image_size=config.image_size, training=True, input_context=ctx,
                seed=epoch_seed(config.seed, epoch), repeat=True,
                drop_remainder=True, **kwargs)
            return ds.skip(skip) if skip else ds
        return fn

    # ---- validation ------------------------------------------------------
    from alm_tf import evaluation

    predict = tf.function(lambda x: model(x, training=False))

    def validate():
        ds = data_module.make_dataset(
            config.data_dir, val_split, batch_size=config.batch_size,
            image_size=config.image_size, training=False)
        labels, outputs = evaluation.collect_outputs(predict, ds)
        return evaluation.summarize(labels, outputs["logits"], from_logits=True)

    # ---- loop ------------------------------------------------------------
    if chief:
        train_writer = tf.summary.create_file_writer(
            os.path.join(config.model_dir, "logs", "train"))
        val_writer = tf.summary.create_file_writer(
            os.path.join(config.model_dir, "logs", "validation"))
    else:
        train_writer = val_writer = tf.summary.create_noop_writer()
    history, timings = [], []
    step = int(step_var.numpy())
    last_saved = latest
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        lr = learning_rate_for_epoch(config, epoch)
        optimizer.learning_rate = lr
        if offset == 0:
            train_metric.reset_state()
        loss_sum, loss_count = 0.0, 0
        iterator = iter(strategy.distribute_datasets_from_function(
            dataset_fn(epoch, offset)))
        bar = None
        if config.progress and chief:
            from tqdm import tqdm
            bar = tqdm(total=steps_per_epoch, initial=offset, unit="step",
                       desc=f"epoch {epoch + 1}/{config.epochs}", leave=True)
        for _ in range(offset, steps_per_epoch):
            t0 = time.perf_counter()
            batch = next(iterator)
            t1 = time.perf_counter()
            loss, branches = train_step(batch)
            loss = float(loss)
            t2 = time.perf_counter()
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"Loss is {loss} at step {step + 1} (epoch {epoch + 1}); training "
                    f"stopped. Last good checkpoint: {last_saved or 'none'}")
            step += 1
            step_var.assign(step)
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            timings.append((t1 - t0, t2 - t0))
            images_per_s = config.batch_size / max(t2 - t0, 1e-9)
            with train_writer.as_default(step=step):
                scalar_summary("loss/total", loss, step)
                for name, value in branches.items():
                    scalar_summary(f"loss/{name}", float(value), step)
                scalar_summary("learning_rate", lr, step)
                scalar_summary("images_per_second", images_per_s, step)
                scalar_summary("input_wait_fraction", (t1 - t0) / max(t2 - t0, 1e-9), step)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_s:.1f}")
                bar.update(1)
            end_of_epoch = step % steps_per_epoch == 0
            periodic = config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
            if end_of_epoch or periodic:
                distribution.sync_non_trainable(strategy, model.non_trainable_variables)
            if end_of_epoch:
                epoch_var.assign(epoch + 1)
                record = {"epoch": epoch + 1, "step": step,
                          "train": {k: float(v) for k, v in train_metric.result().items()}}
                # Mean over the steps this process ran in the epoch.
                record["train"]["loss"] = loss_sum / max(loss_count, 1)
                with train_writer.as_default(step=step):
                    scalar_summary("train_mA", record["train"]["mA"], step)
                if val_split:
                    result = validate()
                    record["val"] = {k: result[k] for k in metrics.SUMMARY_KEYS}
                    with val_writer.as_default(step=step):
                        for key, value in record["val"].items():
                            scalar_summary(key, value, step)
                    if result["mA"] > float(best_var.numpy()):
                        best_var.assign(result["mA"])
                        if chief:
                            _save_keras(model, os.path.join(config.model_dir, "best.keras"))
                history.append(record)
                summary = f"epoch {epoch + 1}: loss {record['train']['loss']:.4f}, train mA " \
                    f"{record['train']['mA']:.4f}"
                if "val" in record:
                    summary += (f"; {val_split} mA {record['val']['mA']:.4f}, "
                                f"F1 {record['val']['f1']:.4f}")
                logging.info(summary)
            if end_of_epoch or periodic:
                last_saved = save_checkpoint()
        if bar is not None:
            bar.close()
        train_writer.flush()
        val_writer.flush()

    distribution.sync_non_trainable(strategy, model.non_trainable_variables)
    if chief:
        _save_keras(model, os.path.join(config.model_dir, "final.keras"))
        if not val_split:  # nothing to pick by: best = final
            best = os.path.join(config.model_dir, "best.keras")
            shutil.copyfile(os.path.join(config.model_dir, "final.keras"), best + ".tmp")
            os.replace(best + ".tmp", best)
    return TrainResult(model=model, step=step, history=history, init_matched=init_matched,
                       replicas=replicas, timings=timings)
