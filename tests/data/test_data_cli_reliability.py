"""Bad input and failures of alm-convert, alm-synth and alm-merge (main() under flagsaver):
one line and exit 1 on bad input, no output overwritten without --overwrite,
nothing stale after --overwrite, nothing half-written or lost after a failure."""

from __future__ import annotations

import json
import os

import pytest
import tensorflow as tf
from absl.testing import flagsaver
from PIL import Image

from pipelines import convert as convert_cli
from pipelines import merge as merge_cli
from pipelines import synth as synth_cli
from pipelines import synth_frames as frames_cli
from tests.data.data_helpers import csv_dataset, write_csv, write_image
from tests.data.merge_helpers import converted, write_mapping
from tests import disk_state


def _run(main, capsys, **flag_values):
    if main is not synth_cli.main:
        flag_values.setdefault("progress", False)
    with flagsaver.flagsaver(**flag_values):
        try:
            main(["prog"])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, capsys.readouterr()


def _error_line(code, captured, *needles):
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and "function_node" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _no_staging_left(parent):
    assert not [n for n in os.listdir(parent) if ".tmp-" in n]


def _convert(capsys, root, ann, out, **kw):
    return _run(convert_cli.main, capsys, format="csv", annotations=ann, images_dir=root, output_dir=out,
                workers=1, **kw)


@pytest.fixture
def two_splits(tmp_path):
    """root with 6 images: ann.csv (train 4, test 2) and train_only.csv (train 3)."""
    root = str(tmp_path / "src")
    rows = []
    for i in range(6):
        write_image(os.path.join(root, f"img/{i}.png"), seed=i)
        rows.append([f"img/{i}.png", "train" if i < 4 else "test", i % 2, 1 - i % 2])
    ann = write_csv(os.path.join(root, "ann.csv"), ["image", "split", "a", "b"], rows)
    only = write_csv(os.path.join(root, "train_only.csv"), ["image", "split", "a", "b"], rows[:3])
    return root, ann, only


def test_convert_refuses_a_folder_holding_a_conversion(tmp_path, two_splits, capsys):
    root, ann, only = two_splits
    out = str(tmp_path / "rec")
    assert _convert(capsys, root, ann, out)[0] == 0
    before = disk_state.snapshot(out)
    _error_line(*_convert(capsys, root, only, out), f"--output_dir {out!r} is not empty", "--overwrite")
    assert disk_state.snapshot(out) == before
    # --overwrite replaces the folder whole: no test shard of the first conversion stays.
    code, captured = _convert(capsys, root, only, out, overwrite=True)
    assert code == 0, captured.err
    assert sorted(os.listdir(out)) == ["manifest.json", "train-00000-of-00001.tfrecord"]
    assert list(json.load(open(os.path.join(out, "manifest.json")))["splits"]) == ["train"]
    assert f"{out}/manifest.json" in captured.out
    _no_staging_left(str(tmp_path))


def test_convert_failure_with_overwrite_leaves_the_old_conversion(tmp_path, two_splits, capsys):
    root, ann, _ = two_splits
    out = str(tmp_path / "rec")
    assert _convert(capsys, root, ann, out)[0] == 0
    before = disk_state.snapshot(out)
    bad = write_csv(os.path.join(root, "bad.csv"), ["image", "split", "a", "b"],
                    [["img/0.png", "train", 1, 0], ["img/nope.png", "train", 0, 1]])
    _error_line(*_convert(capsys, root, bad, out, overwrite=True, strict=True), "--strict", "missing file")
    assert disk_state.snapshot(out) == before
    _no_staging_left(str(tmp_path))


def test_convert_never_replaces_a_folder_holding_its_input(tmp_path, capsys):
    root = str(tmp_path / "src")
    ann = csv_dataset(root, n=3)
    _error_line(*_convert(capsys, root, ann, root, overwrite=True), "holds the input", "would delete it")
    assert len(os.listdir(os.path.join(root, "img"))) == 3


@pytest.mark.parametrize("case, needles", [
    ("folder_image", ("none of the 1 rows could be converted (unreadable image: 1)",
                      "(img is a folder, not an image)")),
    ("annotations_folder", ("CSV annotation file", "is a folder, not a file")),
    ("header_only", ("no annotated rows to convert",)),
    ("validation_split", ("split 'validation' is not one of train, trainval, val, test",
                          "--splits=train,validation")),
    ("empty_split", ("ann.csv:3: the split column is empty",)),
])
def test_convert_bad_input_names_the_real_problem(tmp_path, capsys, case, needles):
    root = str(tmp_path / "src")
    ann = csv_dataset(root, n=2)
    header = ["image", "split", "a", "b", "c"]
    rows = {"folder_image": [["img", "train", 0, 1, 0]], "header_only": [],
            "validation_split": [["img/000.png", "train", 0, 1, 0], ["img/001.png", "validation", 1, 0, 0]],
            "empty_split": [["img/000.png", "train", 0, 1, 0], ["img/001.png", "", 1, 0, 0]]}
    if case in rows:
        ann = write_csv(os.path.join(root, "ann.csv"), header, rows[case])
    if case == "annotations_folder":
        ann = root
    out = str(tmp_path / "rec")
    _error_line(*_convert(capsys, root, ann, out), *needles)
    assert not os.path.exists(out)
    _no_staging_left(str(tmp_path))


def test_a_folder_named_as_an_image_is_reported_as_a_folder(tmp_path, capsys):
    root = str(tmp_path / "src")
    ann = csv_dataset(root, n=2)
    with open(ann, "a") as f:
        f.write("img,train,0,1,0\n")
    out = str(tmp_path / "rec")
    assert _convert(capsys, root, ann, out)[0] == 0
    skipped = json.load(open(os.path.join(out, "manifest.json")))["splits"]["train"]["skipped"]
    assert [(s["reason"], s["detail"]) for s in skipped] == [("unreadable image", "img is a folder, not an image")]


def test_a_split_outside_the_known_ones_is_kept_when_named(tmp_path, capsys):
    root = str(tmp_path / "src")
    csv_dataset(root, n=2)
    ann = write_csv(os.path.join(root, "v.csv"), ["image", "split", "a"],
                    [["img/000.png", "train", 0], ["img/001.png", "validation", 1]])
    out = str(tmp_path / "rec")
    assert _convert(capsys, root, ann, out, splits=["train", "val=validation"])[0] == 0
    assert list(json.load(open(os.path.join(out, "manifest.json")))["splits"]) == ["train", "val"]


def test_synth_refuses_then_replaces_without_stale_images(tmp_path, capsys):
    out = str(tmp_path / "syn")
    assert _run(synth_cli.main, capsys, output_dir=out, num_images=6)[0] == 0
    before = disk_state.snapshot(out)
    _error_line(*_run(synth_cli.main, capsys, output_dir=out, num_images=3), "is not empty", "--overwrite")
    assert disk_state.snapshot(out) == before
    assert _run(synth_cli.main, capsys, output_dir=out, num_images=3, overwrite=True)[0] == 0
    assert len(os.listdir(os.path.join(out, "images"))) == 3
    _no_staging_left(str(tmp_path))


def test_merge_refuses_then_replaces(tmp_path, capsys):
    a = converted(str(tmp_path / "A"), ["hat", "plain"], {"train": 4, "test": 2}, seed=1)
    b = converted(str(tmp_path / "B"), ["bag", "box", "shoes"], {"train": 3}, seed=2)
    mapping = write_mapping(str(tmp_path / "map.json"))
    out = str(tmp_path / "m")
    args = dict(inputs=[f"a={a}", f"b={b}"], mapping=mapping, output_dir=out)
    assert _run(merge_cli.main, capsys, **args)[0] == 0
    before = disk_state.snapshot(out)
    _error_line(*_run(merge_cli.main, capsys, **args), "is not empty", "--overwrite")
    assert disk_state.snapshot(out) == before
    code, captured = _run(merge_cli.main, capsys, **dict(args, inputs=[f"b={b}"], overwrite=True))
    assert code == 0, captured.err
    assert not [n for n in os.listdir(out) if n.startswith("test-")]  # a's test split is gone
    _error_line(*_run(merge_cli.main, capsys, **dict(args, output_dir=a, overwrite=True)), "holds the input")
    _no_staging_left(str(tmp_path))


def test_convert_never_writes_inside_the_images_it_reads(tmp_path, capsys):
    """alm-synth D, then alm-convert --images_dir=D --output_dir=D/images --overwrite."""
    data = str(tmp_path / "D")
    assert _run(synth_cli.main, capsys, output_dir=data, num_images=4)[0] == 0
    before = disk_state.snapshot(data)
    for out in (os.path.join(data, "images"), os.path.join(data, "records")):
        _error_line(*_convert(capsys, data, os.path.join(data, "annotations.csv"), out, overwrite=True),
                    f"--output_dir {out!r} lies inside the input {data!r}")
    assert disk_state.snapshot(data) == before
    _no_staging_left(str(tmp_path))


class _FullDisk:
    """A TFRecordWriter whose writes fail as on a full disk."""

    def __init__(self, path, *args, **kwargs):
        open(path, "wb").close()

    def write(self, record):
        raise tf.errors.ResourceExhaustedError(None, None, "x.tfrecord.tmp; No space left on device")

    def close(self):
        self.write(b"")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_convert_on_a_full_disk_says_one_line_and_keeps_the_old_conversion(tmp_path, two_splits, capsys,
                                                                          monkeypatch):
    root, ann, only = two_splits
    out = str(tmp_path / "rec")
    assert _convert(capsys, root, ann, out)[0] == 0
    before = disk_state.snapshot(out)
    monkeypatch.setattr(tf.io, "TFRecordWriter", _FullDisk)
    _error_line(*_convert(capsys, root, only, out, overwrite=True), f"cannot write {out!r}",
                "No space left on device")
    assert disk_state.snapshot(out) == before
    _error_line(*_convert(capsys, root, only, str(tmp_path / "new" / "rec")), "No space left on device")
    assert not (tmp_path / "new").exists()
    _no_staging_left(str(tmp_path))


def test_a_dead_runs_staging_is_removed_with_a_line(tmp_path, two_splits, capsys):
    root, ann, _ = two_splits
    pid = disk_state.dead_pid()
    leftover = tmp_path / f".rec.tmp-{pid}-0badf00d"
    leftover.mkdir()
    (leftover / "train-00000-of-00001.tfrecord.tmp").write_bytes(b"half")
    code, captured = _convert(capsys, root, ann, str(tmp_path / "rec"))
    assert code == 0, captured.err
    assert f"removed {leftover}, left by process {pid} that is no longer running" in captured.err
    _no_staging_left(str(tmp_path))


def test_synth_frames_refuses_an_existing_sequence_and_replaces_it_whole(tmp_path, capsys, monkeypatch):
    seq = str(tmp_path / "seq")
    args = dict(output_dir=seq, num_frames=4, num_people=1, frame_height=96, frame_width=96)
    assert _run(frames_cli.main, capsys, **args)[0] == 0
    before = disk_state.snapshot(seq)
    _error_line(*_run(frames_cli.main, capsys, **dict(args, num_frames=2)), "is not empty", "--overwrite")
    assert disk_state.snapshot(seq) == before

    def full_disk(self, path, *a, **k):
        raise OSError(28, "No space left on device", path)

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "save", full_disk)
        _error_line(*_run(frames_cli.main, capsys, **dict(args, num_frames=2, overwrite=True)),
                    "No space left on device")
    assert disk_state.snapshot(seq) == before
    assert _run(frames_cli.main, capsys, **dict(args, num_frames=2, overwrite=True))[0] == 0
    assert sorted(os.listdir(os.path.join(seq, "img1"))) == ["000001.jpg", "000002.jpg"]
    _no_staging_left(str(tmp_path))
