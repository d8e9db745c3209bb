"""The ALM training loop: tf.function + strategy.run, resumable and exact.

Why not `model.fit`: Keras 3 `fit` fails under MultiWorkerMirroredStrategy
on TF 2.20/2.21, and we need control over resumption.

`train(config)` = strategy -> the model dir's lock (`alm_tf.training.lock`,
held by the chief until the end: one writer per model dir) ->
`setup.make_plan` (every setting checked
against the data before anything is written) -> a fresh run needs a new or
empty model dir; a resumed one `setup.check_resume` -> a finished run
re-run with nothing to do returns, writing nothing -> the records of the
train and validation splits counted against the manifest
(`alm_tf.data.records`) -> `setup.build_state` -> config.json (with the
`runs` history) -> `step.make_train_step` -> the loop, which runs the
steps of each epoch and leaves the rest to hooks (`alm_tf.training.hooks`:
TensorBoard, progress, validation and best model, the epoch's log line,
the caller's Keras callbacks, checkpoints). A fresh run that fails before its
first checkpoint removes what it created: no half-made model dir. A
resume is refused on other data (the attribute list, the train split's
size and, for runs that recorded it, every read shard's content hash:
`alm_tf.data.fingerprint`) and with another result-changing setting.

Reproducibility contract: with `seed` and `deterministic`, the data order
of epoch e is a pure function of (seed, e) (shuffle seeded with
`epoch_seed(seed, e)`, resumed mid-epoch by skipping the steps already
done), the learning rate a pure function of e, and everything else that
changes (model, optimizer slots, loss scale, step, epoch, best mA, RNG)
lives in the checkpoint. A run killed at any moment and re-run with the
same command therefore ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import time
from typing import Callable, Optional, Sequence

import keras
import tensorflow as tf

from alm_tf import artifacts, data as data_lib, outputs
from alm_tf.evaluation import metrics
from alm_tf.data import records
from alm_tf.data.manifest import split_info
from alm_tf.training import distribution, feature_cache, lock, setup
from alm_tf.training import hooks as hooks_lib
from alm_tf.training.config import TrainConfig
from alm_tf.training.step import StepSettings, make_train_step


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
    # The run had finished already: nothing ran and nothing was written.
    already_finished: bool = False
    # {split: records.SplitRecords.report()} of the splits read, when some
    # records were skipped (allow_corrupt_records).
    skipped_records: dict = dataclasses.field(default_factory=dict)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of an epoch: a pure function of (seed, epoch)."""
    return (int(seed) * 100_003 + int(epoch)) % (2**31 - 1)


def learning_rate_for_epoch(config: TrainConfig, epoch: int) -> float:
    decays = sum(1 for e in config.decay_epochs if epoch >= e)
    return config.learning_rate * config.decay_factor**decays


def train(config: TrainConfig, model_builder: Optional[Callable] = None, data_module=None,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> "TrainResult":
    """Trains (or resumes training of) ALM as `config` says.

    Args:
      config: the validated TrainConfig.
      model_builder: `f(ModelConfig) -> keras.Model` (default:
        `alm_tf.model.build_model_from_config`); tests pass a tiny model.
      data_module: object with `read_manifest` and `make_dataset` (default
        `alm_tf.data`).
      callbacks: Keras callbacks called at the start, after every step
        (`on_train_batch_end(step, logs)`, logs with `loss` and
        `learning_rate`), at every epoch end and at the end.

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
    chief = distribution.is_chief(strategy)
    setup.check_model_dir_is_a_folder(config.model_dir)
    created = not os.path.exists(config.model_dir)
    try:
        with lock.held(config.model_dir, say=logging.warning) if chief else contextlib.nullcontext():
            return _train(config, strategy, model_builder, data_module or data_lib, list(callbacks), created)
    except BaseException:
        if created and chief:  # the lock made the folder: a run that failed early leaves none
            with contextlib.suppress(OSError):
                os.rmdir(config.model_dir)
        raise
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _train(config, strategy, model_builder, data_module, callbacks, created):
    chief = distribution.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    plan = setup.make_plan(config, data_module.read_manifest(config.data_dir), replicas)
    config_file = artifacts.config_path(config.model_dir)
    fresh = not os.path.exists(config_file)
    saved = None
    if fresh:
        if chief:  # other workers may already see the chief's first files
            setup.check_fresh_model_dir(config.model_dir)
    else:
        saved = artifacts.read_config(config.model_dir)
        setup.check_resume(config, plan, saved)
        if chief:  # what a killed run left (the model dir is this run's from here on)
            outputs.remove_stale_temporaries(config.model_dir)
        step = setup.saved_step(config.model_dir)
        if (step is not None and step >= plan.total_steps
                and os.path.isfile(artifacts.weights_path(config.model_dir, "final"))):
            state = setup.build_state(config, plan, strategy, model_builder)
            logging.info("the run in %s finished at step %d: nothing to do", config.model_dir, step)
            return TrainResult(model=state.model, step=int(state.step.numpy()), history=[],
                               init_matched=None, replicas=replicas, already_finished=True)
    checked = {split: records.check_split(config.data_dir, split, plan.manifest,
                                          allow_corrupt=config.allow_corrupt_records)
               for split in (plan.train_split, plan.val_split) if split}
    skipped = {split: c.report() for split, c in checked.items() if not c.complete}
    state = setup.build_state(config, plan, strategy, model_builder)
    try:
        os.makedirs(artifacts.checkpoints_dir(config.model_dir), exist_ok=True)
        if chief:
            runs = (setup.next_runs(config, saved, int(state.step.numpy())) if saved
                    else [{"from_step": 0}])
            if skipped:
                runs[-1]["skipped_records"] = skipped
            artifacts.write_json(config_file, setup.run_config(config, plan, runs))
        result = _loop(config, strategy, plan, state, data_module, callbacks)
    except BaseException:
        ckpt_dir = artifacts.checkpoints_dir(config.model_dir)
        if fresh and chief and not tf.train.latest_checkpoint(ckpt_dir):
            _discard_fresh_run(config.model_dir, created)
        raise
    finally:
        if config.cache_features:
            shutil.rmtree(feature_cache.cache_dir(config.model_dir), ignore_errors=True)
    result.skipped_records = skipped
    return result


def _discard_fresh_run(model_dir: str, created: bool) -> None:
    """Removes what a fresh run that failed before its first checkpoint made."""
    if created:
        shutil.rmtree(model_dir, ignore_errors=True)
        return
    for name in os.listdir(model_dir):  # the folder was empty (setup.check_fresh_model_dir)
        if name == lock.LOCK_NAME:
            continue  # removed when the lock is released
        path = os.path.join(model_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


@dataclasses.dataclass
class _Cache:
    heads: keras.Model
    data: feature_cache.FeatureCache


def _feature_cache(config, plan, model, data_module) -> _Cache:
    """The heads model and the taps of the training split (TrainConfig.cache_features)."""
    feature_cache.check_cacheable(model)
    backbone, heads = feature_cache.split_model(model)
    num_examples = int(split_info(plan.manifest, plan.train_split)["num_examples"])
    directory = feature_cache.cache_dir(config.model_dir)
    need = feature_cache.check_disk(backbone, num_examples, directory)
    logging.info("cache_features: the backbone's taps of %d images x %d views (%.2f GiB) in %s",
                 num_examples, feature_cache.VIEWS, need / 2**30, directory)
    ds = data_module.make_dataset(config.data_dir, plan.train_split, batch_size=config.batch_size,
                                  image_size=config.image_size, training=False,
                                  allow_corrupt_records=config.allow_corrupt_records,
                                  exif_orientation=config.model.exif_orientation)
    try:
        data = feature_cache.build_cache(backbone, ds, num_examples, directory,
                                         progress=config.progress)
    except tf.errors.OpError as e:
        raise records.read_error(e, config.data_dir, plan.train_split) from None
    return _Cache(heads=heads, data=data)


def _dataset_fn(config: TrainConfig, plan: setup.TrainingPlan, data_module, cache: Optional[_Cache]):
    """`fn(epoch, skip)` -> the input function of that epoch, its first `skip` steps skipped."""
    def dataset_fn(epoch, skip):
        def fn(ctx: tf.distribute.InputContext):
            if cache:
                ds = feature_cache.cached_dataset(cache.data, config.batch_size,
                                                  epoch_seed(config.seed, epoch), ctx)
                return ds.skip(skip) if skip else ds
            kwargs = {"shuffle_buffer": config.shuffle_buffer} if config.shuffle_buffer else {}
            ds = data_module.make_dataset(
                config.data_dir, plan.train_split,
                batch_size=config.batch_size,  # global; make_dataset splits it by ctx
                image_size=config.image_size, training=True, input_context=ctx,
                seed=epoch_seed(config.seed, epoch), repeat=True, drop_remainder=True,
                allow_corrupt_records=config.allow_corrupt_records,
                exif_orientation=config.model.exif_orientation, **kwargs)
            return ds.skip(skip) if skip else ds
        return fn
    return dataset_fn


@dataclasses.dataclass
class _Run:
    """What the loop's epochs share: the step function, its metric, the hooks."""

    config: TrainConfig
    strategy: tf.distribute.Strategy
    plan: setup.TrainingPlan
    state: setup.TrainingState
    train_step: Callable
    train_metric: metrics.ALMMetrics
    dataset_fn: Callable
    hooks: list
    checkpoints: hooks_lib.CheckpointHook
    history: list = dataclasses.field(default_factory=list)
    timings: list = dataclasses.field(default_factory=list)

    def call(self, method: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, method)(*args)


def _loop(config, strategy, plan, state, data_module, callbacks):
    chief = distribution.is_chief(strategy)
    model = state.model
    train_metric = metrics.ALMMetrics(len(plan.attributes), name="train_metrics")
    cache = _feature_cache(config, plan, model, data_module) if config.cache_features else None
    train_step = make_train_step(cache.heads if cache else model, state.optimizer,
                                 StepSettings.from_config(config, plan.priors), strategy, train_metric)
    checkpoints = hooks_lib.CheckpointHook(state, chief)
    run = _Run(config, strategy, plan, state, train_step, train_metric,
               _dataset_fn(config, plan, data_module, cache),
               hooks_lib.make_hooks(config, plan, state, data_module, chief, callbacks, checkpoints),
               checkpoints)
    run.call("on_begin")
    step = int(state.step.numpy())
    while step < plan.total_steps:
        try:
            step = _epoch(run, step)
        finally:
            run.call("on_epoch_close")
    distribution.sync_non_trainable(strategy, model.non_trainable_variables)
    if chief:
        final = artifacts.weights_path(config.model_dir, "final")
        hooks_lib.save_keras(model, final, plan)
        if not plan.val_split:  # nothing to pick by: best = final
            artifacts.copy_model_file(final, artifacts.weights_path(config.model_dir, "best"))
    run.call("on_end", step)
    return TrainResult(model=model, step=step, history=run.history, init_matched=state.init_matched,
                       replicas=strategy.num_replicas_in_sync, timings=run.timings)


def _epoch(run: _Run, step: int) -> int:
    """Runs the rest of the epoch `step` lies in; returns the step reached."""
    config, plan, state = run.config, run.plan, run.state
    steps_per_epoch = plan.steps_per_epoch
    epoch, offset = divmod(step, steps_per_epoch)
    lr = learning_rate_for_epoch(config, epoch)
    state.optimizer.learning_rate = lr
    if offset == 0:
        run.train_metric.reset_state()
    loss_sum, loss_count = 0.0, 0
    iterator = iter(run.strategy.distribute_datasets_from_function(run.dataset_fn(epoch, offset)))
    run.call("on_epoch_begin", epoch, offset)
    for _ in range(offset, steps_per_epoch):
        t0 = time.perf_counter()
        try:
            batch = next(iterator)
        except tf.errors.OpError as e:  # a record that fails to decode (the shards were checked)
            raise records.read_error(e, config.data_dir, plan.train_split) from None
        t1 = time.perf_counter()
        loss, branches = run.train_step(batch)
        loss = float(loss)
        t2 = time.perf_counter()
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"Loss is {loss} at step {step + 1} (epoch {epoch + 1}); training "
                f"stopped. Last good checkpoint: {run.checkpoints.last_saved or 'none'}")
        step += 1
        state.step.assign(step)
        loss_sum, loss_count = loss_sum + loss, loss_count + 1
        run.timings.append((t1 - t0, t2 - t0))
        run.call("on_step_end", hooks_lib.StepLog(step, epoch, loss, branches, lr, t1 - t0, t2 - t0))
        end_of_epoch = step % steps_per_epoch == 0
        periodic = config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
        if end_of_epoch or periodic:
            distribution.sync_non_trainable(run.strategy, state.model.non_trainable_variables)
        if end_of_epoch:
            state.epoch.assign(epoch + 1)
            record = {"epoch": epoch + 1, "step": step,
                      "train": {k: float(v) for k, v in run.train_metric.result().items()}}
            # Mean over the steps this process ran in the epoch.
            record["train"]["loss"] = loss_sum / max(loss_count, 1)
            run.history.append(record)
            run.call("on_epoch_end", epoch, record)
        if end_of_epoch or periodic:
            run.call("on_save_point", step)
    return step
