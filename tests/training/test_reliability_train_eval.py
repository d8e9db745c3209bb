"""Issue 18 for alm-train, alm-evaluate and alm-predict: corrupt records counted
against the manifest, outputs never overwritten silently, resume refuses
changed settings, no half-made model dir, messages without internals."""

from __future__ import annotations

import csv
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alm_tf import artifacts
from alm_tf.config import ModelConfig
from alm_tf.data import records
from alm_tf.inference import images as prediction
from alm_tf.training import ConfigError, train
from tests.cli_helpers import run_main
from tests.training import train_helpers as h
from tests import disk_state


def _main(module_name, args, capsys):
    return run_main(module_name, args)

def _one_line(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "Traceback" not in err and "function_node" not in err and "0x" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _truncate(data_dir, shard):
    path = os.path.join(data_dir, shard)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Tiny data, a finished tiny run (model dir) and a .keras with its description."""
    data_dir = str(tmp_path_factory.mktemp("data"))
    h.write_dataset(data_dir)
    model_dir = str(tmp_path_factory.mktemp("run"))
    train(h.train_config(data_dir, model_dir, epochs=1, val_split="none"), model_builder=h.tiny_model)
    keras_file = os.path.join(str(tmp_path_factory.mktemp("k")), "tiny.keras")
    config = ModelConfig(num_attributes=3, image_height=64, image_width=32)
    artifacts.save_keras(h.tiny_model(config), keras_file, artifacts.keras_description(h.ATTRIBUTES, config))
    return data_dir, model_dir, keras_file


@pytest.fixture
def bad_data(run, tmp_path):
    """A copy of the data whose first test shard and first train shard are truncated."""
    data_dir = str(tmp_path / "bad")
    shutil.copytree(run[0], data_dir)
    _truncate(data_dir, "test-00000-of-00002.tfrecord")
    _truncate(data_dir, "train-00000-of-00002.tfrecord")
    records.clear_cache()
    return data_dir


# ------------------------------------------------------------------ alm-evaluate

def test_evaluate_corrupt_split_fails_and_writes_nothing(run, bad_data, tmp_path, capsys):
    out = str(tmp_path / "r")
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={bad_data}", f"--model={run[2]}",
                                                f"--output_dir={out}"], capsys)
    _one_line(code, err, "test-00000-of-00002.tfrecord is corrupt after", "of the 16 records manifest.json "
              "counts are usable", "--allow_corrupt_records")
    assert not os.path.exists(out)


def test_evaluate_allow_corrupt_records_counts_them_in_the_report(run, bad_data, tmp_path, capsys):
    out = str(tmp_path / "r")
    code, stdout, err = _main("pipelines.evaluate", [f"--data_dir={bad_data}", f"--model={run[2]}",
                                                     f"--output_dir={out}", "--allow_corrupt_records"], capsys)
    assert code == 0, err
    payload = json.load(open(os.path.join(out, "metrics.json")))
    report = payload["records"]
    assert report["expected"] == 16 and report["evaluated"] == payload["num_images"] < 16
    assert report["skipped"] == 16 - report["evaluated"]
    assert "test-00000-of-00002.tfrecord is corrupt" in report["problems"][0]
    assert f"evaluated {report['evaluated']} of the 16 records" in err  # and the log says so
    assert os.path.join(out, "per_attribute.csv") in stdout.strip().splitlines()[-1]


def test_evaluate_refuses_a_non_empty_output_and_overwrite_replaces_it(run, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "stale.csv").write_text("old")
    args = [f"--data_dir={run[0]}", f"--model={run[2]}", f"--output_dir={out}"]
    code, _, err = _main("pipelines.evaluate", args, capsys)
    _one_line(code, err, "is not empty", "--overwrite")
    assert os.listdir(out) == ["stale.csv"]
    code, stdout, err = _main("pipelines.evaluate", args + ["--overwrite"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["metrics.json", "per_attribute.csv"]
    assert json.load(open(out / "metrics.json"))["records"] == {"expected": 16, "evaluated": 16}
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={run[0]}", f"--model={run[1]}",
                                                f"--output_dir={run[1]}", "--overwrite"], capsys)
    _one_line(code, err, "holds the input")  # the model dir is never replaced


def test_tuned_thresholds_reach_the_model_dir_only_after_success(run, bad_data, tmp_path, capsys):
    model_dir = str(tmp_path / "m")
    shutil.copytree(run[1], model_dir)
    bad = str(tmp_path / "bad_test_only")
    shutil.copytree(run[0], bad)
    _truncate(bad, "test-00000-of-00002.tfrecord")
    records.clear_cache()
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={bad}", f"--model={model_dir}",
                                                f"--output_dir={tmp_path / 'r'}", "--tune_thresholds"], capsys)
    _one_line(code, err, "test-00000-of-00002.tfrecord")
    assert not os.path.exists(artifacts.thresholds_path(model_dir))


def test_evaluate_records_with_other_label_count_one_line(run, tmp_path, capsys):
    data_dir = str(tmp_path / "d")
    shutil.copytree(run[0], data_dir)
    path = os.path.join(data_dir, "test-00001-of-00002.tfrecord")
    raw = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    ex = tf.train.Example.FromString(raw[0])
    del ex.features.feature["image/attributes"].int64_list.value[-1]
    with tf.io.TFRecordWriter(path) as w:
        for record in [ex.SerializeToString()] + raw[1:]:
            w.write(record)
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={data_dir}", f"--model={run[2]}",
                                                f"--output_dir={tmp_path / 'r'}"], capsys)
    _one_line(code, err, "test-00001-of-00002.tfrecord: 1 of its 8 records are bad (first: record 0 has 2 "
              "labels where manifest.json names 3 attributes)")


def test_evaluate_text_file_named_keras(run, tmp_path, capsys):
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={run[0]}", f"--model={fake}",
                                                f"--output_dir={tmp_path / 'r'}"], capsys)
    _one_line(code, err, "is not a .keras file (not a zip archive)")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------- alm-train

def test_train_corrupt_records_fail_before_anything_is_written(bad_data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for model_dir in (tmp_path / "new", empty):
        code, _, err = _main("pipelines.train", [f"--data_dir={bad_data}", f"--model_dir={model_dir}",
                                                 "--image_height=64", "--image_width=32", "--batch_size=8"],
                             capsys)
        _one_line(code, err, "split 'train'", "train-00000-of-00002.tfrecord is corrupt after",
                  "of the 48 records")
    assert not (tmp_path / "new").exists() and not os.listdir(empty)


def test_train_fresh_run_needs_a_new_or_empty_folder(run, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = _main("pipelines.train", [f"--data_dir={run[0]}", f"--model_dir={tmp_path}"], capsys)
    _one_line(code, err, "model_dir is not empty and holds no run to resume")
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_train_resume_with_another_learning_rate_is_refused(run, capsys):
    data_dir, model_dir, _ = run
    config = open(artifacts.config_path(model_dir), "rb").read()
    final = os.stat(artifacts.weights_path(model_dir)).st_mtime_ns
    # the command of the run (train_helpers.train_config), with another learning rate
    code, _, err = _main("pipelines.train", [
        f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--image_height=64", "--image_width=32",
        "--batch_size=8", "--epochs=1", "--seed=1", "--val_split=none", "--learning_rate=0.02"], capsys)
    _one_line(code, err, "learning_rate differs from the run", "(0.01)", "--allow_changed_settings",
              "Received: learning_rate=0.02")
    assert open(artifacts.config_path(model_dir), "rb").read() == config
    assert os.stat(artifacts.weights_path(model_dir)).st_mtime_ns == final


def test_finished_run_rerun_writes_nothing(run):
    data_dir, model_dir, _ = run
    paths = [artifacts.config_path(model_dir), artifacts.weights_path(model_dir, "final"),
             artifacts.weights_path(model_dir, "best")]
    before = [os.stat(p).st_mtime_ns for p in paths]
    result = train(h.train_config(data_dir, model_dir, epochs=1, val_split="none"), model_builder=h.tiny_model)
    assert result.already_finished and result.step == 6
    assert [os.stat(p).st_mtime_ns for p in paths] == before


def test_allow_changed_settings_records_the_runs(run, tmp_path):
    data_dir = run[0]
    model_dir = str(tmp_path / "m")
    base = dict(epochs=1, val_split="none", steps_per_epoch=2)
    train(h.train_config(data_dir, model_dir, **base), model_builder=h.tiny_model)
    with pytest.raises(ConfigError, match="weight_decay differs .*--allow_changed_settings"):
        train(h.train_config(data_dir, model_dir, **dict(base, epochs=2, weight_decay=0.0)),
              model_builder=h.tiny_model)
    with pytest.raises(ConfigError, match="batch_size differs .* needs the same value. Received"):
        train(h.train_config(data_dir, model_dir, **dict(base, epochs=2, batch_size=4),
                             allow_changed_settings=True), model_builder=h.tiny_model)
    result = train(h.train_config(data_dir, model_dir, **dict(base, epochs=2), learning_rate=1e-3,
                                  allow_changed_settings=True), model_builder=h.tiny_model)
    assert result.step == 4
    saved = json.load(open(artifacts.config_path(model_dir)))
    assert saved["train"]["learning_rate"] == 1e-3
    assert saved["runs"] == [
        {"from_step": 0},
        {"from_step": 2, "changed": {"epochs": {"from": 1, "to": 2},
                                     "learning_rate": {"from": 0.01, "to": 0.001},
                                     "allow_changed_settings": {"from": False, "to": True}}}]


class _FailAt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise RuntimeError(f"failed at step {batch}")


@pytest.mark.parametrize("existing", [False, True])
def test_failed_fresh_run_leaves_no_half_made_model_dir(run, tmp_path, existing):
    model_dir = tmp_path / "m"
    if existing:
        model_dir.mkdir()
    with pytest.raises(RuntimeError, match="failed at step 1"):
        train(h.train_config(run[0], str(model_dir), epochs=1, val_split="none"), model_builder=h.tiny_model,
              callbacks=[_FailAt()])
    assert (os.listdir(model_dir) == []) if existing else not model_dir.exists()


def test_train_allow_corrupt_records(bad_data, tmp_path):
    model_dir = str(tmp_path / "m")
    result = train(h.train_config(bad_data, model_dir, epochs=1, steps_per_epoch=2, val_split="none",
                                  allow_corrupt_records=True), model_builder=h.tiny_model)
    assert result.step == 2 and result.skipped_records["train"]["usable"] < 48
    runs = json.load(open(artifacts.config_path(model_dir)))["runs"]
    assert runs[0]["skipped_records"]["train"]["expected"] == 48


# ------------------------------------------------------------------- alm-predict

def test_predict_refuses_non_empty_output_and_overwrite_leaves_no_stale_picture(run, tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (32, 64), (200, 10, 10)).save(images / "a.png")
    out = tmp_path / "v"
    (out / "pictures").mkdir(parents=True)
    (out / "pictures" / "old.png").write_bytes(b"old")
    args = [f"--model={run[2]}", f"--images={images}", f"--output_dir={out}", "--noprogress"]
    code, _, err = _main("pipelines.predict", args, capsys)
    _one_line(code, err, "is not empty", "--overwrite")
    assert os.listdir(out / "pictures") == ["old.png"]
    code, stdout, err = _main("pipelines.predict", args + ["--overwrite"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["predictions.csv", "predictions.jsonl"]  # no boxes: no pictures
    assert str(out / "predictions.csv") in stdout


def test_predict_a_non_image_named_jpg(run, tmp_path, capsys):
    fake = tmp_path / "photo.jpg"
    fake.write_text("hello")
    code, _, err = _main("pipelines.predict", [f"--model={run[2]}", f"--images={fake}",
                                               f"--output_dir={tmp_path / 'v'}", "--noprogress"], capsys)
    _one_line(code, err, f"cannot read {fake}: not an image file (JPEG, PNG, BMP, GIF or WebP)")
    assert "BytesIO" not in err and not (tmp_path / "v").exists()


def test_predictions_csv_says_which_picture_is_whose(tmp_path):
    paths = []
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (16, 32), (0, 0, 0)).save(tmp_path / folder / "a.png")
        paths.append(str(tmp_path / folder / "a.png"))
    names = list(h.ATTRIBUTES)

    def fn(encoded):
        n = len(encoded)
        boxes = np.tile(np.array([0.1, 0.1, 0.9, 0.9], np.float32), (n, 1, len(names), 1))
        return {"probabilities": np.full((n, len(names)), 0.7, np.float32),
                "labels": np.ones((n, len(names)), np.int32), "boxes": boxes}

    predictor = prediction.ImagePredictor(fn, names, "fake", "keras")
    result = prediction.predict_files(predictor, paths, str(tmp_path / "v"), progress=False)
    rows = list(csv.DictReader(open(result.csv_path)))
    assert [(r["image"], r["picture"]) for r in rows] == [(paths[0], "pictures/a.png"),
                                                          (paths[1], "pictures/a_2.png")]
    for row in rows:
        assert os.path.isfile(tmp_path / "v" / row["picture"])


# ------------------------------------------------------- outputs beside inputs, leftovers, umask

def test_train_and_evaluate_never_write_inside_their_inputs(run, capsys):
    data_dir, model_dir, _ = run
    before = sorted(os.listdir(data_dir)), sorted(os.listdir(model_dir))
    inside = os.path.join(data_dir, "run")
    code, _, err = _main("pipelines.train", [f"--data_dir={data_dir}", f"--model_dir={inside}"], capsys)
    _one_line(code, err, f"--model_dir {inside!r} lies inside the input {data_dir!r}")
    report = os.path.join(model_dir, "eval")
    code, _, err = _main("pipelines.evaluate", [f"--data_dir={data_dir}", f"--model={model_dir}",
                                                f"--output_dir={report}", "--overwrite"], capsys)
    _one_line(code, err, f"--output_dir {report!r} lies inside the input {model_dir!r}")
    assert (sorted(os.listdir(data_dir)), sorted(os.listdir(model_dir))) == before


def test_a_resume_removes_what_killed_runs_left(run, tmp_path, capsys):
    data_dir = run[0]
    model_dir = str(tmp_path / "m")
    shutil.copytree(run[1], model_dir)
    dead = disk_state.dead_pid()
    leftovers = [os.path.join(model_dir, "checkpoints", "ckpt-7_temp"),
                 os.path.join(model_dir, f".tmp-{dead}-00aa11bb.keras"),
                 os.path.join(model_dir, ".tmp-x1y2z3w4.keras")]
    os.makedirs(leftovers[0])
    open(os.path.join(leftovers[0], "part-00000-of-00001.data-00000-of-00001"), "wb").close()
    for path in leftovers[1:]:
        open(path, "wb").close()
    result = train(h.train_config(data_dir, model_dir, epochs=1, val_split="none"), model_builder=h.tiny_model)
    assert result.already_finished
    assert not [p for p in leftovers if os.path.exists(p)]
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("removed ")]
    assert len(said) == 3 and any(f"left by process {dead} that is no longer running" in s for s in said)


def test_keras_files_get_the_users_umask(run):
    umask = os.umask(0)
    os.umask(umask)
    _, model_dir, keras_file = run
    for path in (artifacts.weights_path(model_dir, "final"), artifacts.weights_path(model_dir, "best"),
                 keras_file):
        if os.path.exists(path):
            assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~umask), path
    assert os.path.exists(artifacts.weights_path(model_dir, "final"))
