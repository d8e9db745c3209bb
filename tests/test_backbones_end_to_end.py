"""Every keras.applications backbone: a training step with finite gradients
everywhere, then the trainer's model dir exported and served (issue 7).

MobileNetV3 runs in the default suite; the three larger backbones (about
100 s together) are `slow`: their gradients are checked by
tests/test_keras_backbones.py and the export path is the same for all."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import alm_tf
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.losses import alm_loss
from alm_tf import artifacts
from alm_tf.model import build_model_from_config
from alm_tf.serving import export

ATTRIBUTES = ["hat", "backpack", "boots"]


@pytest.mark.parametrize("backbone", [
    pytest.param("resnet50", marks=pytest.mark.slow),
    pytest.param("efficientnetv2_s", marks=pytest.mark.slow),
    pytest.param("convnext_tiny", marks=pytest.mark.slow),
    "mobilenet_v3_large"])
def test_backbone_trains_a_step_and_exports(backbone, tmp_path):
    keras.utils.set_random_seed(0)
    config = alm_tf.ModelConfig(num_attributes=3, backbone=backbone,
                                image_height=64, image_width=32)
    model = build_model_from_config(config)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (2, 64, 32, 3)).astype(np.float32)
    x = preprocessing.normalize_images(tf.constant(raw))
    y = tf.constant([[1, 0, 1], [0, 1, 0]], tf.float32)
    optimizer = keras.optimizers.Adam(1e-4)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss, _ = alm_loss(y, out, priors=[0.3, 0.5, 0.2])
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad in zip(model.trainable_variables, grads):
        assert grad is not None, var.path
        assert np.all(np.isfinite(np.asarray(grad))), var.path
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

    model_dir = str(tmp_path / "model")
    os.makedirs(model_dir)
    artifacts.write_json(artifacts.config_path(model_dir), {
        "format_version": artifacts.CONFIG_FORMAT, "model": config.to_dict(),
        "attributes": ATTRIBUTES})
    artifacts.save_keras(model, artifacts.weights_path(model_dir),
                         artifacts.keras_description(ATTRIBUTES, config))
    path = export.export_saved_model(export.load_source(model_dir), str(tmp_path / "export"))
    served = tf.saved_model.load(path).signatures["predict_images"](
        images=tf.constant(raw))
    expected = tf.sigmoid(model(x, training=False)["logits"]).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["boxes"].shape == (2, 3, 3, 4)
