"""A model dir knows its data and has one writer: a resume on other data is
refused by name, and a second alm-train on the same model dir is refused
while the first runs (a lock left by a dead run is taken over)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.training import train_helpers as h
from alm_tf import artifacts
from alm_tf.training import ConfigError, lock, train
from tests.cli_helpers import run_main
from tests import disk_state

_BASE = dict(epochs=1, steps_per_epoch=2, val_split="none")


def _cli_args(data_dir, model_dir, epochs=1):
    """The command of a run of `_BASE` (train_helpers.train_config) with the tiny data's sizes."""
    return [f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--image_height=64", "--image_width=32",
            "--batch_size=8", f"--epochs={epochs}", "--steps_per_epoch=2", "--seed=1", "--val_split=none",
            "--learning_rate=0.01", "--noprogress"]


def _one_line(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two data sets of equal sizes and attributes (other images) and a finished run on the first."""
    first, second = (str(tmp_path_factory.mktemp(n)) for n in ("p0", "p1"))
    h.write_dataset(first, seed=0)
    h.write_dataset(second, seed=7)
    model_dir = str(tmp_path_factory.mktemp("runs") / "p0")
    train(h.train_config(first, model_dir, **_BASE), model_builder=h.tiny_model)
    return first, second, model_dir


def test_the_run_records_the_fingerprint_of_what_it_read(run):
    saved = json.load(open(artifacts.config_path(run[2])))["data"]["fingerprint"]
    assert list(saved["splits"]) == ["train"] and saved["splits"]["train"]["num_examples"] == 48
    assert [s["name"] for s in saved["splits"]["train"]["shards"]] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert all(len(s["sha256"]) == 64 and s["size"] > 0 for s in saved["splits"]["train"]["shards"])
    assert not os.path.exists(os.path.join(run[2], lock.LOCK_NAME))  # released at the end


def test_resume_on_other_data_of_equal_sizes_is_refused_by_name(run):
    first, second, model_dir = run
    before = disk_state.snapshot(model_dir)
    code, _, err = run_main("pipelines.train", _cli_args(second, model_dir, epochs=2))
    _one_line(code, err, f"the data in {second} is not the data of the run in model_dir {model_dir}",
              "shard train-00000-of-00002.tfrecord of split 'train' has other content")
    assert disk_state.snapshot(model_dir) == before


def test_a_run_from_before_fingerprints_resumes_and_records_one(run, tmp_path):
    first, second, _ = run
    model_dir = str(tmp_path / "old")
    train(h.train_config(first, model_dir, **_BASE), model_builder=h.tiny_model)
    config = json.load(open(artifacts.config_path(model_dir)))
    del config["data"]["fingerprint"]
    artifacts.write_json(artifacts.config_path(model_dir), config)
    result = train(h.train_config(first, model_dir, **dict(_BASE, epochs=2)), model_builder=h.tiny_model)
    assert result.step == 4
    assert json.load(open(artifacts.config_path(model_dir)))["data"]["fingerprint"]["splits"]["train"]
    with pytest.raises(ConfigError, match="has other content"):
        train(h.train_config(second, model_dir, **dict(_BASE, epochs=3)), model_builder=h.tiny_model)


# ------------------------------------------------------------------------ the lock

def _write_lock(model_dir, pid, host=None):
    with open(os.path.join(model_dir, lock.LOCK_NAME), "w") as f:
        json.dump({"pid": pid, "host": host or socket.gethostname()}, f)


@pytest.mark.parametrize("host, why", [(None, "still running"), ("elsewhere", "another host")])
def test_second_writer_is_refused_naming_the_holder(run, host, why):
    first, _, model_dir = run
    _write_lock(model_dir, os.getpid(), host)
    try:
        before = disk_state.snapshot(model_dir)
        code, _, err = run_main("pipelines.train", _cli_args(first, model_dir, epochs=2))
        _one_line(code, err, f"model_dir {model_dir} is in use by another alm-train "
                  f"(pid {os.getpid()} on host {host or socket.gethostname()}, {why})",
                  f"remove {os.path.join(model_dir, lock.LOCK_NAME)}")
        assert disk_state.snapshot(model_dir) == before  # the holder's lock file too
    finally:
        os.remove(os.path.join(model_dir, lock.LOCK_NAME))


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_line(run, tmp_path, caplog):
    first = run[0]
    model_dir = str(tmp_path / "m")
    os.makedirs(model_dir)
    dead = disk_state.dead_pid()
    _write_lock(model_dir, dead)
    with caplog.at_level(logging.WARNING):
        result = train(h.train_config(first, model_dir, **_BASE), model_builder=h.tiny_model)
    assert result.step == 2
    assert f"taking over the stale lock of pid {dead} on host {socket.gethostname()}" in caplog.text
    assert not os.path.exists(os.path.join(model_dir, lock.LOCK_NAME))


class _Fail(Exception):
    pass


def test_the_lock_is_released_on_errors(run, tmp_path):
    model_dir = str(tmp_path / "m")
    with pytest.raises(_Fail):
        with lock.held(model_dir):
            assert os.path.isfile(os.path.join(model_dir, lock.LOCK_NAME))
            raise _Fail()
    assert os.listdir(model_dir) == []


_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("model_dir_lock", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
with module.held(sys.argv[2]):
    open(sys.argv[3], "w").close()
    time.sleep(120)
"""


def test_a_real_second_process_is_refused_then_its_lock_taken_over_once_killed(tmp_path):
    model_dir, ready = str(tmp_path / "m"), str(tmp_path / "ready")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, lock.__file__, model_dir, ready])
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.05)
        with pytest.raises(lock.LockedError, match=f"in use by another alm-train \\(pid {holder.pid} on host "):
            with lock.held(model_dir):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file stays
        holder.wait()
    said = []
    with lock.held(model_dir, say=said.append):
        record = json.load(open(os.path.join(model_dir, lock.LOCK_NAME)))
        assert record == {"pid": os.getpid(), "host": socket.gethostname()}
    assert said == [f"model_dir {model_dir}: taking over the stale lock of pid {holder.pid} on host "
                    f"{socket.gethostname()} (that process is gone)"]
    assert os.listdir(model_dir) == []


def test_resume_with_edited_positive_ratios_is_refused(run, tmp_path):
    first, _, model_dir = run
    edited = str(tmp_path / "edited")
    shutil.copytree(first, edited)
    manifest = json.load(open(os.path.join(edited, "manifest.json")))
    manifest["splits"]["train"]["positive_ratio"][0] = 0.125
    with open(os.path.join(edited, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    before = disk_state.snapshot(model_dir)
    with pytest.raises(ConfigError, match="the positive_ratio of split 'train' in its manifest.json differs"):
        train(h.train_config(edited, model_dir, **dict(_BASE, epochs=2)), model_builder=h.tiny_model)
    assert disk_state.snapshot(model_dir) == before


def test_a_manifest_naming_a_shard_outside_the_data_folder_stops_alm_train_before_anything(run, tmp_path):
    data_dir = str(tmp_path / "data")
    shutil.copytree(run[0], data_dir)
    manifest = json.load(open(os.path.join(data_dir, "manifest.json")))
    manifest["splits"]["train"]["shards"][1] = "/etc/passwd"
    with open(os.path.join(data_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    model_dir = tmp_path / "m"
    code, _, err = run_main("pipelines.train", _cli_args(data_dir, model_dir))
    _one_line(code, err, "manifest.json: split 'train' lists shard '/etc/passwd', not a path inside the data folder")
    assert not model_dir.exists()


def test_a_model_dir_that_is_a_file_is_named(run, tmp_path):
    model_dir = tmp_path / "file"
    model_dir.write_text("mine")
    code, _, err = run_main("pipelines.train", _cli_args(run[0], model_dir))
    _one_line(code, err, f"model_dir exists and is not a folder. Received: model_dir='{model_dir}'")
    assert model_dir.read_text() == "mine"
