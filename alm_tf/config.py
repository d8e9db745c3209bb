"""Validated configuration of the ALM model (everything needed to rebuild it)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

BACKBONES = ("bn_inception", "resnet50", "efficientnetv2_s", "convnext_tiny",
             "mobilenet_v3_large")
TOP_DOWN_MODES = ("concat", "add", "none")
FUSION_MODES = ("max", "mean")
UPSAMPLING_MODES = ("bilinear", "nearest")
LEVELS = (1, 2, 3)
#: Initialisations of the ALM box regressors' kernels (TrainConfig.box_kernel_init).
BOX_KERNEL_INITS = ("torch", "zeros")


def check_lr_multiplier(name: str, value: Any, error: type = ValueError) -> float:
    """A learning-rate multiplier as a float; `error` naming `name` unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise error(f"{name} must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The ALM network's architecture (the paper's Table 1 switches included).

    Attributes:
        num_attributes: M, the number of binary attributes.
        backbone: one of `BACKBONES`.
        image_height, image_width: the model's input size.
        alm_levels: pyramid levels that carry ALMs (1 finest .. 3 coarsest);
            empty gives the paper's baseline.
        top_down: how a level combines the upsampled coarser level with its
            lateral features: `concat` (official), `add` or `none`.
        channel_attention: the SE-style attention inside each ALM.
        fusion: `max` (the paper's max voting) or `mean`.
        upsampling: `bilinear` (official code) or `nearest` (paper's text).
        backbone_weights: None, "imagenet" or a local weights file.
    """

    num_attributes: int
    backbone: str = "bn_inception"
    image_height: int = 256
    image_width: int = 128
    alm_levels: Tuple[int, ...] = (1, 2, 3)
    top_down: str = "concat"
    channel_attention: bool = True
    fusion: str = "max"
    upsampling: str = "bilinear"
    backbone_weights: Optional[str] = None

    def __post_init__(self):
        if (not isinstance(self.num_attributes, int)
                or isinstance(self.num_attributes, bool)
                or self.num_attributes < 1):
            raise ValueError("num_attributes must be a positive integer. "
                             f"Received: num_attributes={self.num_attributes!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}. "
                             f"Received: backbone={self.backbone!r}")
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 32:
                raise ValueError(f"{name} must be an integer >= 32. "
                                 f"Received: {name}={value!r}")
        levels = tuple(self.alm_levels)
        try:
            levels = tuple(int(level) for level in levels)
        except (TypeError, ValueError):
            raise ValueError("alm_levels must be a subset of (1, 2, 3). "
                             f"Received: alm_levels={self.alm_levels!r}") from None
        if any(level not in LEVELS for level in levels) or len(set(levels)) != len(levels):
            raise ValueError("alm_levels must be distinct values from (1, 2, 3). "
                             f"Received: alm_levels={self.alm_levels!r}")
        object.__setattr__(self, "alm_levels", tuple(sorted(levels)))
        for name, legal in (("top_down", TOP_DOWN_MODES),
                            ("fusion", FUSION_MODES),
                            ("upsampling", UPSAMPLING_MODES)):
            if getattr(self, name) not in legal:
                raise ValueError(f"{name} must be one of {legal}. "
                                 f"Received: {name}={getattr(self, name)!r}")
        if not isinstance(self.channel_attention, bool):
            raise ValueError("channel_attention must be a bool. Received: "
                             f"channel_attention={self.channel_attention!r}")
        if self.backbone_weights is not None and not isinstance(
                self.backbone_weights, str):
            raise ValueError("backbone_weights must be None, 'imagenet' or a "
                             "path. Received: "
                             f"backbone_weights={self.backbone_weights!r}")

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return (self.image_height, self.image_width, 3)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["alm_levels"] = list(self.alm_levels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"Unknown model config keys: {unknown}")
        data = dict(data)
        if "alm_levels" in data:
            data["alm_levels"] = tuple(data["alm_levels"])
        return cls(**data)

    def build(self):
        """Build the Keras model this config describes."""
        from alm_tf.model import build_model_from_config

        return build_model_from_config(self)
