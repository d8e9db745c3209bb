"""alm_tf.data.records: the shards of a split counted against the manifest."""

from __future__ import annotations

import json
import logging
import os

import pytest
import tensorflow as tf

from alm_tf.data import example, make_dataset, read_manifest, records
from alm_tf.evaluation import report as evaluation
from tests.data.data_helpers import image_bytes

ATTRS = ["x", "y"]


def _write(out, split="test", counts=(3, 2), labels=(1, 0)):
    """A split of len(counts) shards holding counts[i] good records; returns the manifest."""
    os.makedirs(out, exist_ok=True)
    shards = [f"{split}-{i:05d}-of-{len(counts):05d}.tfrecord" for i in range(len(counts))]
    for shard, n in zip(shards, counts):
        with tf.io.TFRecordWriter(os.path.join(out, shard)) as w:
            for k in range(n):
                w.write(example.build_example(encoded=image_bytes(6, 4, seed=k), image_format="png",
                                              filename=f"{k}.png", height=6, width=4, attributes=labels))
    manifest = {"dataset": "t", "attributes": ATTRS, "num_attributes": len(ATTRS),
                "splits": {split: {"num_examples": sum(counts), "shards": shards}}}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return manifest


def _check(out, split="test", allow=False):
    records.clear_cache()
    return records.check_split(out, split, read_manifest(out), allow_corrupt=allow)


def test_complete_split(tmp_path):
    _write(str(tmp_path))
    result = _check(str(tmp_path))
    assert result.complete and (result.expected, result.usable) == (5, 5)


def test_truncated_shard_names_the_shard_and_the_counts(tmp_path):
    out = str(tmp_path)
    _write(out)
    path = os.path.join(out, "test-00000-of-00002.tfrecord")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(records.CorruptRecordsError) as info:
        _check(out)
    line = str(info.value)
    assert "\n" not in line and "function_node" not in line
    assert "test-00000-of-00002.tfrecord is corrupt after 1 record (truncated record" in line
    assert "3 of the 5 records manifest.json counts are usable" in line
    assert "--allow_corrupt_records" in line


def test_missing_shard(tmp_path):
    out = str(tmp_path)
    _write(out)
    os.remove(os.path.join(out, "test-00001-of-00002.tfrecord"))
    with pytest.raises(records.CorruptRecordsError, match=r"test-00001-of-00002.tfrecord is missing; "
                                                          r"3 of the 5 records"):
        _check(out)


def test_more_or_fewer_records_than_the_manifest_without_a_read_error(tmp_path):
    out = str(tmp_path)
    manifest = _write(out)
    manifest["splits"]["test"]["num_examples"] = 7
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    with pytest.raises(records.CorruptRecordsError, match=r"its shards hold 5 records \(test-00000-of-00002"
                                                          r".tfrecord: 3, test-00001-of-00002.tfrecord: 2\); "
                                                          r"5 of the 7"):
        _check(out)


@pytest.mark.parametrize("labels, needle", [((1, 0, 1), "record 0 has 3 labels where manifest.json names 2 "
                                                         "attributes"),
                                            ((1, 2), "record 0 has label value 2 (allowed: -1, 0, 1)")])
def test_records_that_do_not_fit_the_manifest(tmp_path, labels, needle):
    out = str(tmp_path)
    _write(out, counts=(2,), labels=labels)
    with pytest.raises(records.CorruptRecordsError) as info:
        _check(out)
    assert needle in str(info.value) and "0 of the 2 records" in str(info.value)
    assert "--allow_corrupt_records" not in str(info.value)  # nothing to go on with
    with pytest.raises(records.CorruptRecordsError):  # even when allowed: no usable record
        _check(out, allow=True)


def test_allowed_corrupt_records_are_counted_logged_and_skipped(tmp_path, caplog):
    out = str(tmp_path)
    _write(out)
    os.remove(os.path.join(out, "test-00001-of-00002.tfrecord"))
    with caplog.at_level(logging.WARNING):
        result = _check(out, allow=True)
    assert result.report() == {"expected": 5, "usable": 3, "missing": 2,
                               "problems": ["test-00001-of-00002.tfrecord is missing"]}
    assert "going on with 3 records" in caplog.text
    ds = make_dataset(out, "test", batch_size=2, image_size=(6, 4), allow_corrupt_records=True)
    assert sum(int(x.shape[0]) for x, _ in ds) == 3


def test_checked_once_per_run_for_repeated_pipelines(tmp_path, monkeypatch):
    out = str(tmp_path)
    _write(out)
    records.clear_cache()
    calls = []
    real = records._check
    monkeypatch.setattr(records, "_check", lambda *a: calls.append(a) or real(*a))
    for _ in range(3):  # a trainer builds its pipeline every epoch
        make_dataset(out, "test", batch_size=2, image_size=(6, 4), training=True, repeat=True, seed=0)
    assert len(calls) == 1
    # A shard that changes (size, mtime) is checked again.
    with tf.io.TFRecordWriter(os.path.join(out, "test-00001-of-00002.tfrecord")) as w:
        w.write(b"short")
    with pytest.raises(records.CorruptRecordsError):
        make_dataset(out, "test", batch_size=2, image_size=(6, 4))
    assert len(calls) == 2


def test_undecodable_image_in_a_well_formed_record_raises_one_line(tmp_path):
    out = str(tmp_path)
    _write(out, counts=(1,))
    with tf.io.TFRecordWriter(os.path.join(out, "test-00000-of-00001.tfrecord")) as w:
        w.write(example.build_example(encoded=b"\xff\xd8 not a jpeg", image_format="jpeg", filename="a.jpg",
                                      height=6, width=4, attributes=(1, 0)))
    ds = make_dataset(out, "test", batch_size=2, image_size=(6, 4))  # the count is right
    with pytest.raises(records.RecordReadError) as info:
        evaluation.collect_outputs(lambda x: {"logits": tf.zeros([tf.shape(x)[0], 2])}, ds,
                                   data_dir=out, split="test")
    line = str(info.value)
    assert line.startswith("a record of split 'test' of ") and "\n" not in line
    assert "function_node" not in line and "[Op:" not in line


def test_tf_error_line_drops_internals():
    error = tf.errors.InvalidArgumentError(None, None, "{{function_node __wrapped__ParseExampleV2_x}} "
                                           "Key: image/attributes. Can't parse [Op:ParseExampleV2] name: ")
    assert records.tf_error_line(error) == "Key: image/attributes. Can't parse"


@pytest.mark.parametrize("change, needle", [
    (lambda m: m.update(num_attributes=3), "num_attributes is 3 but 'attributes' lists 2 names"),
    (lambda m: m.update(attributes=["x", "x"]), "'attributes' names 'x' twice"),
    (lambda m: m["splits"]["test"].update(num_examples=-1), "split 'test' has num_examples -1"),
    (lambda m: m["splits"]["test"].update(positive_ratio=[0.5]), "positive_ratio of length 1 for 2"),
    (lambda m: m["splits"]["test"].pop("shards"), "split 'test' has no list of shard file names"),
])
def test_manifest_that_contradicts_itself(tmp_path, change, needle):
    manifest = _write(str(tmp_path))
    change(manifest)
    with open(tmp_path / "manifest.json", "w") as f:
        json.dump(manifest, f)
    with pytest.raises(ValueError) as info:
        read_manifest(str(tmp_path))
    assert needle in str(info.value) and "\n" not in str(info.value)
