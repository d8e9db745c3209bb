"""alm-export: main() under flagsaver (errors, and a real export of a
mixed-precision baseline model)."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from alm_tf import artifacts
from alm_tf.config import ModelConfig
from alm_tf.serving import export
from tests.cli_helpers import run_main
from tests.serving import serving_helpers as sh
from tests.training import train_helpers as th


def _main(args, capsys):
    return run_main("pipelines.export", args, "alm-export")

@pytest.mark.parametrize("args,needle", [
    (["--export_dir=E"], "--model_dir and --model"),
    (["--model_dir=M", "--model=K.keras", "--export_dir=E"], "--model_dir and --model"),
    (["--model_dir=/no/such/dir", "--export_dir=E"], "/no/such/dir"),
    (["--model=/no/such.keras", "--export_dir=E"], "/no/such.keras"),
    (["--model=weights.h5", "--export_dir=E"], "weights.h5"),
    (["--model_dir=M"], "--export_dir"),
    (["--model_dir=M", "--export_dir=E", "--version=0"], "--version must be >= 1. Received: 0"),
])
def test_bad_flags_one_line(args, needle, capsys):
    code, _, err = _main(args, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("alm-export: error:")


def test_existing_version_refused(exported, capsys):
    code, _, err = _main([f"--model_dir={exported.model_dir}",
                          f"--export_dir={exported.export_dir}", "--version=1"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "version 1 already exists" in lines[0]
    assert "--overwrite" in lines[0]


def test_missing_weights_one_line(exported, tmp_path, capsys):
    code, _, err = _main([f"--model_dir={exported.model_dir}", "--which=best",
                          f"--export_dir={tmp_path}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "best.keras does not exist" in lines[0]
    assert os.listdir(tmp_path) == []


def test_mixed_precision_baseline_export(tmp_path, capsys):
    """A model built in mixed_float16 serves float32 and, as a baseline, no boxes.

    The tiny model of the trainer tests (conv + batch norm + the output dict of
    a baseline): the float32 conversion is the same for every Keras layer."""
    names = ["a", "b", "c"]
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        mixed = th.tiny_model(ModelConfig(num_attributes=3, image_height=64, image_width=32,
                                          alm_levels=()))
        assert mixed.get_layer("conv1").compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model_dir = str(tmp_path / "model")
    sh.write_model_dir(model_dir, mixed, names)
    code, out, err = _main([f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'E'}"], capsys)
    assert code == 0, err
    assert "exported" in out and os.listdir(tmp_path / "E") == ["1"]
    loaded = tf.saved_model.load(str(tmp_path / "E" / "1"))
    assert set(loaded.signatures["serving_default"].structured_outputs) == {"probabilities", "labels"}

    # reference: the same weights in a float32 model (the .keras path's conversion)
    reference_model = artifacts.as_float32(keras.saving.load_model(os.path.join(model_dir, "final.keras")))
    assert all(layer.dtype_policy.compute_dtype == "float32" for layer in reference_model.layers)
    pictures = sh.images(2)
    expected = sh.reference(reference_model, pictures, thresholds=[0.5] * 3)
    result = loaded.signatures["serving_default"](
        image_bytes=tf.constant([sh.encode(x) for x in pictures]))
    assert result["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(result["probabilities"].numpy(), expected["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(result["labels"].numpy(), expected["labels"])
    meta = loaded.signatures["metadata"]()
    assert int(meta["num_levels"]) == 0 and meta["model_name"].numpy() == b"tiny"


def test_corrupt_weights_one_line(exported, tmp_path, capsys):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(os.path.join(exported.model_dir, "config.json"), model_dir / "config.json")
    (model_dir / "final.keras").write_bytes(b"not a zip file")
    code, _, err = _main([f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'E'}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "is not a .keras file (not a zip archive)" in lines[0], err
    assert not os.path.exists(tmp_path / "E")


def test_a_version_inside_the_model_dir_is_refused(exported, capsys):
    before = sorted(os.listdir(exported.model_dir))
    inside = os.path.join(exported.model_dir, "export")
    code, _, err = _main([f"--model_dir={exported.model_dir}", f"--export_dir={inside}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "lies inside the input" in lines[0], err
    assert sorted(os.listdir(exported.model_dir)) == before


@pytest.mark.parametrize("formats", ["saved_model", "saved_model,onnx"])
def test_a_full_disk_says_one_line_and_leaves_no_version(exported, tmp_path, capsys, monkeypatch, formats):
    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "tf_serving_warmup_requests; No space left on device")

    monkeypatch.setattr(export, "write_warmup", full_disk)
    target = tmp_path / "E"
    code, _, err = _main([f"--model_dir={exported.model_dir}", f"--export_dir={target}",
                          f"--format={formats}", "--noprogress"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err and "No space left on device" in lines[-1], err
    assert len(lines) == 1, err
    assert not target.exists()  # neither a version folder nor the export dir it made
