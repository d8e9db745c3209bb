"""alm_tf.data.convert: bad rows, shards, determinism, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from alm_tf.data import example
from alm_tf.data.convert import StrictError, convert
from alm_tf.data.convert_config import ConvertConfig, parse_list_annotations, parse_splits
from tests.data.data_helpers import image_bytes, write_csv, write_image, write_truncated_jpeg


def _cfg(**kw):
    kw.setdefault("show_progress", False)
    return ConvertConfig(**kw)


def _read_records(out, split):
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    records = []
    for name in manifest["splits"][split]["shards"]:
        for raw in tf.data.TFRecordDataset(os.path.join(out, name)):
            ex = tf.train.Example.FromString(raw.numpy())
            records.append(ex.features.feature)
    return manifest, records


def _bad_rows_dataset(root):
    write_image(os.path.join(root, "ok.png"), seed=1)
    write_image(os.path.join(root, "ok2.jpg"), seed=2)
    write_image(os.path.join(root, "pic.bmp"), seed=3)
    write_truncated_jpeg(os.path.join(root, "trunc.jpg"))
    with open(os.path.join(root, "junk.png"), "wb") as f:
        f.write(b"\x89PNG not really")
    outside = os.path.join(os.path.dirname(root), "outside.png")
    write_image(outside)
    rows = [
        ["ok.png", "train", 1, 0],
        ["ok2.jpg", "test", 0, 1],
        ["pic.bmp", "train", 1, 1],
        ["missing.png", "train", 0, 0],     # missing file
        ["trunc.jpg", "train", 0, 0],       # truncated image
        ["junk.png", "train", 0, 0],        # unreadable image
        ["ok.png", "train", 1, 0],          # duplicate
        ["./ok.png", "test", 1, 0],         # duplicate (same normalized path)
        ["ok2.jpg", "train", 2, 0],         # label out of set (before the duplicate check)
        ["ok2.jpg", "train", "-2", 0],      # out of set (-1, 0, 1 are allowed)
        ["../outside.png", "train", 0, 0],  # escapes images_dir
        ["sub/../../outside.png", "val", 0, 0],  # escapes images_dir
        ["sub/../pic.bmp", "val", 0, 0],    # stays inside: a duplicate of pic.bmp
        [outside, "train", 0, 0],           # absolute
    ]
    path = write_csv(os.path.join(root, "ann.csv"), ["image", "split", "x", "y"], rows)
    with open(path, "a") as f:
        f.write("short.png,train,1\n")     # wrong label count
    return path


def test_every_bad_row_is_skipped_and_reported(tmp_path):
    root = str(tmp_path / "src")
    os.makedirs(root)
    ann = _bad_rows_dataset(root)
    out = str(tmp_path / "out")
    result = convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out))
    m = result.manifest
    assert m["splits"]["train"]["num_examples"] == 2 and m["splits"]["test"]["num_examples"] == 1
    assert m["splits"]["train"]["skipped_by_reason"] == {
        "duplicate image": 1, "label value out of set": 2, "missing file": 1,
        "path escapes images_dir": 2, "unreadable image": 2, "wrong label count": 1,
    }
    assert m["splits"]["test"]["skipped_by_reason"] == {"duplicate image": 1}
    assert m["splits"]["val"]["skipped_by_reason"] == {"duplicate image": 1, "path escapes images_dir": 1}
    assert m["num_skipped"] == 12 and result.num_written == 3
    reasons = {r["source"]: r["reason"] for r in m["splits"]["train"]["skipped"]}
    assert reasons["ann.csv:6"] == "unreadable image"  # The truncated JPEG.
    _, records = _read_records(out, "train")
    by_name = {r[example.FILENAME].bytes_list.value[0].decode(): r for r in records}
    assert set(by_name) == {"ok.png", "pic.bmp"}  # As the annotation wrote them.
    # JPEG/PNG bytes kept as found; BMP re-encoded losslessly as PNG.
    assert by_name["ok.png"][example.ENCODED].bytes_list.value[0] == open(os.path.join(root, "ok.png"), "rb").read()
    assert by_name["pic.bmp"][example.FORMAT].bytes_list.value[0] == b"png"
    assert list(by_name["pic.bmp"][example.ATTRIBUTES].int64_list.value) == [1, 1]
    assert by_name["ok.png"][example.HEIGHT].int64_list.value[0] == 8
    assert m["splits"]["train"]["positive_ratio"] == [1.0, 0.5]


def test_strict_fails_before_writing(tmp_path):
    root = str(tmp_path / "src")
    os.makedirs(root)
    ann = _bad_rows_dataset(root)
    out = str(tmp_path / "out")
    with pytest.raises(StrictError, match="12 bad row"):
        convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, strict=True))
    assert not os.path.exists(out)


def test_17_records_into_3_shards(tmp_path, csv17):
    root, ann = csv17
    out = str(tmp_path / "out")
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, num_shards=3))
    manifest, records = _read_records(out, "train")
    assert manifest["splits"]["train"]["shards"] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(os.path.join(out, s))) for s in manifest["splits"]["train"]["shards"]]
    assert sizes == [6, 6, 5]
    names = sorted(r[example.FILENAME].bytes_list.value[0].decode() for r in records)
    assert names == [f"img/{i:03d}.png" for i in range(17)]
    assert sorted(os.listdir(out)) == sorted(manifest["splits"]["train"]["shards"] + ["manifest.json"])


def _tree_bytes(out):
    return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))}


def test_same_input_same_bytes_and_rerun_is_safe(tmp_path, csv17):
    root, ann = csv17
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=a, num_shards=3))
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=b, num_shards=3, workers=2))
    assert _tree_bytes(a) == _tree_bytes(b)
    # Re-running into the same folder with other sharding replaces the old shards.
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=a, examples_per_shard=10))
    assert sorted(os.listdir(a)) == ["manifest.json", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]


def test_interrupted_conversion_leaves_no_finished_looking_shard(tmp_path, csv17, monkeypatch):
    root, ann = csv17
    out = str(tmp_path / "out")
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, num_shards=3))
    calls = {"n": 0}
    real = example.build_example

    def failing(**kw):
        calls["n"] += 1
        if calls["n"] > 8:
            raise KeyboardInterrupt("killed")
        return real(**kw)

    monkeypatch.setattr(example, "build_example", failing)
    with pytest.raises(KeyboardInterrupt):
        convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, num_shards=4))
    left = os.listdir(out)
    assert "manifest.json" not in left  # An unfinished conversion has no manifest,
    assert not any(n.endswith(".tmp") for n in left)
    assert not any(n.endswith("-of-00004.tfrecord") for n in left)  # and no new shard.
    monkeypatch.setattr(example, "build_example", real)
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, num_shards=4))
    assert sorted(os.listdir(out)) == ["manifest.json"] + [f"train-0000{i}-of-00004.tfrecord" for i in range(4)]


def test_split_selection_and_merging(tmp_path):
    root = str(tmp_path / "src")
    rows = []
    for i, split in enumerate(["train", "val", "test", "train"]):
        write_image(os.path.join(root, f"{i}.png"), seed=i)
        rows.append([f"{i}.png", split, i % 2])
    ann = write_csv(os.path.join(root, "a.csv"), ["image", "split", "x"], rows)
    out = str(tmp_path / "out")
    m = convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out,
                     splits=parse_splits(["trainval=train+val"]))).manifest
    assert list(m["splits"]) == ["trainval"] and m["splits"]["trainval"]["num_examples"] == 3
    assert m["ignored_rows_of_other_splits"] == {"test": 1}
    with pytest.raises(ValueError, match="'nope'"):
        convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=out, splits=parse_splits(["x=nope"])))


def test_alm_list_wrong_label_count(tmp_path):
    root = str(tmp_path)
    write_image(os.path.join(root, "a.jpg"))
    write_image(os.path.join(root, "b.jpg"), seed=2)
    (tmp_path / "test.txt").write_text("a.jpg " + "0 " * 26 + "\nb.jpg " + "1 " * 25 + "\n")
    m = convert(_cfg(format="alm_list", annotations=(("test", str(tmp_path / "test.txt")),),
                     schema="pa100k", images_dir=root, output_dir=str(tmp_path / "o"))).manifest
    assert m["splits"]["test"]["num_examples"] == 1
    assert m["splits"]["test"]["skipped"][0]["reason"] == "wrong label count"
    assert m["attributes"][0] == "Female"


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(format="nope"), "--format"),
        (dict(num_shards=0), "--num_shards"),
        (dict(num_shards=2, examples_per_shard=3), "only one"),
        (dict(partition=5), "--partition"),
        (dict(images_dir="/does/not/exist"), "/does/not/exist"),
        (dict(format="alm_list"), "--annotations"),
        (dict(format="alm_list", annotations=(("t", "x"),)), "--schema"),
    ],
)
def test_config_validation(tmp_path, kw, match):
    base = dict(format="csv", annotations="a.csv", images_dir=str(tmp_path), output_dir=str(tmp_path / "o"))
    base.update(kw)
    with pytest.raises(ValueError, match=match):
        ConvertConfig(**base)


def test_parsers():
    assert parse_list_annotations(["trainval=a.txt", "test=b.txt"]) == (("trainval", "a.txt"), ("test", "b.txt"))
    assert parse_splits(["trainval=train+val", "test"]) == (("trainval", ("train", "val")), ("test", ("test",)))
    for bad in (["a.txt"], ["=a.txt"], ["t=a", "t=b"]):
        with pytest.raises(ValueError):
            parse_list_annotations(bad)
    with pytest.raises(ValueError, match="bad split name"):
        parse_splits(["a/b"])


def test_image_bytes_helper_roundtrip():
    arr = tf.io.decode_png(image_bytes(5, 4)).numpy()
    assert arr.shape == (5, 4, 3) and arr.dtype == np.uint8


def test_same_bytes_in_another_process(tmp_path, csv17):
    """Protobuf map order may vary between processes: the writer must not."""
    root, ann = csv17
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    convert(_cfg(format="csv", annotations=ann, images_dir=root, output_dir=a, num_shards=2))
    code = (
        "from alm_tf.data.convert import convert; from alm_tf.data.convert_config import ConvertConfig; "
        f"convert(ConvertConfig(format='csv', annotations={ann!r}, images_dir={root!r}, "
        f"output_dir={b!r}, num_shards=2, show_progress=False))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, timeout=120)
    assert _tree_bytes(a) == _tree_bytes(b)
