"""Fast pieces of the demo and alm-predict: hit rate, step plan, image lookup."""

import csv
import importlib
import os

import numpy as np
import pytest
from absl import flags
from PIL import Image

from alm_tf.config import ModelConfig
from alm_tf.demo import run as demo
from alm_tf.evaluation import localization
from alm_tf.inference import images as prediction

ATTRS = ["hat", "boots", "female"]
REGIONS = {"hat": "head", "boots": "feet", "female": None}


def test_hit_rate_counts_present_pairs_only():
    regions = {"a": {"hat": [0.0, 0.0, 0.2, 1.0], "boots": [0.8, 0.0, 1.0, 1.0]},
               "b": {"hat": [0.0, 0.0, 0.2, 1.0], "boots": [0.8, 0.0, 1.0, 1.0]}}
    boxes = np.zeros((2, 2, 3, 4), np.float32)
    boxes[:, :, 0] = [0.0, 0.3, 0.2, 0.7]  # hat: centre 0.1 -> hit
    boxes[:, :, 1] = [0.3, 0.3, 0.7, 0.7]  # boots: centre 0.5 -> miss
    boxes[1, 1, 1] = [0.85, 0.3, 0.95, 0.7]  # image b, level 2: boots hit
    labels = np.array([[1, 1, 1], [1, 0, 0]])
    hit = localization.localization_hit_rate(boxes, ["a", "b"], labels, ATTRS, regions, REGIONS)
    # present pairs: (a, hat), (a, boots), (b, hat); level 1: 2/3, level 2: 2/3.
    assert hit["num_pairs"] == 3
    assert hit["level1"] == pytest.approx(2 / 3) and hit["level2"] == pytest.approx(2 / 3)
    assert hit["overall"] == pytest.approx(2 / 3)
    assert hit["per_attribute"]["hat"]["overall"] == 1.0
    assert hit["per_attribute"]["boots"]["overall"] == 0.0
    assert "female" not in hit["per_attribute"]
    # all pairs: 4 per level; level 2 also hits (b, boots).
    assert hit["all_pairs"]["level2"] == pytest.approx(3 / 4)


def test_hit_rate_without_present_pairs_is_none():
    regions = {"a": {"hat": [0, 0, 1, 1], "boots": [0, 0, 1, 1]}}
    hit = localization.localization_hit_rate(np.zeros((1, 3, 3, 4)), ["a"], np.zeros((1, 3)), ATTRS, regions, REGIONS)
    assert hit["num_pairs"] == 0 and hit["overall"] is None and hit["level3"] is None


@pytest.mark.parametrize("total,fraction,expected", [
    (100, 0.0, (1, 100)), (100, 0.2, (5, 20)), (90, 1 / 3, (3, 30)), (7, 0.01, (1, 7)),
])
def test_stage_steps(total, fraction, expected):
    epochs, per_epoch, decay = demo.stage_schedule(total, fraction)
    assert (epochs, per_epoch) == expected and epochs * per_epoch == total
    if epochs > 1:
        assert decay[0] * per_epoch == total - round(total * fraction)


@pytest.mark.parametrize("field,value", [
    ("num_images", 5), ("model", ModelConfig(alm_levels=())), ("baseline_steps", 0), ("decay_fraction", 1.0),
    ("learning_rate", 0.0), ("baseline_learning_rate", -1.0), ("output_dir", ""), ("crop", "wide"),
])
def test_demo_config_validation(field, value):
    with pytest.raises(ValueError, match="alm_levels" if field == "model" else field):
        demo.DemoConfig(**{field: value})


def test_find_images(tmp_path):
    for name in ("b.jpg", "a.PNG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert prediction.find_images(str(tmp_path)) == [str(tmp_path / "a.PNG"), str(tmp_path / "b.jpg")]
    assert prediction.find_images(str(tmp_path / "*.jpg")) == [str(tmp_path / "b.jpg")]
    assert prediction.find_images(str(tmp_path / "notes.txt")) == [str(tmp_path / "notes.txt")]
    with pytest.raises(FileNotFoundError, match="no files match"):
        prediction.find_images(str(tmp_path / "*.gif"))
    with pytest.raises(FileNotFoundError, match="no image files"):
        prediction.find_images(str(tmp_path / "sub"))
    with pytest.raises(FileNotFoundError, match="no such"):
        prediction.find_images(str(tmp_path / "missing.jpg"))


def test_predict_files_with_a_fake_predictor(tmp_path):
    Image.new("RGB", (30, 60), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("L", (17, 41), 90).save(tmp_path / "b.jpg")
    (tmp_path / "c.jpg").write_bytes(b"not an image")

    def fn(encoded):
        n = len(encoded)
        boxes = np.tile(np.array([0.1, 0.2, 0.5, 0.8], np.float32), (n, 2, 3, 1))
        probs = np.tile(np.array([0.9, 0.2, 0.6], np.float32), (n, 1))
        return {"probabilities": probs, "labels": (probs > 0.5).astype(np.int32), "boxes": boxes}

    predictor = prediction.ImagePredictor(fn, ATTRS, "fake", "fake")
    lines = []
    result = prediction.predict_files(predictor, prediction.find_images(str(tmp_path)),
                                      str(tmp_path / "out"), batch_size=1, progress=False,
                                      report=lines.append)
    assert [os.path.basename(p) for p in result.images] == ["a.png", "b.jpg"]
    assert len(result.skipped) == 1 and "c.jpg" in lines[0]

    with open(result.csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[0]["hat"] == "1" and float(rows[0]["boots_prob"]) == pytest.approx(0.2)
    assert len(result.pictures) == 2
    for path in result.pictures:
        with Image.open(path) as im:
            assert im.format == "PNG"
    with pytest.raises(ValueError, match=r"cannot read .*c.jpg: not an image file"):
        prediction.predict_files(predictor, [str(tmp_path / "c.jpg")], str(tmp_path / "o2"),
                                 progress=False, report=lines.append)
    with pytest.raises(ValueError, match=r"none of the 2 images could be read \(first: .*c.jpg: not an"):
        prediction.predict_files(predictor, [str(tmp_path / "c.jpg")] * 2, str(tmp_path / "o3"),
                                 progress=False, report=lines.append)
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_pick_attributes_present_first():
    probs = np.array([0.2, 0.9, 0.6, 0.4])
    labels = np.array([0, 1, 1, 0])
    assert prediction.pick_attributes(probs, labels, 3) == [1, 2, 3]
    assert prediction.pick_attributes(probs, labels, 2, allowed=[0, 2]) == [2, 0]


def test_hit_rate_vertical_diagnostic():
    regions = {"a": {"hat": [0.0, 0.4, 0.2, 0.6], "boots": [0.8, 0.4, 1.0, 0.6]}}
    boxes = np.zeros((1, 1, 3, 4), np.float32)
    boxes[0, 0, 0] = [0.0, 0.8, 0.2, 1.0]  # right height, wrong side
    boxes[0, 0, 1] = [0.8, 0.4, 1.0, 0.6]  # hit
    hit = localization.localization_hit_rate(boxes, ["a"], np.array([[1, 1, 0]]), ATTRS, regions, REGIONS)
    assert hit["overall"] == 0.5 and hit["vertical_only"]["overall"] == 1.0


def test_shared_flag_names_keep_the_other_binaries_defaults():
    # allow_override: the last definition's default wins in a process that
    # imports several binaries; ours must not change the others'.
    for name in ("pipelines.synth", "pipelines.convert", "pipelines.train", "pipelines.evaluate",
                 "pipelines.demo", "pipelines.predict"):
        importlib.import_module(name)
    f = flags.FLAGS
    assert f["output_dir"].default is None and f["model"].default is None
    assert f["num_images"].default == 2000 and f["image_height"].default == 256
    assert f["seed"].default == 0 and f["progress"].default is True
    assert f["crop"].default == "tight"


def test_fixed_box_ceiling_is_the_best_point_over_present_pairs():
    regions = {"a": {"hat": [0.0, 0.0, 0.2, 0.5]}, "b": {"hat": [0.1, 0.2, 0.3, 0.6]},
               "c": {"hat": [0.6, 0.6, 0.9, 0.9]}, "d": {"hat": [0.6, 0.6, 0.9, 0.9]}}
    labels = np.array([[1, 1], [1, 0], [1, 1], [0, 1]])  # d: hat absent, ignored
    out = localization.fixed_box_ceiling(["a", "b", "c", "d"], labels, ["hat", "female"], regions,
                                 {"hat": "head", "female": None})
    hat = out["per_attribute"]["hat"]
    assert hat["num_pairs"] == 3 and hat["rate"] == pytest.approx(2 / 3)
    assert 0.1 <= hat["y"] <= 0.2 and 0.2 <= hat["x"] <= 0.5  # inside the first two regions
    assert out["overall"] == pytest.approx(2 / 3) and set(out["per_attribute"]) == {"hat"}
    none = localization.fixed_box_ceiling(["d"], np.array([[0, 1]]), ["hat", "female"], regions,
                                  {"hat": "head", "female": None})
    assert none == {"overall": None, "per_attribute": {}}


def test_run_demo_runs_the_stages_it_is_given(tmp_path):
    from alm_tf.demo import stages as demo_stages

    def models(run):
        run.summary["baseline"] = dict.fromkeys(demo_stages.METRIC_KEYS, 0.5)
        run.summary["alm"] = dict.fromkeys(demo_stages.METRIC_KEYS, 0.75)

    def boxes(run):
        run.summary["localization_hit_rate"] = {
            "num_pairs": 0, "overall": None, "level1": None, "per_attribute": {},
            "vertical_only": {"overall": None, "level1": None}}
        run.state["seen"] = True

    def extra(run):
        assert run.state["seen"]  # what the stages before it left
        run.summary["extra"] = {"ok": True}
        run.say(f"{run.label}extra")

    said = []
    stages = (demo_stages.Stage("models", models), demo_stages.Stage("boxes", boxes, numbered=False),
              demo_stages.Stage("extra", extra))
    config = demo.tiny_demo_config(str(tmp_path / "d"))
    summary = demo.run_demo(config, say=said.append, stages=stages)
    assert list(summary["timings_s"]) == ["models", "boxes", "extra"]
    assert list(summary)[:2] == ["alm", "baseline"] and summary["extra"] == {"ok": True}
    assert "[2/2] extra" in said  # numbered stages only
    assert os.path.isfile(summary["paths"]["summary"])
    assert summary["paths"]["records"] == os.path.join(config.output_dir, "records")
