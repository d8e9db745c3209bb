"""The model's flags, defined once for every binary that builds a model.

`alm-train`, `alm-demo` and `alm-import-torch` import this module; each
flag's name, default and choices come from `alm_tf.config.ModelConfig`
(and the backbone registry), and `model_config()` turns them into one
validated `ModelConfig`.
"""

from __future__ import annotations

from typing import Optional

from absl import flags

from alm_tf.config import BACKBONES, FUSION_MODES, IMAGENET, TOP_DOWN_MODES, UPSAMPLING_MODES, ModelConfig
from alm_tf.preprocessing import image_input
from pipelines._cli import OVERRIDE as _OVERRIDE

_DEFAULTS = ModelConfig()
#: The `--backbone_weights` value for "none" (random initialisation).
NO_WEIGHTS = "none"

BACKBONE = flags.DEFINE_enum("backbone", _DEFAULTS.backbone, BACKBONES, "Backbone.", **_OVERRIDE)
BACKBONE_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", NO_WEIGHTS,
    f"Where the backbone starts: {NO_WEIGHTS} (random), {IMAGENET} (download where a network "
    "exists), or a local file: bn_inception takes the PyTorch ImageNet file the paper starts from "
    "(bn_inception-52deb4733.pth, needs the torch extra), the keras.applications backbones their "
    "*_notop.h5 file.", **_OVERRIDE)
IMAGE_HEIGHT = flags.DEFINE_integer("image_height", _DEFAULTS.image_height,
                                    "Input height (a multiple of 32).", **_OVERRIDE)
IMAGE_WIDTH = flags.DEFINE_integer("image_width", _DEFAULTS.image_width,
                                   "Input width (a multiple of 32).", **_OVERRIDE)
ALM_LEVELS = flags.DEFINE_list("alm_levels", [str(v) for v in _DEFAULTS.alm_levels],
                               "Pyramid levels with ALMs (1 finest .. 3); empty = the paper's "
                               "baseline.", **_OVERRIDE)
TOP_DOWN = flags.DEFINE_enum("top_down", _DEFAULTS.top_down, TOP_DOWN_MODES,
                             "How a level combines the coarser level with its own features.",
                             **_OVERRIDE)
CHANNEL_ATTENTION = flags.DEFINE_bool("channel_attention", _DEFAULTS.channel_attention,
                                      "SE attention in the ALMs.", **_OVERRIDE)
FUSION = flags.DEFINE_enum("fusion", _DEFAULTS.fusion, FUSION_MODES,
                           "Fusion of the branch logits (max: the paper's max voting).", **_OVERRIDE)
UPSAMPLING = flags.DEFINE_enum("upsampling", _DEFAULTS.upsampling, UPSAMPLING_MODES,
                               "Top-down upsampling (bilinear: the official code; nearest: the "
                               "paper's text).", **_OVERRIDE)

EXIF_ORIENTATION = flags.DEFINE_enum(
    image_input.EXIF_FLAG, _DEFAULTS.exif_orientation, image_input.EXIF_ORIENTATIONS,
    "A JPEG's EXIF Orientation: ignore (pixels as stored, as the official PIL pipeline) or apply "
    "(turn the pixels as the camera says). Stored with the model: evaluation, exports and "
    "alm-predict decode the same way.", **_OVERRIDE)

_FIELD_FLAGS = {"backbone": BACKBONE, "backbone_weights": BACKBONE_WEIGHTS,
                "image_height": IMAGE_HEIGHT, "image_width": IMAGE_WIDTH, "alm_levels": ALM_LEVELS,
                "top_down": TOP_DOWN, "channel_attention": CHANNEL_ATTENTION, "fusion": FUSION,
                "upsampling": UPSAMPLING, "exif_orientation": EXIF_ORIENTATION}
#: ModelConfig fields without a flag (a test checks that every other field has one).
NOT_FLAGS = ("num_attributes",)


def model_config(num_attributes: Optional[int] = None) -> ModelConfig:
    """The validated ModelConfig the flags describe (ValueError naming the flag)."""
    values = {name: flag.value for name, flag in _FIELD_FLAGS.items()}
    if values["backbone_weights"] in (NO_WEIGHTS, ""):
        values["backbone_weights"] = None
    levels = values["alm_levels"]
    try:
        values["alm_levels"] = tuple(int(v) for v in levels)
    except ValueError:
        raise ValueError(f"--alm_levels must be a list of levels among 1, 2, 3. "
                         f"Received: --alm_levels={','.join(levels)}") from None
    try:
        return ModelConfig(num_attributes=num_attributes, **values)
    except ValueError as e:  # name the flag the user typed
        message = str(e).splitlines()[0]
        for name in _FIELD_FLAGS:
            message = message.replace(f"Received: {name}=", f"Received: --{name}=")
        raise ValueError(message) from None
