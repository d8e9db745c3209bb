"""One end-to-end pass with the real BN-Inception ALM model (tiny input),
started from the ImageNet file the paper's code starts from.

A `slow` test (tracing the real network's training step takes most of a
minute on a small CPU): the fast suite covers the same behaviour in parts: the
real model trains and evaluates from its model dir in the tiny demo
(tests/demo/test_demo_end_to_end.py), training starts from the ImageNet
file in tests/training/test_backbone_weights.py, and every trainer and
evaluator behaviour on the tiny model.
"""

import json
import os

import keras
import numpy as np
import pytest

from tests.training import train_helpers as h
from tests.training.weights_files import cadene_bn_inception_file
from alm_tf.evaluation import report as evaluation
from alm_tf.training import train


class _StartingWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.conv1 = self.model.get_layer("conv1_7x7_s2").kernel.numpy().copy()
        self.bn = self.model.get_layer("inception_5b_pool_proj_bn").moving_mean.numpy().copy()


@pytest.mark.slow
def test_real_model_starts_from_imagenet_file_trains_and_evaluates(tmp_path):
    """alm-train --backbone_weights=bn_inception-52deb4733.pth: the file's
    weights are in the model when training starts (no .keras detour)."""
    weights = tmp_path / "bn_inception-52deb4733.pth"
    written = cadene_bn_inception_file(weights)
    data_dir = str(tmp_path / "data")
    h.write_dataset(data_dir, splits=(("train", 8), ("val", 4), ("test", 4)))
    model_dir = str(tmp_path / "model")
    start = _StartingWeights()
    result = train(h.train_config(data_dir, model_dir, batch_size=4, epochs=1, steps_per_epoch=1,
                                  val_split="none", backbone_weights=str(weights)),
                   callbacks=[start])
    np.testing.assert_array_equal(start.conv1, written["conv1_7x7_s2.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(start.bn, written["inception_5b_pool_proj_bn.running_mean"])
    outputs = result.model.output
    assert {"level1", "level2", "level3", "global", "logits"} <= set(outputs)
    assert result.step == 1
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["model"]["backbone"] == "bn_inception"
    assert config["model"]["backbone_weights"] == str(weights)
    report = tmp_path / "report"
    payload = evaluation.run_evaluation(data_dir, "test", model_dir, str(report),
                                        which="best", tune=True)
    assert set(payload["branches"]) == {"level1", "level2", "level3", "global",
                                        "max_fused", "mean_fused"}
    assert 0.0 <= payload["mA"] <= 1.0
    assert os.path.exists(os.path.join(model_dir, "thresholds.json"))
    assert os.path.exists(report / "per_attribute.csv")
