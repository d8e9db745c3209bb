"""Build a backbone by name (`backbone_features`) and set its weights (`load_backbone_weights`).

See the package docstring for where each backbone's weights come from.
"""

from __future__ import annotations

import os
from typing import Optional

import keras

from alm_tf import torch_import
from alm_tf.backbones import keras_applications
from alm_tf.backbones.bn_inception import bn_inception_features
from alm_tf.backbones.registry import BN_INCEPTION_IMAGENET_URL, IMAGENET, check_weights, get_spec


def backbone_features(name: str, inputs, weights: Optional[str] = None) -> list:
    """Build backbone `name` on `inputs`; return [stride 8, 16, 32] maps.

    Args:
        name: one of `BACKBONES`.
        inputs: Keras tensor (N, H, W, 3), RGB, ImageNet-normalized.
        weights: None, "imagenet" or a local weights file. A
            `keras.applications` backbone loads them here; BN-Inception's
            are set by `load_backbone_weights` once the model is built.
    """
    spec = get_spec(name)
    check_weights(name, weights)
    if not spec.is_keras_application:
        return bn_inception_features(inputs)
    model = keras_applications.build_keras_application_backbone(
        name, tuple(inputs.shape[1:]), weights=weights)
    return list(model(inputs))


def _bn_inception_file(weights: str) -> str:
    if weights != IMAGENET:
        path = os.path.expanduser(weights)
        if not os.path.isfile(path):
            raise ValueError(f"backbone weights file not found: {weights!r}")
        return path
    file_name = os.path.basename(BN_INCEPTION_IMAGENET_URL)
    try:
        return keras.utils.get_file(file_name, BN_INCEPTION_IMAGENET_URL, cache_subdir="models")
    except Exception as error:  # noqa: BLE001 - any download failure
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(
            f"downloading BN-Inception's ImageNet weights from {BN_INCEPTION_IMAGENET_URL} failed "
            f"({reason}): download that file where a network is available and pass its local "
            f"path instead of 'imagenet', e.g. backbone_weights='/path/to/{file_name}'") from None


def load_backbone_weights(model: keras.Model, name: str, weights: Optional[str]) -> Optional[str]:
    """Sets the weights of a backbone whose layers live in `model` (BN-Inception).

    Returns the file read, or None when there was nothing to do (no
    weights, or a `keras.applications` backbone, whose weights were loaded
    when it was built).

    Raises:
        ValueError: a missing file, a failed download, or a file that does
            not fit (one line naming the tensor; the model is unchanged).
        ImportError: PyTorch is not installed (the `torch` extra).
    """
    spec = get_spec(name)
    if weights is None or spec.is_keras_application:
        return None
    check_weights(name, weights)
    path = _bn_inception_file(weights)
    state = torch_import.load_state_dict(path)
    if torch_import.checkpoint_kind(state) == torch_import.ALM_CHECKPOINT:
        state = torch_import.backbone_part(state)
    torch_import.import_state_dict(model, state, torch_import.BACKBONE_CHECKPOINT)
    return path


__all__ = ["backbone_features", "load_backbone_weights"]
