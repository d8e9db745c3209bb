"""Import of the official PyTorch ALM checkpoints into the Keras model.

Two kinds of files are understood:

- `alm`: an official ALM checkpoint, as the authors' training script saved
  it (a dict with `state_dict` whose keys start with DataParallel's
  `module.`), or a bare state dict with or without that prefix. Every
  weight of the Keras model is set from it.
- `backbone`: an ImageNet BN-Inception state dict (the backbone's names
  without `main_branch.`); its `last_linear` classifier is ignored and only
  the backbone's weights are set, the rest of the model keeps its
  initialization.

Files are read with `torch.load(..., weights_only=True)`: arbitrary pickled
objects are refused, never executed. Every tensor is checked before anything
is assigned: a missing, unexpected or mis-shaped tensor raises
`CheckpointError` with one line naming it, and the model is left untouched.

Layouts (PyTorch -> Keras), see docs/INTERFACES.md: conv (out, in, kh, kw)
-> (kh, kw, in, out); linear (out, in) -> (in, out); the per-attribute ALM
modules are stacked along a leading attribute axis.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Callable, Mapping

import keras
import numpy as np

from alm_tf.layers import attribute_localization as alm
from alm_tf.names import ALM_LAYERS, ALM_PREFIX, GLOBAL_CLASSIFIER, LATERAL_PREFIX

__all__ = [
    "ALM_CHECKPOINT",
    "BACKBONE_CHECKPOINT",
    "CHECKPOINT_KINDS",
    "CheckpointError",
    "require_torch",
    "load_state_dict",
    "checkpoint_kind",
    "import_state_dict",
    "backbone_part",
    "import_checkpoint",
]

#: The kinds of checkpoint (see the module docstring).
ALM_CHECKPOINT, BACKBONE_CHECKPOINT = "alm", "backbone"
CHECKPOINT_KINDS = (ALM_CHECKPOINT, BACKBONE_CHECKPOINT)
#: What each kind is, in messages.
KIND_DESCRIPTIONS = {ALM_CHECKPOINT: "official ALM checkpoint",
                     BACKBONE_CHECKPOINT: "ImageNet BN-Inception state dict"}

BACKBONE_PREFIX = "main_branch."
DATA_PARALLEL_PREFIX = "module."
# Present in checkpoints, not model parameters.
_IGNORED_SUFFIXES = (".num_batches_tracked",)
_IMAGENET_CLASSIFIER = ("last_linear.weight", "last_linear.bias")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


# ------------------------------------------------------------------ reading


#: What a user without PyTorch reads (the `dev` extra alone does not bring it).
NEEDS_TORCH = ("reading PyTorch checkpoints needs PyTorch, which the 'torch' extra installs: "
               "pip install -e '.[torch]' (or 'alm-tf[torch]'); '[dev]' alone does not")


def require_torch():
    """The `torch` module, or ImportError naming the extra that installs it."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(NEEDS_TORCH) from e
    return torch


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch checkpoint safely; returns float32/int numpy arrays.

    Accepts a dict with a `state_dict` entry (the official training script's
    format) or a bare state dict; strips DataParallel's `module.` prefix.

    Raises:
        CheckpointError: the file is missing, is not a weights-only PyTorch
            checkpoint, or holds something other than a dict of tensors.
        ImportError: PyTorch is not installed.
    """
    torch = require_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        with warnings.catch_warnings():
            # e.g. "Detected pickle protocol 4": the error below says it all.
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(_numpy_scalar_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds
        raise CheckpointError(
            f"{path} is not a weights-only PyTorch checkpoint "
            f"({_load_failure_reason(e)})") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path} holds no state dict (expected a dict of tensors, or a "
            f"dict with a 'state_dict' entry); found {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: entry {key!r} is not a named tensor "
                f"({type(value).__name__})")
        name = key[len(DATA_PARALLEL_PREFIX):] if key.startswith(
            DATA_PARALLEL_PREFIX) else key
        if name in state:
            raise CheckpointError(f"{path}: tensor {name!r} appears twice "
                                  "(with and without 'module.')")
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        state[name] = tensor.numpy()
    return state


def _numpy_scalar_globals() -> list:
    """Numpy scalars and dtypes: what training scripts store as `best_accu`.

    Rebuilding them runs no user code (an object-dtype scalar wraps an
    object that was itself unpickled under the same restrictions). Files
    written with numpy 1 name the scalar `numpy.core.multiarray.scalar`.
    """
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    allowed = [scalar, (scalar, "numpy.core.multiarray.scalar"),
               (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    for name in ("float16", "float32", "float64", "int32", "int64", "bool_"):
        allowed.append(type(np.dtype(getattr(np, name))))
    return allowed


def _load_failure_reason(error: BaseException) -> str:
    """One line from torch.load's (multi-line, advice-laden) message."""
    text = str(error).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:
        lines = [ln.strip() for ln in text.split(marker, 1)[1].splitlines()]
        text = next((ln for ln in lines if ln), "")
        text = text.split(". ")[0]  # drop torch's allowlisting advice
    else:
        text = text.splitlines()[0] if text else ""
    name = type(error).__name__
    if not text and isinstance(error, EOFError):
        text = "the file is empty or truncated"
    return f"{name}: {text[:200]}" if text else name


def backbone_part(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The backbone tensors of an official ALM state dict, without `main_branch.`."""
    return {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}


def checkpoint_kind(state: Mapping[str, np.ndarray]) -> str:
    """`ALM_CHECKPOINT` (official ALM model) or `BACKBONE_CHECKPOINT` (ImageNet BN-Inception)."""
    if any(k.startswith(BACKBONE_PREFIX) for k in state):
        return ALM_CHECKPOINT
    if "conv1_7x7_s2.weight" in state:
        return BACKBONE_CHECKPOINT
    raise CheckpointError(
        "unrecognized checkpoint: it has neither 'main_branch.*' tensors "
        "(official ALM model) nor 'conv1_7x7_s2.weight' (ImageNet "
        f"BN-Inception); first key: {next(iter(state))!r}")


# ------------------------------------------------------------------ mapping


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where one checkpoint tensor goes: `variable[index] = to_keras(t)`."""

    variable: keras.Variable
    index: int | None
    torch_shape: tuple[int, ...]
    to_keras: Callable[[np.ndarray], np.ndarray]


def _same(t):
    return t


def _conv_kernel(t):
    return np.transpose(t, (2, 3, 1, 0))


def _transpose(t):
    return t.T


def _squeeze_1x1_transposed(t):
    return t[:, :, 0, 0].T


def _first_row(t):
    return t[0]


def _all_layers(model: keras.Layer) -> dict[str, list[keras.Layer]]:
    layers: dict[str, list[keras.Layer]] = {}
    # Layer._flatten_layers walks nested models and tracked sublayers.
    for layer in model._flatten_layers(include_self=False, recursive=True):
        layers.setdefault(layer.name, []).append(layer)
    return layers


def _variable(layer: keras.Layer, name: str) -> keras.Variable:
    found = [v for v in layer.weights
             if v.name == name or v.path.endswith(f"/{name}")]
    found = list({id(v): v for v in found}.values())
    if len(found) != 1:
        raise CheckpointError(
            f"Keras layer {layer.name!r} has {len(found)} variables named "
            f"{name!r}; expected 1")
    return found[0]


def _conv_slots(layer, prefix):
    k = tuple(layer.kernel.shape)
    return {
        f"{prefix}{layer.name}.weight": _Slot(
            layer.kernel, None, (k[3], k[2], k[0], k[1]), _conv_kernel),
        f"{prefix}{layer.name}.bias": _Slot(
            layer.bias, None, tuple(layer.bias.shape), _same),
    }


def _bn_slots(layer, prefix):
    if not (layer.center and layer.scale):
        raise CheckpointError(f"Keras batch norm {layer.name!r} lacks "
                              "gamma or beta; the checkpoint has both")
    pairs = (("weight", layer.gamma), ("bias", layer.beta),
             ("running_mean", layer.moving_mean),
             ("running_var", layer.moving_variance))
    return {f"{prefix}{layer.name}.{n}": _Slot(v, None, tuple(v.shape), _same)
            for n, v in pairs}


def _alm_slots(layer):
    kernel1 = _variable(layer, alm.ATT_KERNEL1)
    num_attributes, channels, reduced = tuple(kernel1.shape)
    variables = {n: _variable(layer, n) for n in (
        alm.ATT_KERNEL1, alm.ATT_BIAS1, alm.ATT_KERNEL2, alm.ATT_BIAS2,
        alm.BOX_KERNEL, alm.BOX_BIAS, alm.CLS_KERNEL, alm.CLS_BIAS)}
    c, r = channels, reduced
    # (torch suffix, keras variable, torch shape, conversion)
    spec = (
        ("fc_list.{m}.weight", alm.CLS_KERNEL, (1, c), _first_row),
        ("fc_list.{m}.bias", alm.CLS_BIAS, (1,), _first_row),
        ("att_list.{m}.conv1.weight", alm.ATT_KERNEL1, (r, c, 1, 1),
         _squeeze_1x1_transposed),
        ("att_list.{m}.conv1.bias", alm.ATT_BIAS1, (r,), _same),
        ("att_list.{m}.conv2.weight", alm.ATT_KERNEL2, (c, r, 1, 1),
         _squeeze_1x1_transposed),
        ("att_list.{m}.conv2.bias", alm.ATT_BIAS2, (c,), _same),
        ("stn_list.{m}.weight", alm.BOX_KERNEL, (4, c), _transpose),
        ("stn_list.{m}.bias", alm.BOX_BIAS, (4,), _same),
    )
    slots = {}
    if any(v.name == alm.LATERAL_KERNEL for v in layer.weights):
        # The level's lateral 1x1 conv, applied inside the ALM layer.
        lateral = f"{LATERAL_PREFIX}{layer.name[len(ALM_PREFIX):]}"
        kernel = _variable(layer, alm.LATERAL_KERNEL)
        bias = _variable(layer, alm.LATERAL_BIAS)
        c_in, units = tuple(kernel.shape)
        slots[f"{lateral}.weight"] = _Slot(
            kernel, None, (units, c_in, 1, 1), _squeeze_1x1_transposed)
        slots[f"{lateral}.bias"] = _Slot(bias, None, (units,), _same)
    for m in range(num_attributes):
        for suffix, var, shape, fn in spec:
            slots[f"{layer.name}.{suffix.format(m=m)}"] = _Slot(
                variables[var], m, shape, fn)
    return slots


def _model_slots(model: keras.Model, kind: str) -> dict[str, _Slot]:
    """Every checkpoint key the model expects for `kind`, and its target."""
    backbone_prefix = BACKBONE_PREFIX if kind == ALM_CHECKPOINT else ""
    slots: dict[str, _Slot] = {}
    for name, layers in _all_layers(model).items():
        if not any(layer.weights for layer in layers):
            continue
        layer = layers[0]
        if len(layers) > 1:
            raise CheckpointError(
                f"the Keras model has {len(layers)} layers named {name!r}")
        is_conv = isinstance(layer, keras.layers.Conv2D)
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        if is_conv and name.startswith(LATERAL_PREFIX):
            if kind == ALM_CHECKPOINT:
                slots.update(_conv_slots(layer, ""))
        elif is_conv:
            slots.update(_conv_slots(layer, backbone_prefix))
        elif is_bn:
            slots.update(_bn_slots(layer, backbone_prefix))
        elif kind != ALM_CHECKPOINT:
            continue
        elif name == GLOBAL_CLASSIFIER:
            slots[f"{name}.weight"] = _Slot(
                layer.kernel, None, tuple(layer.kernel.shape)[::-1],
                _transpose)
            slots[f"{name}.bias"] = _Slot(
                layer.bias, None, tuple(layer.bias.shape), _same)
        elif name in ALM_LAYERS:
            slots.update(_alm_slots(layer))
    if kind == ALM_CHECKPOINT:
        covered = {id(s.variable) for s in slots.values()}
        for v in model.weights:
            if id(v) not in covered:
                raise CheckpointError(
                    f"the Keras model's variable {v.path!r} has no "
                    "counterpart in the official checkpoint layout")
    return slots


def _ignored(key: str, kind: str) -> bool:
    if key.endswith(_IGNORED_SUFFIXES):
        return True
    return kind == BACKBONE_CHECKPOINT and key in _IMAGENET_CLASSIFIER


def _describe(keys: list[str]) -> str:
    more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
    return f"{keys[0]!r}{more}"


def import_state_dict(model: keras.Model, state: Mapping[str, np.ndarray],
                      kind: str | None = None) -> str:
    """Assigns a PyTorch state dict (numpy values) to `model`.

    Args:
        model: a model from `alm_tf.build_model` (built).
        state: tensor name -> array, names without `module.`.
        kind: one of `CHECKPOINT_KINDS`, or None to detect it.

    Returns:
        The kind that was imported.

    Raises:
        CheckpointError: a tensor is missing, unexpected or mis-shaped (the
            model is left unchanged).
    """
    kind = kind or checkpoint_kind(state)
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"kind must be one of {list(CHECKPOINT_KINDS) + [None]}. "
                         f"Received: kind={kind!r}")
    slots = _model_slots(model, kind)
    present = [k for k in state if not _ignored(k, kind)]
    missing = [k for k in slots if k not in state]
    extra = [k for k in present if k not in slots]
    what = KIND_DESCRIPTIONS[kind]
    classifier = f"{GLOBAL_CLASSIFIER}.weight"
    if kind == ALM_CHECKPOINT and classifier in slots and classifier in state:
        want = slots[classifier].torch_shape[0]
        got = np.shape(state[classifier])
        if len(got) == 2 and got[0] != want:
            raise CheckpointError(
                f"checkpoint has {got[0]} attributes ({classifier} "
                f"{tuple(got)}); the model has {want}")
    if missing:
        raise CheckpointError(
            f"{what} lacks tensor {_describe(missing)} that the model needs")
    if extra:
        raise CheckpointError(
            f"{what} has tensor {_describe(extra)} that the model does not "
            "have")
    values: dict[int, np.ndarray] = {}
    variables: dict[int, keras.Variable] = {}
    for key, slot in slots.items():
        array = np.asarray(state[key])
        if (len(slot.torch_shape) == 1
                and array.shape == (1,) + slot.torch_shape):
            # Some BN-Inception ImageNet files (converted from Caffe) store
            # batch-norm vectors as (1, C).
            array = array[0]
        if array.shape != slot.torch_shape:
            raise CheckpointError(
                f"tensor {key!r} has shape {tuple(array.shape)}; the model "
                f"needs {slot.torch_shape}")
        converted = slot.to_keras(array)
        vid = id(slot.variable)
        if vid not in values:
            # Start from the current value: stacked ALM variables are filled
            # one attribute at a time.
            values[vid] = np.array(keras.ops.convert_to_numpy(slot.variable))
            variables[vid] = slot.variable
        if slot.index is None:
            values[vid][...] = converted
        else:
            values[vid][slot.index] = converted
    for vid, value in values.items():
        variable = variables[vid]
        variable.assign(value.astype(keras.backend.standardize_dtype(
            variable.dtype)))
    return kind


def import_checkpoint(path: str | os.PathLike, model: keras.Model) -> str:
    """Reads `path` and assigns it to `model` (built by `alm_tf.build_model`).

    Returns:
        The kind imported (`CHECKPOINT_KINDS`).

    Raises:
        CheckpointError: the file is unreadable or does not fit the model
            (the model is left unchanged).
    """
    state = load_state_dict(path)
    return import_state_dict(model, state, checkpoint_kind(state))
