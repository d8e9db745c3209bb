"""Unknown labels through evaluation, and a merged data set with disjoint
attribute subsets that trains (tiny model) and evaluates per source."""

import csv
import json
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

import alm_tf.data as data
from alm_tf.data.merge import MergeConfig, merge
from alm_tf.evaluation import metrics
from alm_tf.evaluation import report as evaluation
from alm_tf.training import train
from pipelines import evaluate as evaluate_cli
from tests.training import train_helpers as h

# ---- evaluation functions with unknown labels ------------------------------


def test_tune_thresholds_ignores_unknown_labels():
    labels = np.array([[1, -1], [1, -1], [0, -1], [0, -1], [-1, -1]])
    probs = np.array([[0.3, 0.9], [0.4, 0.2], [0.1, 0.8], [0.2, 0.1], [0.35, 0.5]])
    thresholds = evaluation.tune_thresholds(labels, probs)
    # attr0 over its 4 known rows: 0.2 separates them (the unknown 0.35 plays no part).
    assert thresholds[0] == pytest.approx(0.2)
    assert thresholds[1] == 0.5  # no known label: untouched
    known = labels[:4, :1]
    np.testing.assert_array_equal(evaluation.tune_thresholds(known, probs[:4, :1]), thresholds[:1])


def _logit(p):
    return np.log(p / (1 - p))


def test_per_source_report_and_files(tmp_path):
    labels = np.array([[1, 0, -1], [0, 1, -1], [-1, -1, 1], [-1, -1, 0], [1, 1, -1]])
    probs = np.array([[0.9, 0.2, 0.5], [0.3, 0.7, 0.5], [0.5, 0.5, 0.8], [0.5, 0.5, 0.6], [0.6, 0.4, 0.5]])
    sources = np.array(["a", "a", "b", "b", "a"], dtype=object)
    result = evaluation.evaluate_outputs(labels, {"global": _logit(probs), "logits": _logit(probs)},
                                         sources=sources)
    report = result["report"]
    assert set(report["per_source"]) == {"a", "b"}
    a = metrics.compute_metrics(labels[[0, 1, 4]], probs[[0, 1, 4]])
    for key in metrics.SUMMARY_KEYS:
        assert report["per_source"]["a"][key] == pytest.approx(a[key]), key
    assert report["per_source"]["a"]["num_known"] == [3, 3, 0]
    assert report["per_source"]["a"]["per_attribute_mA"][2] is None  # no known label in a
    # b: attr2 known twice: 0.8 > .5 (TP), 0.6 > .5 (FP): mA (1 + 0) / 2.
    assert report["per_source"]["b"]["mA"] == pytest.approx(0.5)
    assert report["num_images"] == 5 and report["num_labelled_images"] == 5
    evaluation.write_report(str(tmp_path), report, result["fused"], ["x", "y", "z"], 0.5,
                            per_source=result["per_source"])
    payload = json.loads((tmp_path / "metrics.json").read_text())  # valid JSON (no NaN)
    assert payload["per_source"]["b"]["num_images"] == 2
    rows = list(csv.DictReader(open(tmp_path / "per_attribute.csv")))
    assert [int(r["num_known"]) for r in rows] == [3, 3, 2]
    by_source = list(csv.DictReader(open(tmp_path / evaluation.PER_SOURCE_CSV)))
    assert [(r["source"], r["name"], int(r["num_known"])) for r in by_source] == [
        ("a", "x", 3), ("a", "y", 3), ("a", "z", 0), ("b", "x", 0), ("b", "y", 0), ("b", "z", 2)]
    text = evaluation.format_table(report, result["fused"], ["x", "y", "z"])
    assert "known" in text and "\na " in text and "\nb " in text
    with pytest.raises(ValueError, match="sources"):
        evaluation.evaluate_outputs(labels, {"probabilities": probs}, sources=sources[:3])


# ---- merge, train, evaluate --------------------------------------------------

MAPPING = {
    "attributes": list(h.ATTRIBUTES),
    # Disjoint: source a labels top_red and bottom_green, b labels left_blue.
    "sources": {"a": {"top_red": "top_red", "bottom_green": "bottom_green"},
                "b": {"left_blue": "left_blue"}},
}


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    a, b = str(root / "a"), str(root / "b")
    h.write_dataset(a, seed=0)
    h.write_dataset(b, seed=1, splits=(("train", 32), ("val", 8), ("test", 12)))
    mapping = str(root / "mapping.json")
    with open(mapping, "w") as f:
        json.dump(MAPPING, f)
    out = str(root / "merged")
    merge(MergeConfig(inputs=(("a", a), ("b", b)), mapping=mapping, output_dir=out, show_progress=False))
    return out


@pytest.fixture(scope="module")
def trained(merged, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("model"))
    result = train(h.train_config(merged, model_dir, epochs=2, seed=0), model_builder=h.tiny_model)
    return model_dir, result


def test_training_on_the_merged_set(merged, trained):
    model_dir, result = trained
    manifest = json.load(open(os.path.join(merged, "manifest.json")))
    train_split = manifest["splits"]["train"]
    assert train_split["num_examples"] == 80 and train_split["num_unknown"] == [32, 32, 48]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["data"]["priors"] == pytest.approx(train_split["positive_ratio"], abs=1e-6)  # over known labels
    history = result.history
    assert len(history) == 2 and all(np.isfinite(r["train"]["loss"]) for r in history)
    assert all(0.0 <= r["val"]["mA"] <= 1.0 for r in history)
    assert os.path.exists(os.path.join(model_dir, "final.keras"))


def _evaluate_cli(args):
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["alm-evaluate", *args])
        evaluate_cli.main(["alm-evaluate"])


def test_evaluate_reports_per_source_and_overall(merged, trained, tmp_path, capsys):
    model_dir, result = trained
    out = tmp_path / "report"
    model = os.path.join(model_dir, "final.keras")
    _evaluate_cli([f"--data_dir={merged}", "--split=test", f"--model={model}", f"--output_dir={out}",
                   "--batch_size=7"])
    printed = capsys.readouterr().out
    payload = json.loads((out / "metrics.json").read_text())
    assert set(payload["per_source"]) == {"a", "b"}
    assert payload["per_source"]["a"]["num_images"] == 16 and payload["per_source"]["b"]["num_images"] == 12
    assert payload["per_source"]["a"]["num_known"] == [16, 16, 0]
    assert payload["per_source"]["b"]["num_known"] == [0, 0, 12]
    assert payload["per_source"]["a"]["per_attribute_mA"][2] is None
    # The same numbers from a direct model call.

    ds = data.make_dataset(merged, "test", batch_size=5, image_size=(64, 32), with_sources=True)
    labels, outputs, sources = evaluation.collect_outputs(
        lambda x: result.model(x, training=False), ds, return_sources=True)
    overall = metrics.compute_metrics(labels, outputs["logits"], from_logits=True)
    assert payload["mA"] == pytest.approx(overall["mA"], abs=1e-6)
    assert payload["f1"] == pytest.approx(overall["f1"], abs=1e-6)
    for name in ("a", "b"):
        rows = sources == name
        direct = metrics.compute_metrics(labels[rows], outputs["logits"][rows], from_logits=True)
        assert payload["per_source"][name]["mA"] == pytest.approx(direct["mA"], abs=1e-6)
    per_attribute = list(csv.DictReader(open(out / "per_attribute.csv")))
    assert [int(r["num_known"]) for r in per_attribute] == [16, 16, 12]
    assert len(list(csv.DictReader(open(out / evaluation.PER_SOURCE_CSV)))) == 6
    assert "source" in printed and "known" in printed
