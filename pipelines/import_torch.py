r"""alm-import-torch: official PyTorch ALM checkpoint -> Keras `.keras` file.

Usage:
  alm-import-torch --checkpoint=rap_best.pth.tar --dataset=rap \
      --output=alm_rap.keras
  alm-import-torch --checkpoint=bn_inception-52deb4733.pth --dataset=pa100k \
      --output=init.keras     # ImageNet backbone only; the rest stays random

Needs PyTorch: the `torch` extra (`pip install -e '.[torch]'`); with
`[dev]` alone the command stops with one line naming the extra.
`--dataset` (pa100k, rap, peta) gives the number of attributes and their
names; `--dataset=custom --num_attributes=M` imports a checkpoint trained on
other data. The model flags (`--image_height`, `--image_width`,
`--alm_levels`, ...) are alm-train's; the official checkpoints are
BN-Inception with the default options. The `.keras` file carries the
attribute names and the model config itself (`alm_tf.artifacts`).
"""

from __future__ import annotations

import os
import pathlib
import sys

from absl import flags

from alm_tf import artifacts, outputs, torch_import
from alm_tf.data import schemas
from alm_tf.model import build_model_from_config
from pipelines import _cli, _model_flags
from pipelines._cli import OVERRIDE as _OVERRIDE

DATASETS = ("pa100k", "rap", "peta", "custom")

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "PyTorch checkpoint: the official ALM training script's file (dict with "
    "'state_dict', keys 'module.*'), a bare ALM state dict, or an ImageNet "
    "BN-Inception state dict.", **_OVERRIDE)
_DATASET = flags.DEFINE_enum(
    "dataset", None, DATASETS,
    "Attribute schema of the checkpoint; 'custom' needs --num_attributes.",
    **_OVERRIDE)
_NUM_ATTRIBUTES = flags.DEFINE_integer(
    "num_attributes", None,
    "Number of attributes M; only with --dataset=custom.", lower_bound=1,
    **_OVERRIDE)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Keras model file to write (must end with '.keras').",
    **_OVERRIDE)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace --output if it exists.", **_OVERRIDE)

PROG = "alm-import-torch"


class _UserError(Exception):
    """Bad input: reported as one line on stderr, exit status 1."""


def _validated_flags() -> pathlib.Path:
    if not _CHECKPOINT.value:
        raise _UserError("--checkpoint is required")
    if not _DATASET.value:
        raise _UserError(
            f"--dataset is required (one of {', '.join(DATASETS)})")
    if not _OUTPUT.value:
        raise _UserError("--output is required")
    if not _OUTPUT.value.endswith(".keras"):
        raise _UserError(
            f"--output must end with '.keras'. Received: {_OUTPUT.value!r}")
    if _DATASET.value == "custom":
        if _NUM_ATTRIBUTES.value is None:
            raise _UserError("--dataset=custom needs --num_attributes")
    elif _NUM_ATTRIBUTES.value is not None:
        raise _UserError(
            f"--num_attributes is only for --dataset=custom; "
            f"--dataset={_DATASET.value} fixes it")
    if not os.path.isfile(_CHECKPOINT.value):
        raise _UserError(f"--checkpoint not found: {_CHECKPOINT.value!r}")
    output = pathlib.Path(_OUTPUT.value)
    try:  # never the checkpoint itself, even with --overwrite
        outputs.check_apart(str(output), [_CHECKPOINT.value], flag="--output")
    except outputs.OutputError as e:
        raise _UserError(str(e)) from None
    if output.is_dir():
        raise _UserError(f"--output is a folder: {str(output)!r}")
    if output.exists() and not _OVERWRITE.value:
        raise _UserError(
            f"--output exists: {str(output)!r} (pass --overwrite to replace)")
    return output


def _attributes(dataset: str) -> list[str]:
    if dataset == "custom":
        return [f"attribute_{m}" for m in range(_NUM_ATTRIBUTES.value)]
    return list(schemas.get_schema(dataset).attributes)


def _run() -> str:
    output = _validated_flags()
    try:
        torch_import.require_torch()  # before the model is built: fail fast
    except ImportError as e:
        raise _UserError(str(e)) from None
    names = _attributes(_DATASET.value)
    try:
        model_config = _model_flags.model_config(num_attributes=len(names))
        # The file first: a bad one fails before the network is built.
        state = torch_import.load_state_dict(_CHECKPOINT.value)
        kind = torch_import.checkpoint_kind(state)
        model = build_model_from_config(model_config)
        torch_import.import_state_dict(model, state, kind)
    except torch_import.CheckpointError as e:
        raise _UserError(str(e)) from None
    except (ValueError, ImportError) as e:  # e.g. a refused input size
        raise _UserError(str(e).strip().splitlines()[0]) from None
    try:
        outputs.remove_stale_temporaries(str(output.absolute().parent), model_dir=False,
                                         report=lambda line: print(f"{PROG}: {line}", file=sys.stderr))
        artifacts.save_keras(model, str(output), artifacts.keras_description(names, model_config),
                             overwrite=_OVERWRITE.value)
    except OSError as e:
        raise _UserError(f"cannot write {e.filename or output}: "
                         f"{e.strerror or e}") from None
    what = (torch_import.KIND_DESCRIPTIONS[kind] if kind == torch_import.ALM_CHECKPOINT else
            "ImageNet BN-Inception backbone (rest of the model initialized)")
    return (f"imported {what} {_CHECKPOINT.value} for {_DATASET.value} "
            f"(M={len(names)}, input {model_config.image_height}x{model_config.image_width}) "
            f"-> {output}")


def main(argv) -> int:
    try:
        message = _run()
    except _UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(message)
    return 0


def run() -> None:
    """Console-script entry point."""
    _cli.run("alm-import-torch", main)


if __name__ == "__main__":
    run()
