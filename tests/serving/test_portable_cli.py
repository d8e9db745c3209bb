"""alm-export --format / --litert_precision / --calibration_*: errors and one real run."""

from __future__ import annotations

import importlib
import os

import pytest

import portable_helpers as ph

pytest.importorskip("tf2onnx")


def _main(args, capsys):
    from absl import flags
    from absl.testing import flagsaver

    module = importlib.import_module("pipelines.export")
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["alm-export", *args])
        try:
            module.main(["alm-export"])
            code = None
        except SystemExit as e:
            code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
    import json

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


def test_saved_model_and_onnx_in_one_version(keras_file, tmp_path, capsys):
    from alm_tf.serving import formats as F
    from alm_tf.serving import runtimes

    out = tmp_path / "exported"
    code, stdout, err = _main([f"--model={keras_file}", f"--export_dir={out}",
                               "--format=saved_model,onnx", "--noprogress"], capsys)
    assert code is None, err
    version = out / "1"
    assert (version / "saved_model.pb").is_file() and (version / F.ONNX_FILE).is_file()
    assert (version / F.METADATA_FILE).is_file() and str(version) in stdout
    assert sorted(os.listdir(out)) == ["1"]  # no staging folder left
    model = runtimes.open_portable(str(version / F.ONNX_FILE))
    assert model.attributes == ph.ATTRIBUTES and model.metadata["model_version"] == 1
