"""One end-to-end pass with the real BN-Inception ALM model (tiny input).

The only test here that builds the real network: tracing its training step
dominates (about 50 s on 2 CPU cores); every other trainer behaviour is
covered on the tiny model.
"""

import json
import os


import train_helpers as h
from alm_tf import evaluation
from alm_tf.training import train


def test_real_model_trains_and_evaluates_from_model_dir(tmp_path):
    data_dir = str(tmp_path / "data")
    h.write_dataset(data_dir, splits=(("train", 8), ("val", 4), ("test", 4)))
    model_dir = str(tmp_path / "model")
    result = train(h.train_config(data_dir, model_dir, batch_size=4, epochs=1, steps_per_epoch=1,
                                  val_split="none"))
    outputs = result.model.output
    assert {"level1", "level2", "level3", "global", "logits"} <= set(outputs)
    assert result.step == 1
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["model"]["backbone"] == "bn_inception"
    report = tmp_path / "report"
    payload = evaluation.run_evaluation(data_dir, "test", model_dir, str(report),
                                        which="best", tune=True)
    assert set(payload["branches"]) == {"level1", "level2", "level3", "global",
                                        "max_fused", "mean_fused"}
    assert 0.0 <= payload["mA"] <= 1.0
    assert os.path.exists(os.path.join(model_dir, "thresholds.json"))
    assert os.path.exists(report / "per_attribute.csv")
