"""The backbone registry: one spec per backbone; every list of names derives from it.

Adding a backbone is one `BackboneSpec` entry here (plus, for a network
that is not a `keras.applications` model, its builder). `BACKBONES`, the
flags' choices, the taps, their channels, the folded input preprocessing
and the accepted weights files all come from these specs.

Pure data: importing this module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

#: Preprocessing modes a backbone can fold into its first layer (see
#: `alm_tf.backbones.keras_applications.FoldedImageNetPreprocessing`).
PREPROCESSING_MODES = ("caffe", "torch", "tf", "tf128")

#: Every backbone is tapped at strides 8, 16 and 32, and the feature
#: pyramid doubles each level to exactly the next finer one's size: an input
#: side must be a multiple of the coarsest stride (`alm_tf.config` says why).
SIZE_MULTIPLE = 32

#: Tap value meaning "the application's own output" (its last layer), for
#: last layers whose Keras names are auto-generated (`activation_N`).
APPLICATION_OUTPUT = "<application output>"

#: Where BN-Inception's ImageNet weights come from: the PyTorch file that
#: the paper's code starts from (Cadene's pretrained-models).
BN_INCEPTION_IMAGENET_URL = "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth"


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the project needs to know about one backbone.

    Attributes:
        name: the backbone's name (`ModelConfig.backbone`, `--backbone`).
        taps: layer names of the feature taps at strides 8, 16 and 32 (the
            last layer of the last block at that stride).
        channels: channels of the three taps.
        preprocessing: the input preprocessing its ImageNet weights were
            trained with, folded into the network (`PREPROCESSING_MODES`;
            `torch` = the project's ImageNet normalization itself).
        application: the `keras.applications` constructor, or None for a
            network built by this project (BN-Inception).
        application_kwargs: extra constructor arguments, as (name, value) pairs.
        weights_suffixes: file endings accepted as local `backbone_weights`.
        imagenet_weights: where `backbone_weights="imagenet"` comes from.
    """

    name: str
    taps: tuple[str, str, str]
    channels: tuple[int, int, int]
    preprocessing: str
    application: Optional[str] = None
    application_kwargs: tuple[tuple[str, object], ...] = ()
    weights_suffixes: tuple[str, ...] = (".h5",)
    imagenet_weights: str = "the keras.applications download"

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSING_MODES:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING_MODES}. "
                             f"Received: preprocessing={self.preprocessing!r}")
        if len(self.taps) != 3 or len(self.channels) != 3:
            raise ValueError(f"backbone {self.name!r} needs three taps and three channel counts")

    @property
    def is_keras_application(self) -> bool:
        return self.application is not None


_SPECS = (
    BackboneSpec(
        name="bn_inception",
        taps=("inception_3b", "inception_4d", "inception_5b"),
        channels=(320, 608, 1024),
        # The official code feeds ImageNet-normalized RGB to it as is.
        preprocessing="torch",
        weights_suffixes=(".pth", ".pth.tar", ".pt"),
        imagenet_weights=BN_INCEPTION_IMAGENET_URL,
    ),
    BackboneSpec(
        name="resnet50",
        taps=("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        channels=(512, 1024, 2048),
        preprocessing="caffe",
        application="ResNet50",
    ),
    BackboneSpec(
        name="efficientnetv2_s",
        # top_activation: after the 1x1 head conv to 1280 channels.
        taps=("block3d_add", "block5i_add", "top_activation"),
        channels=(64, 160, 1280),
        preprocessing="tf128",
        application="EfficientNetV2S",
        application_kwargs=(("include_preprocessing", False),),
    ),
    BackboneSpec(
        name="convnext_tiny",
        # The application's output is its final LayerNormalization.
        taps=("convnext_tiny_stage_1_block_2_identity", "convnext_tiny_stage_2_block_8_identity",
              APPLICATION_OUTPUT),
        channels=(192, 384, 768),
        preprocessing="torch",
        application="ConvNeXtTiny",
        application_kwargs=(("include_preprocessing", False),),
    ),
    BackboneSpec(
        name="mobilenet_v3_large",
        # The application's output is the hard-swish after conv_1 (1x1 to 960).
        taps=("expanded_conv_5_add", "expanded_conv_11_add", APPLICATION_OUTPUT),
        channels=(40, 112, 960),
        preprocessing="tf",
        application="MobileNetV3Large",
        application_kwargs=(("include_preprocessing", False), ("minimalistic", False),
                            ("alpha", 1.0)),
    ),
)

REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}
#: Every backbone name, the paper's first.
BACKBONES: tuple[str, ...] = tuple(REGISTRY)
#: The backbones that are `keras.applications` models.
KERAS_APPLICATION_BACKBONES: tuple[str, ...] = tuple(
    name for name, spec in REGISTRY.items() if spec.is_keras_application)


#: `backbone_weights` value for the backbone's ImageNet weights.
IMAGENET = "imagenet"


def get_spec(name: str) -> BackboneSpec:
    """The spec of backbone `name`; ValueError naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"backbone must be one of {list(BACKBONES)}. "
                         f"Received: backbone={name!r}") from None


def check_weights(name: str, weights: Optional[str]) -> None:
    """ValueError naming `weights` unless it can be weights of backbone `name`.

    None, "imagenet" or a path with one of the backbone's weights-file
    endings (the file itself is read, and checked, when the model is built).
    """
    suffixes = get_spec(name).weights_suffixes
    if weights is None or weights == IMAGENET:
        return
    if not isinstance(weights, str) or not weights.endswith(suffixes):
        raise ValueError(
            f"backbone_weights of {name} must be none, {IMAGENET!r} or a local file ending in "
            f"{' or '.join(suffixes)}. Received: backbone_weights={weights!r}")


__all__ = ["APPLICATION_OUTPUT", "BACKBONES", "BN_INCEPTION_IMAGENET_URL", "BackboneSpec", "IMAGENET",
           "KERAS_APPLICATION_BACKBONES", "PREPROCESSING_MODES", "REGISTRY", "check_weights",
           "get_spec"]
