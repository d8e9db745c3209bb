"""benchmarks/constant_box_ceiling.py: the best fixed box centre per attribute."""

import csv
import importlib.util
import json
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "constant_box_ceiling.py")
_spec = importlib.util.spec_from_file_location("constant_box_ceiling", _PATH)
ceiling_lib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ceiling_lib)


def _write(tmp_path, boxes, labels, splits):
    images = {f"{i}.jpg": {"hat": b} for i, b in enumerate(boxes)}
    (tmp_path / "regions.json").write_text(json.dumps(
        {"attribute_regions": {"hat": "head", "female": None}, "images": images}))
    with open(tmp_path / "annotations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "split", "hat", "female"])
        for i, (label, split) in enumerate(zip(labels, splits)):
            w.writerow([f"{i}.jpg", split, label, 1])


def test_best_fixed_centre_counts_only_present_pairs_of_the_split(tmp_path):
    boxes = [[0.0, 0.0, 0.2, 0.5], [0.1, 0.2, 0.3, 0.6], [0.6, 0.6, 0.9, 0.9],  # test, present
             [0.6, 0.6, 0.9, 0.9],  # test, absent: ignored
             [0.6, 0.6, 0.9, 0.9]]  # train: ignored
    _write(tmp_path, boxes, labels=[1, 1, 1, 0, 1], splits=["test"] * 4 + ["train"])
    result = ceiling_lib.ceiling(str(tmp_path), "test")
    rate, y, x, n = result["hat"]
    assert n == 3 and rate == pytest.approx(2 / 3)
    assert 0.1 <= y <= 0.2 and 0.2 <= x <= 0.5  # inside the first two regions
    assert result["overall"] == pytest.approx(2 / 3) and "female" not in result


def test_empty_split_is_an_error(tmp_path):
    _write(tmp_path, [[0, 0, 1, 1]], labels=[1], splits=["train"])
    with pytest.raises(ValueError, match="'test'"):
        ceiling_lib.ceiling(str(tmp_path), "test")
