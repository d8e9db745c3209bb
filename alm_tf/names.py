"""Names the ALM model gives itself, its levels, layers and outputs, and its choices.

The model builder, the checkpoint import, `--init_checkpoint`,
`--freeze_backbone`, the loss, the evaluator and the exporters all refer to
them; they are defined here once. Layer names follow the official
checkpoint (`st_3b`, `latlayer_4d`, `finalfc`). The choice tuples are plain
data, so that `alm_tf.config` and the flags read them without importing
the Keras layers that use them.
"""

from __future__ import annotations

#: The model's name: the Keras model's and the one it is served under.
MODEL_NAME = "alm"
#: The Keras name of the paper's baseline (no ALM level).
BASELINE_MODEL_NAME = f"{MODEL_NAME}_baseline"

#: How an ALM layer combines the upsampled coarser level with its lateral
#: features (`ModelConfig.top_down`, `AttributeLocalization(combine=...)`).
COMBINE_MODES = ("concat", "add", "none")
#: How the branch logits are fused (`ModelConfig.fusion`, `LogitFusion`).
FUSION_MODES = ("max", "mean")
#: How the feature pyramid upsamples (`ModelConfig.upsampling`, `alm_tf.ops`).
UPSAMPLING_MODES = ("bilinear", "nearest")

#: Pyramid levels, finest (stride 8) first.
LEVELS = (1, 2, 3)
#: The backbone tap each level is built on, as the official names say.
LEVEL_TAPS = {1: "3b", 2: "4d", 3: "5b"}

#: The model's input layer.
INPUT = "images"
#: Output keys: the supervised branch logits, the fused logits, the boxes.
BRANCH_OUTPUTS = ("level1", "level2", "level3", "global")
GLOBAL_OUTPUT = "global"
FUSED_OUTPUT = "logits"
BOXES_OUTPUT = "boxes"

GLOBAL_POOL = "global_pool"
GLOBAL_CLASSIFIER = "finalfc"
FUSION = "fusion"
ALM_PREFIX = "st_"
LATERAL_PREFIX = "latlayer_"
BOXES_PREFIX = "boxes"


def level_output(level: int) -> str:
    """Output key of a level's logits (`level1`)."""
    return f"level{level}"


def alm_layer(level: int) -> str:
    """Name of a level's ALM layer (`st_3b`)."""
    return f"{ALM_PREFIX}{LEVEL_TAPS[level]}"


def lateral_layer(level: int) -> str:
    """Name of a level's lateral 1x1 conv (`latlayer_4d`)."""
    return f"{LATERAL_PREFIX}{LEVEL_TAPS[level]}"


def level_boxes_layer(level: int) -> str:
    """Name of the layer that shapes a level's boxes (`boxes_3b`)."""
    return f"{BOXES_PREFIX}_{LEVEL_TAPS[level]}"


#: Every ALM layer name, finest level first.
ALM_LAYERS = tuple(alm_layer(level) for level in LEVELS)
#: Layers that are heads, not backbone (`--freeze_backbone` keeps them
#: trainable): pooling and classifier, laterals, ALMs, output plumbing.
HEAD_LAYER_PREFIXES = (INPUT, GLOBAL_POOL, GLOBAL_CLASSIFIER, LATERAL_PREFIX, ALM_PREFIX,
                       BOXES_PREFIX, FUSION, FUSED_OUTPUT)
