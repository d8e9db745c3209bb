"""Backbones: functional builders returning feature taps at strides 8/16/32."""

from __future__ import annotations

from alm_tf.backbones import keras_applications  # noqa: F401  (registers FoldedImageNetPreprocessing)
from alm_tf.backbones.bn_inception import bn_inception_features
from alm_tf.config import BACKBONES


def backbone_features(name: str, inputs, weights=None):
    """Build backbone `name` on `inputs`; return [stride 8, 16, 32] maps.

    Args:
        name: one of `alm_tf.config.BACKBONES`.
        inputs: Keras tensor (N, H, W, 3), RGB, ImageNet-normalized.
        weights: None, "imagenet" or a local weights file.
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}. "
                         f"Received: backbone={name!r}")
    if name == "bn_inception":
        if weights is not None:
            raise ValueError(
                "BN-Inception's ImageNet weights exist only as a PyTorch file: "
                "convert them with `alm-import-torch --checkpoint=FILE.pth` "
                "and pass the result to --init_checkpoint. Received: "
                f"backbone_weights={weights!r}")
        return bn_inception_features(inputs)
    model = keras_applications.build_keras_application_backbone(
        name, tuple(inputs.shape[1:]), weights=weights)
    return list(model(inputs))


__all__ = ["BACKBONES", "backbone_features"]
