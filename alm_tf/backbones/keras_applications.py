"""`keras.applications` backbones with three feature taps (strides 8, 16, 32).

Every backbone built here takes the project's one input format: float32
NHWC RGB, ImageNet-normalized, `(x / 255 - mean) / std` with
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225). Each backbone
folds the input preprocessing its ImageNet weights were trained with into
its first layer (`FoldedImageNetPreprocessing`), so training and serving
share a single preprocessing function whatever the backbone. With
`p = 255 * (std * x + mean)` the RGB pixel in 0..255, the application
receives:

| backbone             | mode      | the application receives                  |
| -------------------- | --------- | ----------------------------------------- |
| `resnet50`           | `caffe`   | `p[..., ::-1] - (103.939, 116.779, 123.68)` (BGR) |
| `efficientnetv2_s`   | `tf128`   | `p / 128 - 1`                              |
| `convnext_tiny`      | `torch`   | `(p / 255 - mean) / std`, i.e. `x` itself  |
| `mobilenet_v3_large` | `tf`      | `p / 127.5 - 1`                            |

These equal, respectively, `keras.applications.resnet50.preprocess_input`
and the built-in preprocessing layers that EfficientNetV2-S
(`Rescaling(1/128, offset=-1)`), ConvNeXt (`Normalization` with the
ImageNet mean/std times 255) and MobileNetV3 (`Rescaling(1/127.5,
offset=-1)`) add with `include_preprocessing=True`; those applications are
therefore built with `include_preprocessing=False` (the layers have no
weights, so ImageNet weight files load unchanged).

The returned model is a functional model (default name `backbone`) holding
the preprocessing layer and all the application's layers, with outputs
`[stride 8, stride 16, stride 32]`. Call it as a layer inside a larger
model (`features = backbone(images)`) so its layer names stay nested and
cannot clash with the rest of the model.
"""

from __future__ import annotations

import operator
import os
import re
import urllib.error
import warnings
from typing import Any

import keras

from alm_tf import names
from alm_tf.backbones.registry import (APPLICATION_OUTPUT, KERAS_APPLICATION_BACKBONES, REGISTRY,
                                       SIZE_MULTIPLE, BackboneSpec)
# The project's one input normalization (shared with training and serving).
from alm_tf.preprocessing.pixels import IMAGENET_MEAN, IMAGENET_STD

# `keras.applications.imagenet_utils` caffe mode: BGR means in 0..255.
CAFFE_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)

_PREPROCESSING_LAYER_NAME = "folded_preprocessing"


def _spec(name: str) -> BackboneSpec:
    spec = REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None or not spec.is_keras_application:
        raise ValueError(
            f"Unknown keras.applications backbone. Expected one of "
            f"{list(KERAS_APPLICATION_BACKBONES)}. Received: name={name!r}"
        )
    return spec


def tap_channels(name: str) -> tuple[int, int, int]:
    """Channels of the three taps (strides 8, 16, 32) of a backbone.

    Args:
        name: one of `KERAS_APPLICATION_BACKBONES`.

    Returns:
        A tuple of three ints.
    """
    return _spec(name).channels


def _affine_constants(
    mode: str,
) -> tuple[bool, tuple[float, ...], tuple[float, ...]]:
    """(reverse_channels, scale, offset) so that y = x[perm] * scale + offset."""
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    if mode == "caffe":
        # y[c] = p[2 - c] - caffe[c], p = 255 * (std * x + mean).
        scale = tuple(255.0 * std[2 - c] for c in range(3))
        offset = tuple(255.0 * mean[2 - c] - CAFFE_BGR_MEAN[c] for c in range(3))
        return True, scale, offset
    if mode == "torch":
        return False, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
    if mode in ("tf", "tf128"):
        # y = p / d - 1.
        d = 127.5 if mode == "tf" else 128.0
        scale = tuple(255.0 * s / d for s in std)
        offset = tuple(255.0 * m / d - 1.0 for m in mean)
        return False, scale, offset
    raise ValueError(
        "Unknown preprocessing mode. Expected one of "
        f"['caffe', 'torch', 'tf', 'tf128']. Received: mode={mode!r}"
    )


@keras.saving.register_keras_serializable(package="alm_tf")
class FoldedImageNetPreprocessing(keras.layers.Layer):
    """Maps ImageNet-normalized RGB input to what a backbone expects.

    With `p = 255 * (std * x + mean)` the RGB pixel value in 0..255:
    `caffe`: `p` in BGR order minus (103.939, 116.779, 123.68);
    `torch`: `(p / 255 - mean) / std` (the input unchanged);
    `tf`: `p / 127.5 - 1`; `tf128`: `p / 128 - 1`.
    A per-channel affine map (after a channel reversal for `caffe`), no
    weights.

    Args:
        mode: `"caffe"`, `"torch"`, `"tf"` or `"tf128"`.

    Call arguments:
        inputs: float tensor (N, H, W, 3), RGB, ImageNet-normalized.

    Returns:
        A tensor of the same shape.
    """

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reverse, self._scale, self._offset = _affine_constants(mode)
        self.mode = mode

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 4 or input_shape[-1] != 3:
            raise ValueError(
                "FoldedImageNetPreprocessing expects (N, H, W, 3) inputs. "
                f"Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        x = inputs
        if self._reverse:
            x = keras.ops.flip(x, axis=-1)
        if self.mode == "torch":
            return x
        scale = keras.ops.convert_to_tensor(self._scale, dtype=x.dtype)
        offset = keras.ops.convert_to_tensor(self._offset, dtype=x.dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["mode"] = self.mode
        return config


def _check_input_shape(input_shape: Any) -> tuple[int | None, int | None, int]:
    legal = (
        f"a tuple (height, width, 3) with height and width multiples of {SIZE_MULTIPLE} "
        f"(at least {SIZE_MULTIPLE}) or None"
    )
    error = ValueError(
        f"Invalid backbone input_shape: expected {legal}. "
        f"Received: input_shape={input_shape!r}"
    )
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise error from None
    if len(shape) != 3:
        raise error
    dims: list[int | None] = []
    for dim in shape:
        if dim is None:
            dims.append(None)
            continue
        if isinstance(dim, bool):
            raise error
        try:
            dims.append(operator.index(dim))  # ints, numpy ints
        except TypeError:
            raise error from None
    height, width, channels = dims
    if channels != 3:
        raise error
    for dim in (height, width):
        if dim is not None and (dim < SIZE_MULTIPLE or dim % SIZE_MULTIPLE):
            raise error
    return height, width, 3


def _resolve_weights(weights: Any) -> str | None:
    """None, "imagenet" or an existing local .h5 path; else ValueError."""
    if weights is None or (isinstance(weights, str) and weights == "imagenet"):
        return weights
    legal = (
        'None, "imagenet", or the path of an existing local weights file '
        "(.h5 as keras.applications ship, or .weights.h5 from save_weights)"
    )
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"Invalid backbone weights: expected {legal}. "
            f"Received: weights={weights!r}"
        )
    path = os.path.expanduser(os.fspath(weights))
    if not path.endswith(".h5"):
        raise ValueError(
            f"Invalid backbone weights: expected {legal}. "
            f"Received: weights={os.fspath(weights)!r}"
        )
    if not os.path.isfile(path):
        raise ValueError(
            f"Backbone weights file not found: {path!r}; expected {legal}. "
            f"Received: weights={os.fspath(weights)!r}"
        )
    return path


def _is_download_error(error: BaseException) -> bool:
    if isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return True
    return str(error).startswith("URL fetch failure")


def _download_error(name: str, error: BaseException) -> RuntimeError:
    message = " ".join(str(error).split())
    match = re.search(r"(https?://\S+?\.h5)", message)
    url = match.group(1) if match else "the keras.applications weights URL"
    file_name = os.path.basename(url) if match else "<file>_notop.h5"
    reason = message.split(" -- ", 1)[-1] if " -- " in message else message
    return RuntimeError(
        f"Downloading the ImageNet weights of backbone {name!r} from {url} "
        f"failed ({reason}): no network is reachable from here. Download "
        "that file where a network is available (keras caches it in "
        "~/.keras/models/), copy it here and pass its local path instead "
        f"of 'imagenet', e.g. backbone_weights='/path/to/{file_name}'."
    )


def build_keras_application_backbone(
    name: str,
    input_shape: tuple[int | None, int | None, int] = (256, 128, 3),
    weights: str | os.PathLike | None = None,
    *,
    model_name: str = "backbone",
) -> keras.Model:
    """Builds a `keras.applications` backbone with three feature taps.

    Args:
        name: one of `KERAS_APPLICATION_BACKBONES`: `resnet50`, `efficientnetv2_s`,
            `convnext_tiny`, `mobilenet_v3_large` (`include_top=False`;
            MobileNetV3 with `alpha=1.0`, `minimalistic=False`).
        input_shape: `(height, width, 3)`; height and width multiples of 32
            (at least 32) or None. Non-square shapes are fine.
        weights: None (random initialization), `"imagenet"` (Keras download;
            a `RuntimeError` in one line when it fails), or the path of a
            local weights file: the `keras.applications` `_notop.h5` file
            of this backbone, or a `.weights.h5` file written by
            `save_weights` of a backbone built here.
        model_name: name of the returned model (the nested layer name when
            it is called inside a larger model).

    Returns:
        A functional `keras.Model` mapping float32 (N, H, W, 3)
        ImageNet-normalized RGB images to a list of three feature maps
        `[(N, H/8, W/8, C8), (N, H/16, W/16, C16), (N, H/32, W/32, C32)]`,
        channels from `tap_channels(name)`.

    Raises:
        ValueError: unknown name, bad input shape, bad or missing weights
            file, or a weights file that does not fit the backbone.
        RuntimeError: the ImageNet weights could not be downloaded.
    """
    spec = _spec(name)
    shape = _check_input_shape(input_shape)
    resolved = _resolve_weights(weights)
    inputs = keras.Input(shape=shape, name=names.INPUT, dtype="float32")
    # float32 even under a mixed-precision policy: the caffe range (+-150)
    # would lose its fractional part in bfloat16 before the first conv.
    x = FoldedImageNetPreprocessing(
        spec.preprocessing, name=_PREPROCESSING_LAYER_NAME, dtype="float32"
    )(inputs)
    app = _application(spec, x, shape, imagenet=resolved == "imagenet")
    outputs = [app.output if layer_name == APPLICATION_OUTPUT else app.get_layer(layer_name).output
               for layer_name in spec.taps]
    model = keras.Model(inputs, outputs, name=model_name)
    if resolved not in (None, "imagenet"):
        _load_weights_file(model, resolved, name, weights)
    return model


def _application(spec: BackboneSpec, x, shape, *, imagenet: bool) -> keras.Model:
    """The `keras.applications` network of `spec` on tensor `x` (no top)."""
    constructor = getattr(keras.applications, spec.application)
    app_weights = "imagenet" if imagenet else None
    with warnings.catch_warnings():
        # MobileNetV3 warns that ImageNet weights were trained at 224x224;
        # the convolution weights fit any input size.
        warnings.filterwarnings("ignore", message=".*input_shape.*")
        try:
            return constructor(
                include_top=False,
                weights=app_weights,
                input_tensor=x,
                input_shape=shape,
                **dict(spec.application_kwargs),
            )
        except Exception as error:  # noqa: BLE001 - narrowed below
            if imagenet and _is_download_error(error):
                raise _download_error(spec.name, error) from None
            raise


def _load_weights_file(model: keras.Model, path: str, name: str, weights: Any) -> None:
    """Loads a local weights file into a built backbone; ValueError in one line if it does not fit."""
    try:
        # `model` holds the application's layers in the application's
        # order, so keras' own _notop.h5 files and files written by
        # `model.save_weights` both load. A file that does not fit makes
        # keras warn once per layer before raising: keep only the error.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(path)
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category,
                warning.filename, warning.lineno,
            )
    except Exception as error:  # noqa: BLE001 - re-raised as one line
        first = " ".join(str(error).split())[:300]
        raise ValueError(
            f"Could not load weights file {path!r} into backbone "
            f"{name!r} ({type(error).__name__}: {first}). Pass the "
            f"_notop.h5 file of this application or a .weights.h5 file "
            f"saved from this backbone. Received: weights={weights!r}"
        ) from None
