"""The reduced demo (every stage, tiny sizes) and alm-predict on its models.

One tiny `alm-demo --tiny` run (module fixture, through the binary's
main()) feeds every test here: its artifacts are checked stage by stage,
and its ALM model (.keras, model dir, SavedModel) is what alm-predict
reads. The full-size expectations are in test_demo_slow.py.
"""

import csv
import json
import os
import re

import keras
import numpy as np
import pytest
from absl.testing import flagsaver
from PIL import Image

import alm_tf  # noqa: F401  registers the custom layers
import pipelines.demo  # noqa: F401  (defines the flags)
from alm_tf.model import backbone_layers
from pipelines import _cli
from tests.cli_helpers import run_main

SUMMARY_KEYS = ("alm", "baseline", "localization_hit_rate", "footage", "paths")


def _run_main(module_name, args):
    return run_main(module_name, args)

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    out = root / "demo_output"
    code, stdout, stderr = _run_main("pipelines.demo", [f"--output_dir={out}", "--tiny", "--noprogress"])
    assert code == 0, stderr[-3000:]
    with open(out / "summary.json") as f:
        summary = json.load(f)
    return {"dir": out, "stdout": stdout, "summary": summary, "root": root}


def test_last_line_and_table(demo_run):
    lines = demo_run["stdout"].strip().splitlines()
    assert re.fullmatch(r"demo finished in \d+ s", lines[-1]), lines[-1]
    text = demo_run["stdout"]
    assert "alm-demo: 60 synthetic images (tight crops), input 64x32" in text  # what it chose
    assert re.search(r"^baseline\s+\d\.\d{4}", text, re.M) and re.search(r"^alm\s+\d\.\d{4}", text, re.M)


def test_summary_keys_and_ranges(demo_run):
    s = demo_run["summary"]
    for key in SUMMARY_KEYS:
        assert key in s
    for model in ("alm", "baseline"):
        for metric in ("mA", "f1"):
            assert 0.0 <= s[model][metric] <= 1.0
    hit = s["localization_hit_rate"]
    assert hit["num_pairs"] > 0 and set(hit) >= {"overall", "level1", "level2", "level3", "definition"}
    for key in ("overall", "level1", "level2", "level3"):
        assert 0.0 <= hit[key] <= 1.0
    assert hit["overall"] == pytest.approx(np.mean([hit["level1"], hit["level2"], hit["level3"]]))
    ceiling = hit["fixed_box_ceiling"]
    assert 0.0 < ceiling["overall"] <= 1.0 and set(ceiling["per_attribute"]) <= set(hit["per_attribute"])
    assert "a fixed box per attribute could reach" in demo_run["stdout"]
    assert 0.0 <= s["alm_saved_model_test_mA"] <= 1.0
    assert s["demo_seconds"] > 0


def test_the_footage_stage_scores_the_street_video(demo_run):
    footage = demo_run["summary"]["footage"]
    assert set(footage) >= {"idf1", "mota", "hota", "per_track_mA", "per_box_mA", "tracks", "people"}
    assert footage["people"] > 0 and footage["tracks"] >= 0
    p = demo_run["summary"]["paths"]
    assert os.path.isfile(p["street_video"])
    for name in ("tracks.csv", "tracks.txt", "run.json"):
        assert os.path.isfile(os.path.join(p["people"], name)), name
    assert "footage:" in demo_run["stdout"] and "IDF1" in demo_run["stdout"]


def test_every_stage_made_its_artifacts(demo_run):
    p = demo_run["summary"]["paths"]
    synth = p["synthetic_data"]
    assert os.path.isfile(os.path.join(synth, "annotations.csv"))
    assert os.path.isfile(os.path.join(synth, "regions.json"))
    with open(os.path.join(p["records"], "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["splits"]["test"]["num_examples"] > 0
    for model in ("baseline_model", "alm_model"):
        for name in ("config.json", "final.keras", "best.keras"):
            assert os.path.isfile(os.path.join(p[model], name)), (model, name)
    with open(os.path.join(p["baseline_model"], "config.json")) as f:
        assert json.load(f)["model"]["alm_levels"] == []
    with open(os.path.join(p["alm_model"], "config.json")) as f:
        config = json.load(f)
    assert config["model"]["alm_levels"] == [1, 2, 3]
    assert config["train"]["init_checkpoint"].endswith(os.path.join("baseline", "final.keras"))
    assert config["train"]["freeze_backbone"] is True  # the demo's ALM stage trains the heads
    # ... with boxes that start equal, a fast box bias and a slow box kernel.
    assert (config["train"]["box_kernel_init"], config["train"]["box_lr_multiplier"],
            config["train"]["box_bias_lr_multiplier"]) == ("zeros", 0.1, 100.0)
    with open(os.path.join(p["baseline_model"], "config.json")) as f:
        assert json.load(f)["train"]["box_bias_lr_multiplier"] == 1.0
    for ev in ("baseline_eval", "alm_eval"):
        with open(os.path.join(p[ev], "metrics.json")) as f:
            metrics = json.load(f)
        assert all(0 <= metrics[k] <= 1 for k in ("mA", "accuracy", "precision", "recall", "f1"))
        with open(os.path.join(p[ev], "per_attribute.csv")) as f:
            assert len(list(csv.DictReader(f))) == len(manifest["attributes"])
    assert os.path.isfile(os.path.join(p["saved_model"], "saved_model.pb"))
    assert p["saved_model"].rstrip("/").endswith(os.path.join("export", "1"))


def test_alm_stage_kept_the_baseline_backbone(demo_run):
    p = demo_run["summary"]["paths"]
    baseline = keras.saving.load_model(os.path.join(p["baseline_model"], "final.keras"), compile=False)
    alm = keras.saving.load_model(os.path.join(p["alm_model"], "final.keras"), compile=False)
    layers = [layer for layer in backbone_layers(alm) if layer.weights]
    assert len(layers) > 100
    for layer in layers:
        for before, after in zip(baseline.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(before, after, err_msg=layer.name)


def test_predictions_csv_and_pictures(demo_run):
    p = demo_run["summary"]["paths"]
    with open(os.path.join(p["synthetic_data"], "annotations.csv")) as f:
        test_rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    with open(p["predictions_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(test_rows)
    attributes = [k[: -len("_prob")] for k in rows[0] if k.endswith("_prob")]
    groups = [k for k in rows[0]
              if k not in ("image", "picture") and k not in attributes and not k.endswith("_prob")]
    assert groups[:2] == ["gender", "hair"]  # readable answers: alm-synth's attribute groups
    for row in rows:
        for key, value in row.items():
            if key.endswith("_prob"):
                assert 0.0 <= float(value) <= 1.0
            elif key == "picture":  # the localization PNG of the row, if one was drawn
                assert value == "" or os.path.isfile(os.path.join(os.path.dirname(p["predictions_csv"]), value))
            elif key in attributes:
                assert value in ("0", "1")
        assert row["gender"] in ("female", "male")
    assert len(p["pictures"]) == 2
    for path in p["pictures"]:
        with Image.open(path) as im:
            im.load()
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


@pytest.mark.parametrize("flag, name", [("--image_height=100", "image_height"),
                                        ("--alm_box_bias_lr_multiplier=-1", "alm_box_bias_lr_multiplier")])
def test_demo_cli_bad_flag(tmp_path, flag, name):
    code, _, stderr = _run_main("pipelines.demo", [f"--output_dir={tmp_path}", flag])
    assert code == 1 and name in stderr.strip() and len(stderr.strip().splitlines()) == 1
    assert not os.listdir(tmp_path)  # nothing written


def test_demo_cli_bad_crop_is_one_line(capsys):
    """--crop is an enum: absl refuses a bad value at parse time, in one line."""
    with flagsaver.flagsaver():
        with pytest.raises(SystemExit) as e:
            _cli.parse_flags("alm-demo", ["alm-demo", "--crop=wide"])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--crop=wide" in err and err.startswith("alm-demo: error:")


def test_demo_never_writes_where_its_backbone_weights_lie(tmp_path):
    weights = tmp_path / "w" / "bn_inception.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"the only copy")
    code, _, stderr = _run_main("pipelines.demo", [f"--output_dir={tmp_path}", f"--backbone_weights={weights}"])
    assert code == 1 and "holds the input" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert sorted(os.listdir(tmp_path)) == ["w"] and weights.read_bytes() == b"the only copy"
