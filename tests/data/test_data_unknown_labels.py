"""Unknown labels (-1) from the readers to the records and the manifest; RAP's 2."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from alm_tf.data import example, labels, make_dataset, schemas, validation
from alm_tf.data.convert import convert
from alm_tf.data.convert_config import ConvertConfig
from alm_tf.data.readers import open_source
from pipelines import convert as convert_cli
from tests.data.data_helpers import write_csv, write_image

RAP_M = len(schemas.RAP_ATTRIBUTES)


def _records(out, split):
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    rows = {}
    for name in manifest["splits"][split]["shards"]:
        for raw in tf.data.TFRecordDataset(os.path.join(out, name)):
            f = tf.train.Example.FromString(raw.numpy()).features.feature
            rows[f[example.FILENAME].bytes_list.value[0].decode()] = list(f[example.ATTRIBUTES].int64_list.value)
    return manifest, rows


def _rap_list(root, n=6, uncertain_rows=(1, 4)):
    """A RAP label list as the paper's code ships it: rows in `uncertain_rows`
    give Female (column 0) the value 2."""
    rng = np.random.default_rng(7)
    lines = []
    for i in range(n):
        name = f"CAM17_2014-03-05_{i:03d}.png"
        write_image(os.path.join(root, name), seed=i)
        values = rng.integers(0, 2, size=RAP_M)
        values[0] = 2 if i in uncertain_rows else i % 2
        lines.append(name + " " + " ".join(str(v) for v in values))
    path = os.path.join(root, "test.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_uncertain_flag_offers_the_library_policies():
    flag = flags.FLAGS["uncertain"]
    assert tuple(flag.parser.enum_values) == labels.UNCERTAIN_POLICIES
    assert flag.default == labels.DEFAULT_UNCERTAIN == "ignore"


@pytest.mark.parametrize("raw, expected", [
    (("1", "0", "-1"), (1, 0, -1)),
    ((1.0, 0, -1.0), (1, 0, -1)),
    ((" -1 ", True, 0), (-1, 1, 0)),
])
def test_parse_labels_accepts_unknown(raw, expected):
    assert validation.parse_labels(raw, ("a", "b", "c")) == expected


@pytest.mark.parametrize("bad", ["2", 2, -2, "", "x", 0.5])
def test_parse_labels_names_a_value_out_of_set(bad):
    problem = validation.parse_labels(("1", bad), ("a", "b"))
    assert isinstance(problem, validation.Problem)
    assert problem.reason == validation.LABEL_OUT_OF_SET
    assert repr(bad) in problem.detail and "'b'" in problem.detail and "-1, 0, 1" in problem.detail


def test_rap_list_keeps_uncertain_rows_as_unknown(tmp_path):
    root = str(tmp_path / "src")
    ann = _rap_list(root)
    out = str(tmp_path / "out")
    result = convert(ConvertConfig(format="alm_list", annotations=(("test", ann),), schema="rap",
                                   images_dir=root, output_dir=out, show_progress=False))
    split = result.manifest["splits"]["test"]
    assert split["num_examples"] == 6 and split["num_skipped"] == 0
    assert split["num_unknown"][0] == 2 and sum(split["num_unknown"]) == 2
    # Female over the 4 known rows (0, 2, 3, 5): values 0, 0, 1, 1.
    assert split["positive_ratio"][0] == pytest.approx(0.5)
    assert result.manifest["options"]["uncertain"] == "ignore"
    _, rows = _records(out, "test")
    assert [rows[f"CAM17_2014-03-05_{i:03d}.png"][0] for i in range(6)] == [0, -1, 0, 1, -1, 1]


@pytest.mark.parametrize("policy, kept, female", [("zero", 6, [0, 0, 0, 1, 0, 1]), ("skip", 4, [0, 0, 1, 1])])
def test_rap_list_other_policies(tmp_path, policy, kept, female):
    root = str(tmp_path / "src")
    ann = _rap_list(root)
    out = str(tmp_path / "out")
    result = convert(ConvertConfig(format="alm_list", annotations=(("test", ann),), schema="rap", images_dir=root,
                                   output_dir=out, uncertain=policy, show_progress=False))
    split = result.manifest["splits"]["test"]
    assert split["num_examples"] == kept and split["num_unknown"] == [0] * RAP_M
    if policy == "skip":
        assert split["skipped_by_reason"] == {"label value out of set": 2}
        assert "2" in split["skipped"][0]["detail"] and "Female" in split["skipped"][0]["detail"]
    _, rows = _records(out, "test")
    assert [rows[k][0] for k in sorted(rows)] == female


def test_rap_list_through_the_cli(tmp_path, capsys):
    root = str(tmp_path / "src")
    ann = _rap_list(root)
    out = str(tmp_path / "out")
    with flagsaver.flagsaver(format="alm_list", schema="rap", annotations=f"test={ann}", images_dir=root,
                             output_dir=out, workers=1, progress=False):
        convert_cli.main(["alm-convert"])
    assert "wrote 6 examples, skipped 0 rows" in capsys.readouterr().out
    with flagsaver.flagsaver(format="alm_list", schema="rap", annotations=f"test={ann}", images_dir=root,
                             output_dir=out, workers=1, progress=False, uncertain="skip", overwrite=True):
        convert_cli.main(["alm-convert"])
    assert "wrote 4 examples, skipped 2 rows" in capsys.readouterr().out


def test_two_in_a_peta_list_stays_out_of_set(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("a.png " + " ".join(["2"] + ["0"] * 34) + "\n")
    row = next(iter(open_source("alm_list", {"test": str(path)}, schema="peta").iter_rows()))
    assert row.labels[0] == "2"
    assert validation.parse_labels(row.labels, schemas.PETA_ATTRIBUTES).reason == validation.LABEL_OUT_OF_SET


def test_csv_empty_cell_and_minus_one_are_unknown(tmp_path):
    root = str(tmp_path / "src")
    rows = []
    for i in range(4):
        write_image(os.path.join(root, f"{i}.png"), seed=i)
    rows = [["0.png", "train", 1, ""], ["1.png", "train", 0, -1], ["2.png", "train", "", 1], ["3.png", "train", 1, 0]]
    ann = write_csv(os.path.join(root, "ann.csv"), ["image", "split", "a", "b"], rows)
    out = str(tmp_path / "out")
    manifest = convert(ConvertConfig(format="csv", annotations=ann, images_dir=root, output_dir=out,
                                     show_progress=False)).manifest
    split = manifest["splits"]["train"]
    assert split["num_examples"] == 4 and split["num_unknown"] == [1, 2]
    # a: 1, 0, 1 known -> 2/3; b: 1, 0 known -> 1/2.
    assert split["positive_ratio"] == pytest.approx([0.666667, 0.5])
    _, records = _records(out, "train")
    assert records == {"0.png": [1, -1], "1.png": [0, -1], "2.png": [-1, 1], "3.png": [1, 0]}
    # The input pipeline hands -1 on as -1.0; records without a source read "".
    ds = make_dataset(out, "train", batch_size=4, image_size=(8, 4), with_sources=True)
    images, batch_labels, sources = next(iter(ds))
    assert images.shape == (4, 8, 4, 3)
    assert sorted(map(tuple, batch_labels.numpy().tolist())) == sorted(
        tuple(float(v) for v in r) for r in records.values())
    assert sources.numpy().tolist() == [b""] * 4
    two = next(iter(make_dataset(out, "train", batch_size=4, image_size=(8, 4))))
    assert len(two) == 2


def test_attribute_without_known_labels_has_ratio_zero():
    counts = labels.LabelCounts(2)
    counts.add((-1, 1))
    counts.add((-1, 0))
    assert counts.manifest_entries() == {"positive_ratio": [0.0, 0.5], "num_unknown": [2, 0]}


def test_uncertain_policy_is_checked():
    with pytest.raises(ValueError, match="ignore, zero, skip.*'maybe'"):
        labels.check_uncertain("maybe")
    with pytest.raises(ValueError, match="--uncertain"):
        ConvertConfig(format="csv", annotations="a.csv", images_dir=".", output_dir="o", uncertain="maybe")
