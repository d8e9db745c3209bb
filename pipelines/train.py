r"""alm-train: train ALM (or the baseline) on converted TFRecords.

  alm-train --data_dir=records/pa100k --model_dir=runs/pa100k
  alm-train --data_dir=D --model_dir=M --alm_levels= (the paper's baseline)
  alm-train --data_dir=D --model_dir=M --backbone_weights=bn_inception-52deb4733.pth
  alm-train --data_dir=D --model_dir=M --backbone=resnet50 \
      --backbone_weights=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5

Re-running the same command on the same --model_dir resumes from the last
checkpoint (a finished run: nothing to do, nothing rewritten). A resume
with a setting that changes the result (learning rate, schedule, loss
weighting, optimizer, model, data: the content of every shard read, by
the fingerprint in manifest.json...) is refused naming it;
--allow_changed_settings lets the learning rate, schedule, weight decay,
loss weighting, seed, determinism and shuffle buffer change from the
resumed step on (config.json `runs` records each change); --epochs may
always grow. For a new recipe on the trained weights, train into a new
--model_dir with --init_checkpoint=M/final.keras.

One alm-train at a time per --model_dir: a second is refused naming the
first's pid and host (MODEL_DIR/.alm-train.lock); the lock of a run that
died on this host is taken over with a warning.

A fresh run needs a new or empty --model_dir, and one that fails before
its first checkpoint removes what it created. The train and validation
records are counted against the manifest first: missing or corrupt
records fail with one line naming the shard and the counts;
--allow_corrupt_records trains on the usable ones (counted in the log and
config.json `runs`). Defaults are the paper's recipe (Adam 1e-4, L2 5e-4,
batch 32, 256x128, 30 epochs, lr x0.1 at epochs 10 and 20).
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from alm_tf import artifacts, outputs
from alm_tf.training.config import BOX_KERNEL_INITS
from alm_tf.losses import WEIGHTINGS
from alm_tf.training import NonFiniteLossError, TrainConfig, train
from alm_tf.training import config as cfg
from pipelines import _cli, _model_flags, _shared_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

#: Flag defaults are TrainConfig's (the paper's recipe), defined there once.
_D = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

_DATA_DIR = _shared_flags.data_dir()
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Output / resume folder.", **_OVERRIDE)
_BATCH = flags.DEFINE_integer("batch_size", _D["batch_size"], "GLOBAL batch size (split across replicas).", **_OVERRIDE)
_EPOCHS = flags.DEFINE_integer("epochs", _D["epochs"], "Epochs.", **_OVERRIDE)
_STEPS = flags.DEFINE_integer("steps_per_epoch", _D["steps_per_epoch"], "Optional cap on steps per epoch.", **_OVERRIDE)
_LR = _cli.define_finite_float("learning_rate", _D["learning_rate"], "Initial learning rate.",
                               **_OVERRIDE)
_DECAY_EPOCHS = flags.DEFINE_list("decay_epochs", [str(e) for e in _D["decay_epochs"]], "Epochs where lr *= decay_factor.", **_OVERRIDE)
_DECAY_FACTOR = _cli.define_finite_float("decay_factor", _D["decay_factor"], "Step decay factor.",
                                         **_OVERRIDE)
_OPTIMIZER = flags.DEFINE_enum("optimizer", _D["optimizer"], cfg.OPTIMIZERS,
                               "adam: L2 decay added to the gradient (PyTorch Adam); "
                               "adamw: decoupled decay.", **_OVERRIDE)
_WD = _cli.define_finite_float("weight_decay", _D["weight_decay"], "Weight decay coefficient.",
                               **_OVERRIDE)
_WEIGHTING = flags.DEFINE_enum("loss_weighting", _D["loss_weighting"], WEIGHTINGS,
                               "official: positives exp(1-p); paper: exp(-p); none.", **_OVERRIDE)
_TRAIN_SPLIT = flags.DEFINE_string(
    "train_split", _D["train_split"], "Split to train on; default `train` when the manifest has it, "
    "else `trainval`.", **_OVERRIDE)
_VAL_SPLIT = flags.DEFINE_string(
    "val_split", _D["val_split"], "Split validated after each epoch; default `val` when the manifest "
    "has it (and the train split is not trainval); `none` disables.", **_OVERRIDE)
_INIT = flags.DEFINE_string("init_checkpoint", _D["init_checkpoint"], "A .keras file; layers with matching "
                            "names and shapes are loaded.", **_OVERRIDE)
_STRATEGY = flags.DEFINE_enum("strategy", _D["strategy"], cfg.STRATEGIES,
                              "Distribution; multi_worker reads TF_CONFIG.", **_OVERRIDE)
_PRECISION = flags.DEFINE_enum("mixed_precision", _D["mixed_precision"], cfg.PRECISIONS, "Mixed precision policy.", **_OVERRIDE)
_FREEZE = flags.DEFINE_bool(
    "freeze_backbone", _D["freeze_backbone"], "Train only the heads (laterals, ALMs, global classifier); the "
    "backbone keeps its --init_checkpoint weights and runs BatchNorm on moving statistics.",
    **_OVERRIDE)
_CACHE = flags.DEFINE_bool(
    "cache_features", _D["cache_features"], "With --freeze_backbone: compute the backbone's taps of "
    "every training image and its mirror once and train the heads on them (same loss per batch, a "
    "step costs the heads alone; the cache goes to files in the model dir, removed at the end).", **_OVERRIDE)
_BOX_LR = _cli.define_finite_float(
    "box_lr_multiplier", _D["box_lr_multiplier"], "Learning rate of the ALM box regressors' kernels relative to "
    "--learning_rate (0 freezes them).", **_OVERRIDE)
_BOX_BIAS_LR = _cli.define_finite_float(
    "box_bias_lr_multiplier", _D["box_bias_lr_multiplier"], "Learning rate of the ALM box biases relative to "
    "--learning_rate; raise it for short schedules (the demo uses 100).", **_OVERRIDE)
_BOX_INIT = flags.DEFINE_enum(
    "box_kernel_init", _D["box_kernel_init"], BOX_KERNEL_INITS, "torch: PyTorch's default (official); "
    "zeros: every image starts with the same box (STN-style).", **_OVERRIDE)
_JIT = flags.DEFINE_bool("jit_compile", _D["jit_compile"], "XLA-compile the forward/backward pass.", **_OVERRIDE)
_SEED = flags.DEFINE_integer("seed", _D["seed"], "Seed of initialisation and data order.", **_OVERRIDE)
_DETERMINISTIC = flags.DEFINE_bool("deterministic", _D["deterministic"], "Enable op determinism.", **_OVERRIDE)
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every_steps", _D["checkpoint_every_steps"],
                                   "Checkpoint period in steps (0: epoch ends only).", **_OVERRIDE)
_KEEP = flags.DEFINE_integer("keep_checkpoints", _D["keep_checkpoints"], "Checkpoints kept.", **_OVERRIDE)
_SHUFFLE = flags.DEFINE_integer("shuffle_buffer", _D["shuffle_buffer"], "Input shuffle buffer.", **_OVERRIDE)
_PROGRESS = _shared_flags.progress(_D["progress"])
_ALLOW_CORRUPT = flags.DEFINE_bool(
    "allow_corrupt_records", _D["allow_corrupt_records"], "Go on when shards hold fewer usable "
    "records than the manifest says (missing, truncated or corrupt shards, records that do not "
    "fit): train on the usable ones, counted in the log and config.json.", **_OVERRIDE)
_ALLOW_CHANGED = flags.DEFINE_bool(
    "allow_changed_settings", _D["allow_changed_settings"], "On a resume, let the learning rate, "
    "decay epochs/factor, weight decay, loss weighting, seed, determinism and shuffle buffer "
    "differ from the saved run; they apply from the resumed step on (config.json `runs`).",
    **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-train", message)


def _config() -> TrainConfig:
    for name, flag in (("data_dir", _DATA_DIR), ("model_dir", _MODEL_DIR)):
        if not flag.value:
            raise cfg.ConfigError(f"--{name} is required")
    try:
        decay_epochs = tuple(int(v) for v in _DECAY_EPOCHS.value)
    except ValueError:
        raise cfg.ConfigError(f"--decay_epochs must be a list of epochs. "
                              f"Received: --decay_epochs={','.join(_DECAY_EPOCHS.value)}") from None
    return TrainConfig(
        data_dir=_DATA_DIR.value, model_dir=_MODEL_DIR.value, model=_model_flags.model_config(),
        batch_size=_BATCH.value, epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value,
        learning_rate=_LR.value, decay_epochs=decay_epochs, decay_factor=_DECAY_FACTOR.value,
        optimizer=_OPTIMIZER.value, weight_decay=_WD.value, loss_weighting=_WEIGHTING.value,
        train_split=_TRAIN_SPLIT.value, val_split=_VAL_SPLIT.value, init_checkpoint=_INIT.value,
        freeze_backbone=_FREEZE.value, cache_features=_CACHE.value, box_lr_multiplier=_BOX_LR.value,
        box_bias_lr_multiplier=_BOX_BIAS_LR.value, box_kernel_init=_BOX_INIT.value,
        strategy=_STRATEGY.value, mixed_precision=_PRECISION.value, jit_compile=_JIT.value,
        seed=_SEED.value, deterministic=_DETERMINISTIC.value,
        checkpoint_every_steps=_CKPT_EVERY.value, keep_checkpoints=_KEEP.value,
        shuffle_buffer=_SHUFFLE.value, progress=_PROGRESS.value,
        allow_corrupt_records=_ALLOW_CORRUPT.value, allow_changed_settings=_ALLOW_CHANGED.value)


def main(argv: list[str]) -> None:
    """Trains; exits 1 with one line on stderr on bad flags or input."""
    try:
        config = _config()
        outputs.check_apart(config.model_dir, [config.data_dir, config.init_checkpoint,
                                               config.model.backbone_weights], flag="--model_dir")
        result = train(config)
    except (ValueError, OSError, ImportError, NonFiniteLossError) as e:
        _fail(_cli.first_line(e))
        return
    final = artifacts.weights_path(config.model_dir, "final")
    if result.already_finished:
        print(f"nothing to do: the run in {config.model_dir} finished at step {result.step}: {final}")
        return
    for split, report in result.skipped_records.items():
        print(f"alm-train: warning: split {split!r}: used {report['usable']} of its "
              f"{report['expected']} records; {report['problems'][0]} (--allow_corrupt_records)",
              file=sys.stderr)
    print(f"training finished at step {result.step}: {final}")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-train", main)


if __name__ == "__main__":
    run()
