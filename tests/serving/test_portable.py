"""Portable exports (ONNX, LiteRT float32/float16/int8, OpenVINO) against the Keras model.

One `alm-export` run of a small ALM model (mini_model.mini_alm_model: the
real ALM head on a tiny backbone) to every format and precision at once
serves most tests: the files against the Keras model, and the version
folder through alm-evaluate's and alm-predict's loader (the conversions
take most of the time, so they are made once for both). The full
BN-Inception model is the slow test at the end.
"""

from __future__ import annotations

import csv
import json
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import alm_tf
from alm_tf import artifacts
from alm_tf.artifacts import formats as F
from alm_tf.artifacts import runtimes
from alm_tf.data import example
from alm_tf.evaluation import report as evaluation
from alm_tf.inference import images as prediction
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.serving import litert, portable
from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main
from tests.training import train_helpers as h

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("ai_edge_litert")

FLOAT32_TOLERANCE = 1e-4
#: float16 weights (float32 compute): measured ~1e-4 on these models.
FLOAT16_TOLERANCE = 2e-3
#: int8 inside, on a random-weight toy calibrated on 8 images (measured: max 0.08, mean 0.035);
#: the real accuracy cost is measured on the demo model (BUILD_NOTES.md).
INT8_MAX_TOLERANCE = 0.15
INT8_MEAN_TOLERANCE = 0.06

FLOAT32_KEYS = ("onnx", "litert_float32", "openvino")
VERSION = 7


@pytest.fixture(scope="module")
def mini():
    return ph.mini_alm_model()


@pytest.fixture(scope="module")
def keras_file(mini, tmp_path_factory):
    """`mini` as a .keras file carrying its names and (uneven) thresholds."""
    path = str(tmp_path_factory.mktemp("keras") / "mini.keras")
    artifacts.save_keras(mini, path, artifacts.keras_description(
        ph.ATTRIBUTES, thresholds=ph.THRESHOLDS, image_size=ph.IMAGE_SIZE))
    return path


@pytest.fixture(scope="module")
def exported(keras_file, tmp_path_factory):
    """`alm-export --format=saved_model,onnx,litert,openvino --litert_precision=float16,int8
    --version=7` of `keras_file`, int8 calibrated on the 8 images ph.images(8, seed=1)
    written as TFRecords: (version folder, {file key: path}, what
    portable.export_portable returned inside alm-export, alm-export's stdout)."""
    root = tmp_path_factory.mktemp("portable")
    calibration = root / "records"
    calibration.mkdir()
    _write_records(str(calibration), ["train"], pictures=ph.images(8, seed=1).astype(np.uint8))
    returned, convert = [], portable.export_portable

    def export_portable(*args, **kwargs):  # the real conversion; its answer kept
        returned.append(convert(*args, **kwargs))
        return returned[-1]

    out = root / "exported"
    with mock.patch.object(portable, "export_portable", export_portable):
        code, stdout, err = run_main("pipelines.export", [
            f"--model={keras_file}", f"--export_dir={out}", f"--version={VERSION}",
            "--format=saved_model,onnx,litert,openvino", "--litert_precision=float16,int8",
            f"--calibration_data={calibration}", "--calibration_images=8", "--noprogress"],
            "alm-export")
    assert code == 0, err
    assert len(returned) == 1
    version = out / str(VERSION)
    with open(version / F.METADATA_FILE) as f:
        files = {k: str(version / e["path"]) for k, e in json.load(f)["files"].items()}
    files["metadata"] = str(version / F.METADATA_FILE)
    return str(version), files, returned[0], stdout


def test_files_and_layout(exported):
    out, files, returned, _ = exported
    assert set(returned) == {"onnx", "litert_float32", "litert_float16", "litert_int8", "openvino",
                             "metadata"}
    assert set(files) == set(returned)
    for rel in (F.ONNX_FILE, *F.LITERT_FILES.values(), F.OPENVINO_FILE, "openvino/model.bin",
                F.METADATA_FILE, "saved_model.pb"):
        assert os.path.isfile(os.path.join(out, rel)), rel
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temp folder left
    assert sorted(os.listdir(os.path.dirname(out))) == [str(VERSION)]  # no staging folder left


def test_every_format_in_one_version_evaluates_and_predicts_like_the_saved_model(
        exported, tmp_path):
    """alm-export --format=saved_model,onnx,litert,openvino (the fixture), then alm-evaluate
    and alm-predict through the one loader on each file: the same metrics report
    and predictions as the SavedModel's."""
    version, all_files, _, stdout = exported
    files = {"onnx": all_files["onnx"], "litert": all_files["litert_float32"],
             "openvino": all_files["openvino"]}
    assert str(version) in stdout
    model = runtimes.open_portable(files["onnx"])
    assert model.attributes == ph.ATTRIBUTES and model.metadata["model_version"] == VERSION

    data = str(tmp_path / "data")
    h.write_dataset(data, splits=(("test", 12),), num_shards=1, attributes=ph.ATTRIBUTES)
    reference = evaluation.run_evaluation(data, "test", version, str(tmp_path / "r_sm"))
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(ph.images(3, image_size=(80, 40)).astype(np.uint8)):
        Image.fromarray(image).save(pictures / f"p{i}.png")
    paths = prediction.find_images(str(pictures))

    def predicted(model_path, name):
        predictor = prediction.load_image_predictor(str(model_path))
        result = prediction.predict_files(predictor, paths, str(tmp_path / name), pictures=False,
                                          progress=False)
        with open(result.csv_path, newline="") as f:
            return list(csv.DictReader(f)), result.outputs

    sm_rows, sm_out = predicted(version, "p_sm")
    sm_groups = artifacts.load(version).groups.description()  # one SavedModel load, not three
    for kind, path in files.items():
        loaded = artifacts.load(path)
        assert loaded.kind == kind and loaded.attributes == ph.ATTRIBUTES and loaded.has_boxes
        assert loaded.groups.description() == sm_groups
        report = evaluation.run_evaluation(data, "test", path, str(tmp_path / f"r_{kind}"))
        for key in ("mA", "accuracy", "precision", "recall", "f1"):
            assert report[key] == pytest.approx(reference[key], abs=1e-6), (kind, key)
        rows, outputs = predicted(path, f"p_{kind}")
        np.testing.assert_allclose(outputs["probabilities"], sm_out["probabilities"], atol=1e-4)
        np.testing.assert_allclose(outputs["boxes"], sm_out["boxes"], atol=1e-4)
        assert [r["image"] for r in rows] == [r["image"] for r in sm_rows]


@pytest.mark.parametrize("key", FLOAT32_KEYS)
@pytest.mark.parametrize("batch", [1, 3])
def test_float32_formats_equal_keras(exported, mini, key, batch):
    model = runtimes.open_portable(exported[1][key])
    images = ph.images(batch, seed=batch)
    want = ph.reference(mini, images)
    got = model.predict(images)
    assert set(got) == {"probabilities", "boxes"}
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], atol=FLOAT32_TOLERANCE, rtol=0)


def test_batch_sizes_change_between_calls(exported, mini):
    images = ph.images(4, seed=5)
    want = ph.reference(mini, images)["probabilities"]
    for key in FLOAT32_KEYS:
        model = runtimes.open_portable(exported[1][key])
        for n in (2, 4, 1):
            np.testing.assert_allclose(model.predict(images[:n])["probabilities"], want[:n],
                                       atol=FLOAT32_TOLERANCE, rtol=0, err_msg=key)


def test_float16_close_to_keras(exported, mini):
    images = ph.images(3, seed=2)
    want = ph.reference(mini, images)
    got = runtimes.open_portable(exported[1]["litert_float16"]).predict(images)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=FLOAT16_TOLERANCE, rtol=0)


def test_int8_takes_raw_uint8_pixels_and_is_close(exported, mini):
    path = exported[1]["litert_int8"]
    with open(path, "rb") as f:
        assert litert.input_quantization(f.read()) == (1.0, 0)
    model = runtimes.open_portable(path)
    assert model.input_dtype == np.uint8
    images = ph.images(6, seed=3)
    want = ph.reference(mini, images)["probabilities"]
    got = model.predict(images)
    assert got["probabilities"].shape == want.shape and got["boxes"].shape == (6, 3, 3, 4)
    difference = np.abs(got["probabilities"] - want)
    assert difference.max() < INT8_MAX_TOLERANCE and difference.mean() < INT8_MEAN_TOLERANCE


def test_no_flex_or_custom_ops_in_any_tflite(exported):
    for key in ("litert_float32", "litert_float16", "litert_int8"):
        with open(exported[1][key], "rb") as f:
            flatbuffer = f.read()
        assert litert.custom_operators(flatbuffer) == set(), key
        names = litert.operators(flatbuffer)
        assert "CONV_2D" in names and not any(n.startswith("Flex") for n in names), key


def test_custom_operators_detects_flex_ops():
    """The check above can fail: a graph with a TF-only op converted with SELECT_TF_OPS."""
    @tf.function(input_signature=[tf.TensorSpec([2, 2], tf.float32)])
    def fn(x):
        return tf.linalg.det(x)  # no builtin: becomes FlexMatrixDeterminant

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    flatbuffer = converter.convert()
    assert litert.custom_operators(flatbuffer) == {"FlexMatrixDeterminant"}
    assert "FlexMatrixDeterminant" in litert.operators(flatbuffer)


def test_onnx_graph_names_and_ops(exported):
    import onnx  # optional dependency: imported only where used

    graph = onnx.load(exported[1]["onnx"]).graph
    op_types = {node.op_type for node in graph.node}
    assert "GridSample" not in op_types and "Compress" not in op_types, sorted(op_types)
    assert [i.name for i in graph.input] == [F.INPUT_NAME]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value") and [d.dim_value for d in dims[1:]] == [64, 32, 3]
    assert sorted(o.name for o in graph.output) == [F.BOXES, F.PROBABILITIES]


def test_model_json(exported):
    out, files = exported[:2]
    with open(files["metadata"]) as f:
        meta = json.load(f)
    assert meta["attributes"] == list(ph.ATTRIBUTES)
    assert meta["thresholds"] == pytest.approx(ph.THRESHOLDS)
    assert meta["image_size"] == [64, 32] and meta["channel_order"] == "RGB"
    assert meta["model_version"] == 7 and meta["project_version"]
    assert meta["outputs"][F.PROBABILITIES]["shape"] == [None, 3]
    assert meta["outputs"][F.BOXES]["shape"] == [None, 3, 3, 4]
    described = preprocessing.description(64, 32)
    assert meta["preprocessing"]["outside_the_model"]["resize"] == described["resize"]
    assert meta["preprocessing"]["inside_the_model"]["normalization"] == described["normalization"]
    assert {e["path"] for e in meta["files"].values()} == {
        F.ONNX_FILE, F.OPENVINO_FILE, *F.LITERT_FILES.values()}
    assert meta["files"]["litert_int8"]["input_dtype"] == "uint8"


def test_runtime_object_surface(exported):
    model = runtimes.open_portable(exported[1]["openvino"])
    assert model.attributes == ph.ATTRIBUTES and model.image_size == (64, 32)
    assert model.format == "openvino" and model.metadata["model_version"] == 7
    np.testing.assert_allclose(model.thresholds, ph.THRESHOLDS)
    probabilities = np.array([[0.6, 0.2, 0.9], [0.4, 0.31, 0.7]])
    np.testing.assert_array_equal(model.labels(probabilities), [[1, 0, 1], [0, 1, 0]])
    with pytest.raises(runtimes.PortableModelError, match=r"\(N, 64, 32, 3\)"):
        model.predict(np.zeros((1, 32, 64, 3), np.float32))


def test_runtime_open_errors(exported, tmp_path):
    with pytest.raises(runtimes.PortableModelError, match="model.pb"):
        runtimes.open_portable(str(tmp_path / "model.pb"))
    with pytest.raises(runtimes.PortableModelError, match="no such model file"):
        runtimes.open_portable(str(tmp_path / "missing.onnx"))
    lonely = tmp_path / "model.onnx"
    lonely.write_bytes(open(exported[1]["onnx"], "rb").read())
    with pytest.raises(runtimes.PortableModelError, match="model.json"):
        runtimes.open_portable(str(lonely))


@pytest.mark.parametrize("formats, precisions, calibration, needle", [
    (["onnx", "tensorrt"], [], None, "'tensorrt'"),
    (["onnx"], ["float16"], None, "needs the litert format"),
    (["litert"], ["bfloat16"], None, "'bfloat16'"),
    (["litert"], ["int8"], None, "calibration"),
    (["saved_model"], [], None, "no portable format"),
])
def test_bad_requests_write_nothing(mini, tmp_path, formats, precisions, calibration, needle):
    with pytest.raises(portable.PortableExportError, match=needle):
        portable.export_portable(mini, ph.ATTRIBUTES, ph.THRESHOLDS, ph.IMAGE_SIZE,
                                 str(tmp_path / "out"), formats, litert_precisions=precisions,
                                 calibration_images=calibration)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_failed_conversion_leaves_no_file(mini, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise litert.ConversionError("simulated converter failure")

    monkeypatch.setattr(litert, "convert", broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(portable.PortableExportError, match="simulated"):
        portable.export_portable(mini, ph.ATTRIBUTES, ph.THRESHOLDS, ph.IMAGE_SIZE, str(out),
                                 ["litert"])
    assert sorted(os.listdir(out)) == ["keep.txt"]


def test_wrong_number_of_names(mini, tmp_path):
    with pytest.raises(portable.PortableExportError, match="2 attribute names"):
        portable.export_portable(mini, ["a", "b"], [0.5, 0.5], ph.IMAGE_SIZE, str(tmp_path),
                                 ["onnx"])


@pytest.mark.slow
def test_bn_inception_alm_all_formats(tmp_path):
    """The real model (BN-Inception, 64x32): every float32 format to 1e-4, float16, int8."""
    model = alm_tf.build_model(3, input_shape=(64, 32, 3))
    ph._randomize_statistics(model, 0)
    files = portable.export_portable(
        model, ph.ATTRIBUTES, ph.THRESHOLDS, ph.IMAGE_SIZE, str(tmp_path),
        ["onnx", "litert", "openvino"], litert_precisions=["float16", "int8"],
        calibration_images=ph.images(8, seed=1))
    images = ph.images(3, seed=4)
    want = ph.reference(model, images)
    for key, path in files.items():
        if key == "metadata":
            continue
        got = runtimes.open_portable(path).predict(images)
        tolerance = {"litert_float16": FLOAT16_TOLERANCE,
                     "litert_int8": INT8_MAX_TOLERANCE}.get(key, FLOAT32_TOLERANCE)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=tolerance, rtol=0,
                                       err_msg=f"{key} {name}")


def _write_records(root, splits, num_images=5, size=(40, 20), pictures=None):
    """A converter-like folder: one PNG-encoded shard per split and manifest.json.

    `pictures`: uint8 (N, H, W, 3) to write instead of `num_images` random ones of `size`."""
    if pictures is None:
        rng = np.random.RandomState(0)
        pictures = rng.randint(0, 256, (num_images, *size, 3)).astype(np.uint8)
    num_images, size = len(pictures), pictures.shape[1:3]
    manifest = {"dataset": "csv", "attributes": list(ph.ATTRIBUTES), "splits": {}}
    for split in splits:
        shard = f"{split}-00000-of-00001.tfrecord"
        with tf.io.TFRecordWriter(os.path.join(root, shard)) as writer:
            for i, picture in enumerate(pictures):
                writer.write(example.build_example(
                    encoded=tf.io.encode_png(picture).numpy(), image_format="png",
                    filename=f"{i}.png", height=size[0], width=size[1], attributes=[0, 1, 0]))
        manifest["splits"][split] = {"num_examples": num_images, "shards": [shard]}
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return pictures


def test_calibration_images_are_the_pipelines_pixels(tmp_path):
    pictures = _write_records(str(tmp_path), ["val", "trainval"])
    got = litert.load_calibration_images(str(tmp_path), ph.IMAGE_SIZE, 3)
    want = preprocessing.resize_images(pictures[:3], *ph.IMAGE_SIZE).numpy()
    assert got.shape == (3, 64, 32, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.clip(want, 0, 255), atol=1e-4)
    assert len(litert.load_calibration_images(str(tmp_path), ph.IMAGE_SIZE, 50)) == 5
    with pytest.raises(litert.ConversionError, match="positive int"):
        litert.load_calibration_images(str(tmp_path), ph.IMAGE_SIZE, 0)
    with pytest.raises(litert.ConversionError, match="manifest"):
        litert.load_calibration_images(str(tmp_path / "nothing"), ph.IMAGE_SIZE, 3)
