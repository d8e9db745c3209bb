"""alm-export --format / --litert_precision / --calibration_*: errors.

The real run (every format in one version, then alm-evaluate and
alm-predict on each file) is test_portable.py's: its conversions are the
ones that file checks against the Keras model."""

from __future__ import annotations

import json
import os

import pytest

from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main

pytest.importorskip("tf2onnx")


def _main(args, capsys):
    return run_main("pipelines.export", args, "alm-export")

@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """The mini ALM model as a .keras file with its attribute sidecar."""
    root = tmp_path_factory.mktemp("cli")
    path = os.path.join(root, "mini.keras")
    ph.mini_alm_model().save(path)
    with open(os.path.join(root, "mini.attributes.txt"), "w") as f:
        f.write("".join(f"{a}\n" for a in ph.ATTRIBUTES))
    return path


@pytest.mark.parametrize("extra, needle", [
    (["--format=onnx,tensorrt"], "'tensorrt'"),
    (["--format=onnx", "--litert_precision=float16"], "--litert_precision=float16 needs --format"),
    (["--format=litert", "--litert_precision=int4"], "'int4'"),
    (["--format=litert", "--litert_precision=int8"], "needs --calibration_data"),
    (["--format=litert", "--calibration_data=/x"], "applies to --litert_precision=int8 only"),
    (["--format=litert", "--litert_precision=int8", "--calibration_data=/no/such/dir"],
     "/no/such/dir"),
    (["--format=litert", "--litert_precision=int8", "--calibration_data=/tmp",
      "--calibration_images=0"], "--calibration_images must be >= 1. Received: 0"),
])
def test_bad_flags_one_line(keras_file, tmp_path, extra, needle, capsys):
    code, _, err = _main([f"--model={keras_file}", f"--export_dir={tmp_path}", *extra], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("alm-export: error:")
    assert os.listdir(tmp_path) == []


def test_calibration_dir_without_training_split(keras_file, tmp_path, capsys):
    records = tmp_path / "records"
    records.mkdir()
    (records / "manifest.json").write_text(json.dumps({
        "dataset": "csv", "attributes": list(ph.ATTRIBUTES),
        "splits": {"test": {"num_examples": 1, "shards": ["test-00000-of-00001.tfrecord"]}}}))
    out = tmp_path / "out"
    code, _, err = _main([f"--model={keras_file}", f"--export_dir={out}", "--format=litert",
                          "--litert_precision=int8", f"--calibration_data={records}"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "no train or trainval split" in lines[0], err
    assert "test" in lines[0] and not out.exists()
