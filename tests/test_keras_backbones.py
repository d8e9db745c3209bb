"""keras.applications backbones: taps, parameters, gradients, weights, preprocessing."""

import os
import socket
import urllib.error
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf.backbones.keras_applications import (
    FoldedImageNetPreprocessing,
    build_keras_application_backbone,
    tap_channels,
)
from alm_tf.backbones.registry import KERAS_APPLICATION_BACKBONES as BACKBONE_NAMES
from alm_tf.backbones.registry import REGISTRY
from alm_tf.preprocessing.pixels import normalize_images
from tests import fresh_python

# Pinned once from keras 3 (include_top=False): the application's own count.
PARAMS = {
    "resnet50": 23_587_712,
    "efficientnetv2_s": 20_331_360,
    "convnext_tiny": 27_820_128,
    "mobilenet_v3_large": 2_996_352,
}
TINY = (64, 32, 3)
# Saving, loading and weights files run the same code for every backbone:
# ResNet-50 and MobileNetV3 in the default suite, EfficientNetV2-S (513
# layers) and ConvNeXt with `make test-slow`.
FILE_TEST_NAMES = [
    pytest.param(n, marks=pytest.mark.slow) if n in ("efficientnetv2_s", "convnext_tiny") else n
    for n in BACKBONE_NAMES
]
# A refused download reads the same for every backbone: one in the default suite.
NETWORK_TEST_NAMES = [n if n == "mobilenet_v3_large" else pytest.param(n, marks=pytest.mark.slow)
                      for n in BACKBONE_NAMES]

_CACHE = {}


def _backbone(name, shape):
    """One backbone per (name, shape) for the whole module (building costs)."""
    key = (name, shape)
    if key not in _CACHE:
        _CACHE[key] = build_keras_application_backbone(name, shape)
    return _CACHE[key]


def _raw_images(shape=TINY, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, size=(n,) + shape).astype(np.float32)


def _normalized(raw):
    return np.asarray(normalize_images(raw))


def test_registry_covers_the_pinned_backbones():
    assert set(BACKBONE_NAMES) == set(PARAMS)
    for name in BACKBONE_NAMES:
        spec = REGISTRY[name]
        assert len(spec.taps) == len(spec.channels) == 3
        assert hasattr(keras.applications, spec.application)


@pytest.mark.parametrize("name", BACKBONE_NAMES)
@pytest.mark.parametrize("shape", [pytest.param((256, 128, 3), marks=pytest.mark.slow),
                                   pytest.param((128, 64, 3), marks=pytest.mark.slow), TINY])
def test_taps_have_strides_8_16_32(name, shape):
    model = _backbone(name, shape)
    height, width = shape[:2]
    expected = [
        (height // s, width // s, c)
        for s, c in zip((8, 16, 32), tap_channels(name))
    ]
    assert [tuple(t.shape[1:]) for t in model.outputs] == expected
    outputs = model(np.zeros((1,) + shape, np.float32))
    assert [tuple(o.shape[1:]) for o in outputs] == expected
    for output in outputs:
        assert np.all(np.isfinite(np.asarray(output)))


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_parameter_count_is_pinned(name):
    model = _backbone(name, TINY)  # the count does not depend on the input size
    assert model.count_params() == PARAMS[name]
    assert model.name == "backbone"


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_every_trainable_variable_gets_a_finite_gradient(name):
    model = _backbone(name, TINY)
    images = _normalized(_raw_images())
    with tf.GradientTape() as tape:
        outputs = model(images, training=True)
        loss = tf.add_n([tf.reduce_mean(tf.square(o)) for o in outputs])
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) > 0
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, variable.path
        assert np.all(np.isfinite(np.asarray(grad))), variable.path


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_folded_preprocessing_matches_the_application(name):
    """normalize_images(raw) through the fold == keras' own preprocessing(raw)."""
    raw = _raw_images(seed=1)
    model = _backbone(name, TINY)
    fold = keras.Model(model.input, model.get_layer("folded_preprocessing").output)
    received = np.asarray(fold(_normalized(raw)))
    if name == "resnet50":
        expected = keras.applications.resnet50.preprocess_input(raw.copy())
    else:
        # The layers keras itself puts first with include_preprocessing=True.
        constructor = getattr(keras.applications, REGISTRY[name].application)
        kwargs = dict(REGISTRY[name].application_kwargs, include_preprocessing=True)
        app = constructor(include_top=False, weights=None, input_shape=TINY, **kwargs)
        x = raw
        preprocessing = (keras.layers.Rescaling, keras.layers.Normalization)
        used = 0
        for layer in app.layers[1:]:
            if not isinstance(layer, preprocessing):
                break
            x = layer(x)
            used += 1
        assert used >= 1
        expected = np.asarray(x)
    np.testing.assert_allclose(received, expected, atol=1e-4, rtol=0)


def test_fold_modes_and_config():
    layer = FoldedImageNetPreprocessing("caffe")
    clone = FoldedImageNetPreprocessing.from_config(layer.get_config())
    assert clone.mode == "caffe"
    x = _normalized(_raw_images(n=1))
    np.testing.assert_allclose(
        np.asarray(FoldedImageNetPreprocessing("torch")(x)), x, atol=0
    )
    with pytest.raises(ValueError, match="Received: mode='bgr'"):
        FoldedImageNetPreprocessing("bgr")


def _no_network(monkeypatch, tmp_path):
    """keras' real get_file, an empty cache, and a resolver that fails."""

    def fail(*args, **kwargs):
        raise urllib.error.URLError(
            socket.gaierror(-2, "Name or service not known")
        )

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", fail)
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))


@pytest.mark.parametrize("name", NETWORK_TEST_NAMES)
def test_imagenet_without_network_is_one_clear_error(name, monkeypatch, tmp_path):
    _no_network(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError) as info:
        build_keras_application_backbone(name, TINY, weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert "Downloading the ImageNet weights" in message
    assert "no network is reachable" in message
    assert "backbone_weights='/path/to/" in message and ".h5'" in message


@pytest.mark.parametrize("name", FILE_TEST_NAMES)
def test_local_weights_file_round_trip(name, tmp_path):
    model = _backbone(name, TINY)
    path = str(tmp_path / f"{name}.weights.h5")
    model.save_weights(path)
    loaded = build_keras_application_backbone(name, TINY, weights=path)
    images = _normalized(_raw_images(seed=2))
    for a, b in zip(model(images), loaded(images)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", FILE_TEST_NAMES)
def test_keras_application_h5_file_loads(name, tmp_path):
    """An HDF5 file laid out as keras' own `_notop.h5` files (legacy format,
    the application with its default preprocessing) loads, and the backbone on
    normalized images equals the application on raw images."""
    constructor = getattr(keras.applications, REGISTRY[name].application)
    kwargs = {k: v for k, v in REGISTRY[name].application_kwargs if k != "include_preprocessing"}
    app = constructor(include_top=False, weights=None, input_shape=TINY, **kwargs)
    path = str(tmp_path / f"{name}_notop.h5")
    app.save(path)
    model = build_keras_application_backbone(name, TINY, weights=path)
    raw = _raw_images(seed=3)
    app_input = raw
    if name == "resnet50":
        app_input = keras.applications.resnet50.preprocess_input(raw.copy())
    expected = np.asarray(app(app_input))
    received = np.asarray(model(_normalized(raw))[2])
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(received / scale, expected / scale, atol=1e-4)


@pytest.mark.parametrize("name", FILE_TEST_NAMES)
def test_keras_file_round_trip(name, tmp_path):
    model = _backbone(name, TINY)
    path = str(tmp_path / "backbone.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = _normalized(_raw_images(seed=4))
    for a, b in zip(model(images), loaded(images)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_missing_weights_file_is_one_clear_error(tmp_path):
    path = str(tmp_path / "nope.weights.h5")
    with pytest.raises(ValueError) as info:
        build_keras_application_backbone("resnet50", TINY, weights=path)
    message = str(info.value)
    assert "\n" not in message
    assert "not found" in message and f"Received: weights={path!r}" in message


@pytest.mark.parametrize("weights", ["weights.pth", 3, "ImageNet"])
def test_bad_weights_argument(weights):
    with pytest.raises(ValueError, match="Received: weights="):
        build_keras_application_backbone("resnet50", TINY, weights=weights)


def test_wrong_weights_file_is_one_clear_error(tmp_path):
    path = str(tmp_path / "mobilenet.weights.h5")
    _backbone("mobilenet_v3_large", TINY).save_weights(path)
    with pytest.raises(ValueError) as info:
        build_keras_application_backbone("convnext_tiny", TINY, weights=path)
    assert "\n" not in str(info.value)
    assert "Could not load weights file" in str(info.value)


@pytest.mark.parametrize(
    "shape", [(100, 64, 3), (256, 128, 1), (16, 32, 3), (256, 128), "x"]
)
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="Received: input_shape="):
        build_keras_application_backbone("resnet50", shape)


def test_unknown_name():
    with pytest.raises(ValueError, match="Received: name='resnet18'"):
        build_keras_application_backbone("resnet18", TINY)
    with pytest.raises(ValueError, match="resnet50"):
        tap_channels("vgg16")


def test_dynamic_spatial_shape():
    model = build_keras_application_backbone("mobilenet_v3_large", (None, None, 3))
    outputs = model(np.zeros((1, 96, 64, 3), np.float32))
    assert [tuple(o.shape[1:3]) for o in outputs] == [(12, 8), (6, 4), (3, 2)]


def test_layer_names_stay_nested_in_a_larger_model():
    backbone = _backbone("resnet50", TINY)
    inputs = keras.Input(TINY)
    taps = backbone(inputs)
    # A layer named like one inside the backbone does not clash.
    head = keras.layers.Conv2D(4, 1, name="conv1_conv")(taps[0])
    outer = keras.Model(inputs, head)
    names = [layer.name for layer in outer.layers]
    assert "backbone" in names and len(names) == len(set(names))
    assert outer(np.zeros((1,) + TINY, np.float32)).shape == (1, 8, 4, 4)


def test_no_input_shape_warning_with_weights_none():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_keras_application_backbone("mobilenet_v3_large", (256, 128, 3))


def test_imagenet_mobilenet_does_not_warn_about_input_shape(monkeypatch, tmp_path):
    _no_network(monkeypatch, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError):
            build_keras_application_backbone(
                "mobilenet_v3_large", (256, 128, 3), weights="imagenet"
            )
    assert not [w for w in caught if "input_shape" in str(w.message)]


def test_weights_path_may_use_home(tmp_path, monkeypatch):
    model = _backbone("mobilenet_v3_large", TINY)
    model.save_weights(str(tmp_path / "m.weights.h5"))
    monkeypatch.setenv("HOME", str(tmp_path))
    loaded = build_keras_application_backbone(
        "mobilenet_v3_large", TINY, weights=os.path.join("~", "m.weights.h5")
    )
    assert loaded.count_params() == PARAMS["mobilenet_v3_large"]


def test_keras_file_loads_after_import_alm_tf(tmp_path):
    """CONTRACT: `keras.saving.load_model` works after `import alm_tf`."""
    path = str(tmp_path / "backbone.keras")
    _backbone("mobilenet_v3_large", TINY).save(path)
    code = (
        "import keras, alm_tf\n"
        f"keras.saving.load_model({path!r})\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = fresh_python.run(["-c", code], cwd=root, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_numpy_int_input_shape_is_accepted():
    model = build_keras_application_backbone(
        "mobilenet_v3_large", (np.int64(64), np.int64(32), np.int64(3))
    )
    assert tuple(model.outputs[0].shape[1:3]) == (8, 4)


def test_mixed_precision_keeps_the_fold_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_keras_application_backbone("resnet50", TINY)
    finally:
        keras.config.set_dtype_policy(previous)
    fold = model.get_layer("folded_preprocessing")
    assert fold.compute_dtype == "float32"
    outputs = model(_normalized(_raw_images()))
    assert all(np.all(np.isfinite(np.asarray(o, np.float32))) for o in outputs)
