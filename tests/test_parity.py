"""Numerical parity: the Keras model vs the PyTorch reference of the official
network, with weights carried over by `alm_tf.torch_import`.

The reference gets random weights, non-trivial batch-norm statistics and box
layers whose boxes are far from the identity (sx, sy in about (0.3, 0.9),
tx, ty clearly non-zero), so that a transposed kernel, a swapped x/y, a
wrong concat order or a floor-mode pool shows up as a large error.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import keras  # noqa: E402

import alm_tf  # noqa: E402
from alm_tf.testing import torch_reference as ref  # noqa: E402
from alm_tf import torch_import  # noqa: E402

TOLERANCE = 1e-4  # max |keras - torch| / max |torch|, per logit vector
LEVELS = ("level1", "level2", "level3", "global")


def relative_error(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def expected_boxes(params):
    """Official (sx, sy, tx, ty) (N, M, 4) -> [y1, x1, y2, x2]."""
    sx, sy, tx, ty = (params[..., i] for i in range(4))
    return np.stack([(ty - sy + 1) / 2, (tx - sx + 1) / 2,
                     (ty + sy + 1) / 2, (tx + sx + 1) / 2], axis=-1)


def state_as_numpy(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def build_pair(num_attributes, height, width, seed):
    """The reference with random weights and the Keras model importing it."""
    torch_model = ref.randomize_(ref.ALMNet(num_attributes), seed=seed,
                                 calibration_shape=(2, 3, height, width))
    keras_model = alm_tf.build_model(num_attributes,
                                     input_shape=(height, width, 3))
    kind = torch_import.import_state_dict(keras_model,
                                          state_as_numpy(torch_model))
    assert kind == "alm"
    return torch_model, keras_model


def make_images(height, width, seed):
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(2, 3, height, width, generator=gen)


def keras_outputs(keras_model, images):
    outputs = keras_model(images.permute(0, 2, 3, 1).numpy(), training=False)
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def run_pair(torch_model, keras_model, seed):
    images = make_images(*keras_model.inputs[0].shape[1:3], seed)
    with torch.no_grad():
        logits, params = torch_model(images, return_params=True)
    return ([t.numpy() for t in logits], [p.numpy() for p in params],
            keras_outputs(keras_model, images))


@pytest.fixture(scope="module")
def pair_256x128():
    return run_pair(*build_pair(num_attributes=5, height=256, width=128,
                                seed=0), seed=0)


@pytest.fixture(scope="module")
def models_51():
    """M = 51 (RAP): all 1715 official tensors; small input for speed."""
    return build_pair(num_attributes=51, height=64, width=32, seed=7)


def test_logits_match_at_256x128(pair_256x128):
    torch_logits, _, outputs = pair_256x128
    errors = {name: relative_error(outputs[name], expected)
              for name, expected in zip(LEVELS, torch_logits)}
    assert max(errors.values()) <= TOLERANCE, errors
    fused = np.max(np.stack(torch_logits), axis=0)
    assert relative_error(outputs["logits"], fused) <= TOLERANCE


def test_boxes_match_at_256x128(pair_256x128):
    _, params, outputs = pair_256x128
    assert outputs["boxes"].shape == (2, 3, 5, 4)
    for level, p in enumerate(params):
        # The test is only meaningful for boxes far from the identity.
        assert ((p[..., :2] > 0.2) & (p[..., :2] < 0.95)).all()
        assert (np.abs(p[..., 2:]) > 0.05).all()
        np.testing.assert_allclose(outputs["boxes"][:, level],
                                   expected_boxes(p), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def pair_51(models_51):
    return run_pair(*models_51, seed=7)


def test_every_official_key_maps_and_matches_with_51_attributes(models_51,
                                                                pair_51):
    assert len(models_51[0].state_dict()) == 1715
    torch_logits, params, outputs = pair_51
    for name, expected in zip(LEVELS, torch_logits):
        assert outputs[name].shape == (2, 51)
        assert relative_error(outputs[name], expected) <= TOLERANCE, name
    for level, p in enumerate(params):
        np.testing.assert_allclose(outputs["boxes"][:, level],
                                   expected_boxes(p), rtol=0, atol=1e-5)


def test_backbone_taps_match(models_51):
    """Bisection aid: the three backbone taps agree before any ALM."""
    torch_model, keras_model = models_51
    names = ("inception_3b_output", "inception_4d_output",
             "inception_5b_output")
    taps = keras.Model(keras_model.inputs,
                       [keras_model.get_layer(n).output for n in names])
    gen = torch.Generator().manual_seed(5)
    images = torch.randn(2, 3, 64, 32, generator=gen)
    with torch.no_grad():
        feats = torch_model.main_branch(images)
    got = taps(images.permute(0, 2, 3, 1).numpy(), training=False)
    for name, tap, value in zip(names, ("3b", "4d", "5b"), got):
        expected = feats[tap].permute(0, 2, 3, 1).numpy()
        assert relative_error(value, expected) <= TOLERANCE, name


def test_parity_check_detects_nearest_upsampling(models_51, pair_51):
    """Negative control: the paper-text variant must NOT pass the check."""
    torch_logits = pair_51[0]
    nearest = alm_tf.build_model(51, input_shape=(64, 32, 3),
                                 upsampling="nearest")
    torch_import.import_state_dict(nearest, state_as_numpy(models_51[0]))
    outputs = keras_outputs(nearest, make_images(64, 32, seed=7))
    assert relative_error(outputs["level1"], torch_logits[0]) > 10 * TOLERANCE
    assert relative_error(outputs["level2"], torch_logits[1]) > 10 * TOLERANCE
    assert relative_error(outputs["global"], torch_logits[3]) <= TOLERANCE
