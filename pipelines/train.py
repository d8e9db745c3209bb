"""alm-train: train ALM (or the baseline) on converted TFRecords.

  alm-train --data_dir=records/pa100k --model_dir=runs/pa100k
  alm-train --data_dir=D --model_dir=M --alm_levels= (the paper's baseline)

Re-running the same command on the same --model_dir resumes from the last
checkpoint. Defaults are the paper's recipe (Adam 1e-4, L2 5e-4, batch 32,
256x128, 30 epochs, lr x0.1 at epochs 10 and 20).
"""

from __future__ import annotations


from absl import flags

from pipelines import _cli

# Other binaries define some of the same names (data_dir, model_dir, ...);
# allow_override lets several of them share one process (tests, the demo).
_OVERRIDE = {"allow_override": True}

from alm_tf.training import config as cfg

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Converted data (manifest.json + shards).", **_OVERRIDE)
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Output / resume folder.", **_OVERRIDE)
_BACKBONE = flags.DEFINE_enum("backbone", "bn_inception", cfg.BACKBONES, "Backbone.", **_OVERRIDE)
_HEIGHT = flags.DEFINE_integer("image_height", 256, "Input height (multiple of 32).", **_OVERRIDE)
_WIDTH = flags.DEFINE_integer("image_width", 128, "Input width (multiple of 32).", **_OVERRIDE)
_BATCH = flags.DEFINE_integer("batch_size", 32, "GLOBAL batch size (split across replicas).", **_OVERRIDE)
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Epochs.", **_OVERRIDE)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Optional cap on steps per epoch.", **_OVERRIDE)
_LR = flags.DEFINE_float("learning_rate", 1e-4, "Initial learning rate.", **_OVERRIDE)
_DECAY_EPOCHS = flags.DEFINE_list("decay_epochs", ["10", "20"], "Epochs where lr *= decay_factor.", **_OVERRIDE)
_DECAY_FACTOR = flags.DEFINE_float("decay_factor", 0.1, "Step decay factor.", **_OVERRIDE)
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam", cfg.OPTIMIZERS,
                               "adam: L2 decay added to the gradient (PyTorch Adam); "
                               "adamw: decoupled decay.", **_OVERRIDE)
_WD = flags.DEFINE_float("weight_decay", 5e-4, "Weight decay coefficient.", **_OVERRIDE)
_WEIGHTING = flags.DEFINE_enum("loss_weighting", "official", cfg.WEIGHTINGS,
                               "official: positives exp(1-p); paper: exp(-p); none.", **_OVERRIDE)
_LEVELS = flags.DEFINE_list("alm_levels", ["1", "2", "3"], "Pyramid levels with ALMs; empty = baseline.", **_OVERRIDE)
_TOP_DOWN = flags.DEFINE_enum("top_down", "concat", cfg.TOP_DOWN, "Top-down combination.", **_OVERRIDE)
_CHANNEL_ATT = flags.DEFINE_bool("channel_attention", True, "SE attention in the ALMs.", **_OVERRIDE)
_FUSION = flags.DEFINE_enum("fusion", "max", cfg.FUSIONS, "Fusion of the branch logits.", **_OVERRIDE)
_UPSAMPLING = flags.DEFINE_enum("upsampling", "bilinear", cfg.UPSAMPLINGS, "Top-down upsampling.", **_OVERRIDE)
_TRAIN_SPLIT = flags.DEFINE_string(
    "train_split", None, "Split to train on; default `train` when the manifest has it, "
    "else `trainval`.", **_OVERRIDE)
_VAL_SPLIT = flags.DEFINE_string(
    "val_split", None, "Split validated after each epoch; default `val` when the manifest "
    "has it (and the train split is not trainval); `none` disables.", **_OVERRIDE)
_INIT = flags.DEFINE_string("init_checkpoint", None, "A .keras file; layers with matching "
                            "names and shapes are loaded.", **_OVERRIDE)
_STRATEGY = flags.DEFINE_enum("strategy", "default", cfg.STRATEGIES,
                              "Distribution; multi_worker reads TF_CONFIG.", **_OVERRIDE)
_PRECISION = flags.DEFINE_enum("mixed_precision", "none", cfg.PRECISIONS, "Mixed precision policy.", **_OVERRIDE)
_FREEZE = flags.DEFINE_bool(
    "freeze_backbone", False, "Train only the heads (laterals, ALMs, global classifier); the "
    "backbone keeps its --init_checkpoint weights and runs BatchNorm on moving statistics.",
    **_OVERRIDE)
_BOX_LR = flags.DEFINE_float(
    "box_lr_multiplier", 1.0, "Learning rate of the ALM box regressors' kernels relative to "
    "--learning_rate (0 freezes them).", **_OVERRIDE)
_BOX_BIAS_LR = flags.DEFINE_float(
    "box_bias_lr_multiplier", 1.0, "Learning rate of the ALM box biases relative to "
    "--learning_rate; raise it for short schedules (the demo uses 100).", **_OVERRIDE)
_BOX_INIT = flags.DEFINE_enum(
    "box_kernel_init", "torch", cfg.BOX_KERNEL_INITS, "torch: PyTorch's default (official); "
    "zeros: every image starts with the same box (STN-style).", **_OVERRIDE)
_JIT = flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass.", **_OVERRIDE)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.", **_OVERRIDE)
_DETERMINISTIC = flags.DEFINE_bool("deterministic", False, "Enable op determinism.", **_OVERRIDE)
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every_steps", 0,
                                   "Checkpoint period in steps (0: epoch ends only).", **_OVERRIDE)
_KEEP = flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.", **_OVERRIDE)
_SHUFFLE = flags.DEFINE_integer("shuffle_buffer", None, "Input shuffle buffer.", **_OVERRIDE)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.", **_OVERRIDE)


def _fail(message: str) -> None:
    _cli.fail("alm-train", message)


def _config() -> cfg.TrainConfig:
    for name, flag in (("data_dir", _DATA_DIR), ("model_dir", _MODEL_DIR)):
        if not flag.value:
            raise cfg.ConfigError(f"--{name} is required")
    return cfg.TrainConfig(
        data_dir=_DATA_DIR.value, model_dir=_MODEL_DIR.value, backbone=_BACKBONE.value,
        image_height=_HEIGHT.value, image_width=_WIDTH.value, batch_size=_BATCH.value,
        epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value, learning_rate=_LR.value,
        decay_epochs=tuple(_DECAY_EPOCHS.value), decay_factor=_DECAY_FACTOR.value,
        optimizer=_OPTIMIZER.value, weight_decay=_WD.value, loss_weighting=_WEIGHTING.value,
        alm_levels=tuple(_LEVELS.value), top_down=_TOP_DOWN.value,
        channel_attention=_CHANNEL_ATT.value, fusion=_FUSION.value,
        upsampling=_UPSAMPLING.value, train_split=_TRAIN_SPLIT.value,
        val_split=_VAL_SPLIT.value, init_checkpoint=_INIT.value,
        freeze_backbone=_FREEZE.value, box_lr_multiplier=_BOX_LR.value,
        box_bias_lr_multiplier=_BOX_BIAS_LR.value, box_kernel_init=_BOX_INIT.value, strategy=_STRATEGY.value,
        mixed_precision=_PRECISION.value, jit_compile=_JIT.value, seed=_SEED.value,
        deterministic=_DETERMINISTIC.value, checkpoint_every_steps=_CKPT_EVERY.value,
        keep_checkpoints=_KEEP.value, shuffle_buffer=_SHUFFLE.value, progress=_PROGRESS.value)


def main(argv: list[str]) -> None:
    """Trains; exits 1 with one line on stderr on bad flags or input."""
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = _config()
    except ValueError as e:
        _fail(str(e).splitlines()[0])
        return
    from alm_tf.training import loop

    try:
        result = loop.train(config)
    except (ValueError, FileNotFoundError, loop.NonFiniteLossError) as e:
        _fail(_cli.first_line(e))
        return
    print(f"training finished at step {result.step}: {config.model_dir}/final.keras")


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-train", main)


if __name__ == "__main__":
    run()
