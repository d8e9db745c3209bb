"""The exported SavedModel: signatures, parity with Keras, bad input, warmup, versions."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

import alm_tf
from alm_tf import artifacts
from alm_tf.serving import export
from tests import fresh_python
from tests.serving import serving_helpers as sh

ATOL = 1e-5
M = len(sh.ATTRIBUTES)


def _check(outputs, expected, boxes=True):
    assert outputs["probabilities"].dtype == np.float32
    assert outputs["labels"].dtype == np.int32
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], atol=ATOL)
    np.testing.assert_array_equal(outputs["labels"], expected["labels"])
    if boxes:
        assert outputs["boxes"].dtype == np.float32
        np.testing.assert_allclose(outputs["boxes"], expected["boxes"], atol=ATOL)
    else:
        assert "boxes" not in outputs


def _run(signature, **inputs):
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_layout(exported):
    assert os.path.basename(exported.saved_model) == "1"
    assert sorted(os.listdir(exported.export_dir)) == ["1"]  # no temp dir left
    with open(os.path.join(exported.saved_model, "assets", "attributes.txt")) as f:
        assert f.read() == "".join(f"{a}\n" for a in sh.ATTRIBUTES)
    assert os.path.isfile(os.path.join(exported.saved_model, export.WARMUP_FILE))


FRESH = r"""
import json, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
out = loaded.signatures["predict_images"](images=tf.constant(images))
meta = loaded.signatures["metadata"]()
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
with open(sys.argv[4], "w") as f:
    json.dump({"alm_tf_imported": any(m.startswith("alm_tf") for m in sys.modules),
               "attributes": [a.decode() for a in meta["attributes"].numpy()]}, f)
# Then what the `saved_model_cli` binary runs (its console script calls this main):
# its output is this process's stdout.
from tensorflow.python.tools.saved_model_cli import main
sys.argv = ["saved_model_cli", "show", "--dir", sys.argv[1], "--all"]
sys.exit(main())
"""


@pytest.fixture(scope="module")
def fresh_process(exported, tmp_path_factory):
    """One fresh Python process without alm_tf (fresh_python.py; one process for two
    tests): it loads the export and runs predict_images and metadata, then
    runs `saved_model_cli show --all` on it. Returns (its
    CompletedProcess, the images it was given, its outputs, its JSON)."""
    tmp_path = tmp_path_factory.mktemp("fresh")
    batch = np.stack(sh.images(2, sizes=((64, 32),))).astype(np.float32)
    np.save(tmp_path / "images.npy", batch)
    proc = fresh_python.run(
        ["-c", FRESH, exported.saved_model, str(tmp_path / "images.npy"),
         str(tmp_path / "out.npz"), str(tmp_path / "info.json")],
        timeout=180, cwd=str(tmp_path), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "info.json") as f:
        info = json.load(f)
    return proc, batch, dict(np.load(tmp_path / "out.npz")), info


def test_saved_model_cli_lists_signatures(fresh_process):
    proc = fresh_process[0]
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)(?=\nsignature_def\[|\nConcrete Functions|\Z)",
                             proc.stdout, re.S))
    assert set(sh.ATTRIBUTES) and {"serving_default", "predict_images", "predict_examples",
                                   "metadata"} <= set(blocks)

    def tensor(block, kind, name):
        m = re.search(rf"{kind}\['{name}'\] tensor_info:\s*dtype: (\w+)\s*shape: (\([^)]*\))", block)
        assert m, f"{kind} {name} missing in:\n{block}"
        return m.group(1), m.group(2)

    inputs = {"serving_default": ("image_bytes", "DT_STRING", "(-1)"),
              "predict_images": ("images", "DT_FLOAT", "(-1, -1, -1, 3)"),
              "predict_examples": ("examples", "DT_STRING", "(-1)")}
    for name, (input_name, dtype, shape) in inputs.items():
        assert tensor(blocks[name], "inputs", input_name) == (dtype, shape)
        assert tensor(blocks[name], "outputs", "probabilities") == ("DT_FLOAT", f"(-1, {M})")
        assert tensor(blocks[name], "outputs", "labels") == ("DT_INT32", f"(-1, {M})")
        assert tensor(blocks[name], "outputs", "boxes") == ("DT_FLOAT", f"(-1, 3, {M}, 4)")
    meta = blocks["metadata"]
    assert "inputs[" not in meta
    assert tensor(meta, "outputs", "attributes") == ("DT_STRING", f"({M})")
    assert tensor(meta, "outputs", "thresholds") == ("DT_FLOAT", f"({M})")
    assert tensor(meta, "outputs", "image_height") == ("DT_INT32", "()")


def test_fresh_process_without_alm_tf(exported, fresh_process):
    _, batch, out, info = fresh_process
    assert info == {"alm_tf_imported": False, "attributes": sh.ATTRIBUTES}
    _check(out, sh.reference(exported.model, list(batch.astype(np.uint8))))


def test_every_signature_equals_model_call(exported, loaded):
    pictures = sh.images(3)  # three sizes, none equal to the model's in the first
    png = [sh.encode(x) for x in pictures]
    jpeg = [sh.encode(x, "jpeg") for x in pictures]
    expected_png = sh.reference(exported.model, pictures)
    _check(_run(loaded.signatures["serving_default"], image_bytes=np.array(png, object)),
           expected_png)
    _check(_run(loaded.signatures["serving_default"], image_bytes=np.array(jpeg, object)),
           sh.reference(exported.model, sh.decoded(jpeg)))
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"]))}))
        .SerializeToString() for b in png]
    _check(_run(loaded.signatures["predict_examples"], examples=np.array(examples, object)),
           expected_png)
    for picture in pictures:  # predict_images: one size per call
        _check(_run(loaded.signatures["predict_images"], images=picture[None].astype(np.float32)),
               sh.reference(exported.model, [picture]))


def test_thresholds_and_metadata(exported, loaded):
    meta = {k: v.numpy() for k, v in loaded.signatures["metadata"]().items()}
    assert [a.decode() for a in meta["attributes"]] == sh.ATTRIBUTES
    np.testing.assert_allclose(meta["thresholds"], sh.THRESHOLDS)
    assert (int(meta["image_height"]), int(meta["image_width"])) == sh.INPUT_SHAPE[:2]
    assert int(meta["num_levels"]) == 3 and int(meta["model_version"]) == 1
    assert meta["project_version"].decode() == alm_tf.__version__
    # labels follow the per-attribute thresholds, not 0.5
    out = _run(loaded.signatures["serving_default"],
               image_bytes=np.array([sh.encode(x) for x in sh.images(6, seed=3)], object))
    np.testing.assert_array_equal(
        out["labels"], (out["probabilities"] > np.float32(sh.THRESHOLDS)).astype(np.int32))


def test_gray_rgba_converted(exported, loaded):
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, (50, 30, 1), dtype=np.uint8)
    rgba = rng.integers(0, 256, (70, 35, 4), dtype=np.uint8)
    encoded = np.array([tf.io.encode_png(gray).numpy(), tf.io.encode_png(rgba).numpy()], object)
    expected = sh.reference(exported.model, [np.repeat(gray, 3, -1), rgba[..., :3]])
    _check(_run(loaded.signatures["serving_default"], image_bytes=encoded), expected)


def _example(**features):
    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v])) for k, v in features.items()
    })).SerializeToString()


@pytest.mark.parametrize("signature,inputs,needle", [
    ("serving_default", {"image_bytes": [b"this is not an image"]}, "Unknown image file format"),
    ("serving_default", {"image_bytes": [b""]}, "empty image bytes"),
    ("serving_default", {"image_bytes": [b"\x89PNG\r\n\x1a\n" + b"\0" * 20]}, ""),
    ("predict_images", {"images": np.zeros((1, 0, 0, 3), np.float32)}, "zero height or width"),
    ("predict_images", {"images": np.zeros((2, 10, 0, 3), np.float32)}, "zero height or width"),
    ("predict_examples", {"examples": [_example(**{"image/format": b"png"})]}, "image/encoded"),
    ("predict_examples", {"examples": [_example(**{"image/encoded": b"xx"})]}, "image"),
    ("predict_examples", {"examples": [b"not a proto"]}, ""),
])
def test_bad_input_is_invalid_argument(loaded, signature, inputs, needle):
    inputs = {k: np.array(v, object) if isinstance(v, list) else v for k, v in inputs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _run(loaded.signatures[signature], **inputs)
    assert needle in info.value.message


def test_good_image_after_bad_one(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError):
        _run(loaded.signatures["serving_default"], image_bytes=np.array([b"x"], object))
    out = _run(loaded.signatures["serving_default"],
               image_bytes=np.array([sh.encode(sh.images(1)[0])], object))
    assert np.isfinite(out["probabilities"]).all()


def test_warmup_records_replay(exported, loaded):
    path = os.path.join(exported.saved_model, export.WARMUP_FILE)
    seen = {}
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        name = request.model_spec.signature_name
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = _run(loaded.signatures[name], **inputs)
        n = len(next(iter(inputs.values())))
        assert out["probabilities"].shape == (n, M) and np.isfinite(out["probabilities"]).all()
        seen.setdefault(name, []).append(n)
    assert seen == {"serving_default": list(export.WARMUP_BATCH_SIZES),
                    "predict_images": [1], "predict_examples": [1],
                    "predict_boxes": list(export.WARMUP_BATCH_SIZES)}


def test_refuses_existing_version(exported):
    source = export.load_source(exported.model_dir)
    with pytest.raises(export.ExportError, match="version 1 already exists"):
        export.export_saved_model(source, exported.export_dir, version=1)
    with pytest.raises(export.ExportError, match="version must be a positive integer"):
        export.export_saved_model(source, exported.export_dir, version=0)
    assert export.next_version(exported.export_dir) == 2


def test_failed_export_leaves_nothing(exported, tmp_path, monkeypatch):
    class FakeArchive:
        def write_out(self, path, verbose=False):
            os.makedirs(os.path.join(path, "variables"))
            # a full disk while the SavedModel is written

    def broken_warmup(path, size):
        raise OSError("disk full")

    monkeypatch.setattr(export, "build_archive", lambda source, version, *limits: FakeArchive())
    monkeypatch.setattr(export, "write_warmup", broken_warmup)
    source = export.load_source(exported.model_dir)
    target = tmp_path / "E"
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(source, str(target))
    assert not target.exists()  # neither a version folder nor the export dir it would have made
    target.mkdir()
    # with --overwrite, a failure keeps the old version as it was
    (target / "1").mkdir()
    (target / "1" / "saved_model.pb").write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(source, str(target), version=1, overwrite=True)
    assert os.listdir(target) == ["1"] and (target / "1" / "saved_model.pb").read_bytes() == b"old"


def test_overwrite_replaces_version(exported, tmp_path, monkeypatch):
    class FakeArchive:
        def write_out(self, path, verbose=False):
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "saved_model.pb"), "w") as f:
                f.write("new")

    monkeypatch.setattr(export, "build_archive", lambda source, version, *limits: FakeArchive())
    source = export.load_source(exported.model_dir)
    (tmp_path / "E" / "3").mkdir(parents=True)
    (tmp_path / "E" / "3" / "saved_model.pb").write_text("old")
    out = export.export_saved_model(source, str(tmp_path / "E"), version=3, overwrite=True)
    assert sorted(os.listdir(tmp_path / "E")) == ["3"]
    with open(os.path.join(out, "saved_model.pb")) as f:
        assert f.read() == "new"


def test_keras_file_needs_attribute_names(exported, tmp_path):
    path = tmp_path / "lonely.keras"
    shutil.copy(os.path.join(exported.model_dir, "final.keras"), path)
    with pytest.raises(export.ExportError, match="no attribute names"):
        export.load_source(str(path))
    (tmp_path / "lonely.attributes.txt").write_text("a\nb\nc\nd\n")  # an older file's sidecar
    source = export.load_source(str(path))
    assert source.attributes == ("a", "b", "c", "d") and source.thresholds == (0.5,) * 4
    assert source.image_size == sh.INPUT_SHAPE[:2]


@pytest.mark.parametrize("names,thresholds,needle", [
    (["a", "b", "c"], None, "3 attribute names for a model with 4"),
    (["a", "b", "", "d"], None, "non-empty"),
    (["a", "b", "c", "d"], [0.5, 0.5, 0.5], "3 thresholds for 4"),
    (["a", "b", "c", "d"], [0.5, 0.5, 0.5, 1.5], "thresholds must lie in [0, 1]"),
    (["a", "b", "c", "d"], [0.5, 0.5, 0.5, float("nan")], "thresholds must lie in [0, 1]"),
])
def test_names_and_thresholds_checked(names, thresholds, needle):
    with pytest.raises(artifacts.ModelSourceError) as info:
        artifacts.check_names_and_thresholds(names, thresholds, 4, "M")
    assert needle in str(info.value)


def test_evaluator_loads_the_export(exported):
    """The one loader reads SavedModels through predict_images + metadata."""
    loaded = artifacts.load(exported.saved_model)
    assert loaded.kind == "saved_model" and list(loaded.attributes) == sh.ATTRIBUTES
    assert loaded.image_size == sh.INPUT_SHAPE[:2]
    assert loaded.thresholds == pytest.approx(sh.THRESHOLDS)
    pictures = sh.images(2, sizes=((64, 32),))
    out = loaded.predict(np.stack(pictures).astype(np.float32))  # RGB 0..255 at the model size
    expected = sh.reference(exported.model, pictures)
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-4)
    np.testing.assert_array_equal(out["labels"], expected["labels"])


def test_no_xla_in_signatures(exported):
    """No function of the SavedModel asks for XLA (jit_compile) compilation."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(exported.saved_model, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    functions = proto.meta_graphs[0].graph_def.library.function
    assert functions
    for function in functions:
        attr = function.attr.get("_XlaMustCompile")
        assert attr is None or not attr.b, function.signature.name


def test_thresholds_for_other_attributes_refused(tmp_path):
    path = artifacts.thresholds_path(str(tmp_path))
    artifacts.write_json(path, {"attributes": ["x", "y"], "thresholds": [0.1, 0.2]})
    with pytest.raises(artifacts.ModelSourceError, match="tuned for other attributes"):
        artifacts.read_thresholds(str(tmp_path), ["a", "b"])
    artifacts.write_json(path, {"thresholds": {"a": 0.2, "b": 0.9}})
    assert artifacts.read_thresholds(str(tmp_path), ["a", "b"]) == [0.2, 0.9]
    with pytest.raises(artifacts.ModelSourceError, match="no threshold for attribute 'c'"):
        artifacts.read_thresholds(str(tmp_path), ["a", "c"])
