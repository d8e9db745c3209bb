"""alm-export --format / --litert_precision / --calibration_*: errors and one real run."""

from __future__ import annotations

import os

import pytest

import mini_model as ph
from cli_helpers import run_main

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


def test_every_format_in_one_version_evaluates_and_predicts_like_the_saved_model(
        keras_file, tmp_path, capsys):
    """alm-export --format=saved_model,onnx,litert,openvino, then alm-evaluate and
    alm-predict through the one loader on each file: the same metrics report
    and predictions as the SavedModel's."""
    import csv

    import numpy as np

    import train_helpers as h
    from alm_tf import artifacts, evaluation, prediction
    from alm_tf.serving import formats as F
    from alm_tf.serving import runtimes

    out = tmp_path / "exported"
    code, stdout, err = _main([f"--model={keras_file}", f"--export_dir={out}",
                               "--format=saved_model,onnx,litert,openvino", "--noprogress"], capsys)
    assert code == 0, err
    version = out / "1"
    files = {"onnx": version / F.ONNX_FILE, "litert": version / F.LITERT_FILES["float32"],
             "openvino": version / F.OPENVINO_FILE}
    assert (version / "saved_model.pb").is_file() and all(p.is_file() for p in files.values())
    assert (version / F.METADATA_FILE).is_file() and str(version) in stdout
    assert sorted(os.listdir(out)) == ["1"]  # no staging folder left
    model = runtimes.open_portable(str(files["onnx"]))
    assert model.attributes == ph.ATTRIBUTES and model.metadata["model_version"] == 1

    data = str(tmp_path / "data")
    h.write_dataset(data, splits=(("test", 12),), num_shards=1, attributes=ph.ATTRIBUTES)
    reference = evaluation.run_evaluation(data, "test", str(version), str(tmp_path / "r_sm"))
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(ph.images(3, image_size=(80, 40)).astype(np.uint8)):
        from PIL import Image

        Image.fromarray(image).save(pictures / f"p{i}.png")
    paths = prediction.find_images(str(pictures))

    def predicted(model_path, name):
        predictor = prediction.load_image_predictor(str(model_path))
        result = prediction.predict_files(predictor, paths, str(tmp_path / name), pictures=False,
                                          progress=False)
        with open(result.csv_path, newline="") as f:
            return list(csv.DictReader(f)), result.outputs

    sm_rows, sm_out = predicted(version, "p_sm")
    sm_groups = artifacts.load(str(version)).groups.description()  # one SavedModel load, not three
    for kind, path in files.items():
        loaded = artifacts.load(str(path))
        assert loaded.kind == kind and loaded.attributes == ph.ATTRIBUTES and loaded.has_boxes
        assert loaded.groups.description() == sm_groups
        report = evaluation.run_evaluation(data, "test", str(path), str(tmp_path / f"r_{kind}"))
        for key in ("mA", "accuracy", "precision", "recall", "f1"):
            assert report[key] == pytest.approx(reference[key], abs=1e-6), (kind, key)
        rows, outputs = predicted(path, f"p_{kind}")
        np.testing.assert_allclose(outputs["probabilities"], sm_out["probabilities"], atol=1e-4)
        np.testing.assert_allclose(outputs["boxes"], sm_out["boxes"], atol=1e-4)
        assert [r["image"] for r in rows] == [r["image"] for r in sm_rows]
