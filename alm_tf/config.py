"""The one description of the ALM model: `ModelConfig`.

Every binary builds it once from its flags (`pipelines/_model_flags.py`),
the trainer and the demo hold it (they do not repeat its fields), a model
dir's config.json and every `.keras` file this project writes store it
once, and a resume compares it. Its rules live in `__post_init__`. It is
plain data and imports no Keras: its choices come from `alm_tf.names` and
the backbone registry (the description does not depend on the code that
builds it); training-only settings live in `alm_tf.training.config`.

The input-size rule: height and width are multiples of 32 (at least 32),
for every backbone. Each backbone is tapped at strides 8, 16 and 32 and the
feature pyramid upsamples each level to exactly twice its size, so each
level must be exactly half the next finer one: BN-Inception's stride-2
reduction blocks concatenate a floor-mode conv with a ceil-mode pool and
the official network crashes when the stride-8 or stride-16 map has an odd
side (288x144, 299x299); the keras.applications backbones' stride-32 map
loses rows otherwise. A multiple of 32 satisfies all of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

from alm_tf.backbones.registry import BACKBONES, IMAGENET, SIZE_MULTIPLE, check_weights, get_spec
from alm_tf.names import COMBINE_MODES, FUSION_MODES, LEVELS, UPSAMPLING_MODES
from alm_tf.preprocessing import image_input

#: How a level combines the upsampled coarser level with its lateral features.
TOP_DOWN_MODES = COMBINE_MODES


def check_image_size(name: str, value: Any) -> int:
    """A side of the input: an int, a multiple of `SIZE_MULTIPLE`; ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
        raise ValueError(f"{name} must be a positive multiple of {SIZE_MULTIPLE} (the backbones "
                         f"halve it five times). Received: {name}={value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The ALM network's architecture (the paper's Table 1 switches included).

    Attributes:
        num_attributes: M, the number of binary attributes; None until the
            data says (a trainer's config; `build_model_from_config` needs
            it set, `with_num_attributes` sets it).
        backbone: one of `BACKBONES`.
        image_height, image_width: the model's input size, multiples of 32.
        alm_levels: pyramid levels that carry ALMs (1 finest .. 3 coarsest);
            empty gives the paper's baseline.
        top_down: how a level combines the upsampled coarser level with its
            lateral features: `concat` (official), `add` or `none`.
        channel_attention: the SE-style attention inside each ALM.
        fusion: `max` (the paper's max voting) or `mean`.
        upsampling: `bilinear` (official code) or `nearest` (paper's text).
        backbone_weights: where the backbone starts from: None (random),
            "imagenet", or a local weights file (`alm_tf.backbones`).
        exif_orientation: `ignore` (pixels as stored, the official PIL
            pipeline) or `apply` (a JPEG's EXIF Orientation turns the
            decoded pixels): part of the model's preprocessing, so training,
            evaluation and every serving path decode alike
            (`alm_tf.preprocessing.image_input`).
    """

    num_attributes: Optional[int] = None
    backbone: str = "bn_inception"
    image_height: int = 256
    image_width: int = 128
    alm_levels: Tuple[int, ...] = (1, 2, 3)
    top_down: str = "concat"
    channel_attention: bool = True
    fusion: str = "max"
    upsampling: str = "bilinear"
    backbone_weights: Optional[str] = None
    exif_orientation: str = image_input.DEFAULT_EXIF_ORIENTATION

    def __post_init__(self):
        if self.num_attributes is not None and (
                not isinstance(self.num_attributes, int) or isinstance(self.num_attributes, bool)
                or self.num_attributes < 1):
            raise ValueError("num_attributes must be a positive integer. "
                             f"Received: num_attributes={self.num_attributes!r}")
        get_spec(self.backbone)
        check_image_size("image_height", self.image_height)
        check_image_size("image_width", self.image_width)
        try:
            levels = tuple(int(level) for level in self.alm_levels)
        except (TypeError, ValueError):
            raise ValueError(f"alm_levels must be distinct values from {LEVELS}. "
                             f"Received: alm_levels={self.alm_levels!r}") from None
        if any(level not in LEVELS for level in levels) or len(set(levels)) != len(levels):
            raise ValueError(f"alm_levels must be distinct values from {LEVELS}. "
                             f"Received: alm_levels={list(levels)}")
        object.__setattr__(self, "alm_levels", tuple(sorted(levels)))
        for name, legal in (("top_down", TOP_DOWN_MODES), ("fusion", FUSION_MODES),
                            ("upsampling", UPSAMPLING_MODES)):
            if getattr(self, name) not in legal:
                raise ValueError(f"{name} must be one of {list(legal)}. "
                                 f"Received: {name}={getattr(self, name)!r}")
        if not isinstance(self.channel_attention, bool):
            raise ValueError("channel_attention must be a bool. Received: "
                             f"channel_attention={self.channel_attention!r}")
        if self.backbone_weights == "":
            object.__setattr__(self, "backbone_weights", None)
        check_weights(self.backbone, self.backbone_weights)
        if self.exif_orientation not in image_input.EXIF_ORIENTATIONS:
            raise ValueError(f"exif_orientation must be one of {list(image_input.EXIF_ORIENTATIONS)}. "
                             f"Received: exif_orientation={self.exif_orientation!r}")

    @property
    def image_size(self) -> Tuple[int, int]:
        return (self.image_height, self.image_width)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return (self.image_height, self.image_width, 3)

    @property
    def is_baseline(self) -> bool:
        """The paper's baseline: no ALM level."""
        return not self.alm_levels

    def with_num_attributes(self, num_attributes: int) -> "ModelConfig":
        """This config for M attributes; ValueError if it already says another M."""
        if self.num_attributes is not None and self.num_attributes != num_attributes:
            raise ValueError(f"the model has {self.num_attributes} attributes and the data "
                             f"{num_attributes}. Received: num_attributes={self.num_attributes}")
        return dataclasses.replace(self, num_attributes=num_attributes)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with `changes` (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["alm_levels"] = list(self.alm_levels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """From `to_dict()`'s output; ValueError naming unknown keys."""
        if not isinstance(data, dict):
            raise ValueError(f"a model config must be a JSON object. Received: {data!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        data = dict(data)
        if "alm_levels" in data:
            data["alm_levels"] = tuple(data["alm_levels"])
        return cls(**data)


__all__ = ["BACKBONES", "FUSION_MODES", "IMAGENET", "LEVELS", "ModelConfig", "SIZE_MULTIPLE",
           "TOP_DOWN_MODES", "UPSAMPLING_MODES", "check_image_size"]
