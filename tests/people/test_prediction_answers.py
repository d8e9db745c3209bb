"""alm-predict on person crops (predict_files): readable answers in the CSV
and predictions.jsonl, per-request thresholds; a fake predictor, no model."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from alm_tf import groups as g
from alm_tf.inference import images as prediction

ATTRS = ["Female", "Hat", "Backpack"]
GROUPS = {"groups": [
    {"name": "gender", "kind": "binary", "attributes": ["Female"], "values": ["female", "male"]},
    {"name": "carrying", "kind": "multi", "attributes": ["Backpack"], "values": ["backpack"]}]}
PROBS = np.array([0.45, 0.7, 0.8], np.float32)


def _predictor():
    def fn(encoded):
        probs = np.tile(PROBS, (len(encoded), 1))
        return {"probabilities": probs, "labels": (probs > 0.5).astype(np.int32)}

    return prediction.ImagePredictor(fn, ATTRS, "fake", "fake",
                                     groups=g.from_description(GROUPS, ATTRS))


@pytest.mark.parametrize("thresholds,labels", [(None, [0, 1, 1]), (0.75, [0, 0, 1]),
                                               ({"Female": 0.4}, [1, 1, 1])])
def test_answers_in_csv_and_jsonl(tmp_path, thresholds, labels):
    Image.new("RGB", (30, 60), (200, 10, 10)).save(tmp_path / "a.png")
    result = prediction.predict_files(_predictor(), [str(tmp_path / "a.png")], str(tmp_path / "out"),
                                      progress=False, pictures=False, thresholds=thresholds)
    with open(result.csv_path) as f:
        row = next(csv.DictReader(f))
    assert [int(row[a]) for a in ATTRS] == labels  # labels after the request's thresholds
    with open(tmp_path / "out" / "predictions.jsonl") as f:
        record = json.loads(f.readline())
    expected = {"gender": "female" if labels[0] else "male", "carrying": ["backpack"] if labels[2] else [],
                "Hat": bool(labels[1])}
    assert record["answers"] == expected and record["image"] == str(tmp_path / "a.png")
    assert record["probabilities"] == {a: pytest.approx(float(p)) for a, p in zip(ATTRS, PROBS)}
    assert row["gender"] == expected["gender"] and row["carrying"] == ";".join(expected["carrying"])


def test_bad_thresholds_fail_before_anything_is_written(tmp_path):
    Image.new("RGB", (30, 60)).save(tmp_path / "a.png")
    with pytest.raises(g.GroupsError, match="unknown attribute 'Coat'"):
        prediction.predict_files(_predictor(), [str(tmp_path / "a.png")], str(tmp_path / "out"),
                                 progress=False, thresholds={"Coat": 0.2})
    assert not (tmp_path / "out").exists()
