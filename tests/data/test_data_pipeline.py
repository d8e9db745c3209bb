"""make_dataset / read_manifest and the shared preprocessing."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tests.data.data_helpers import image_bytes, write_csv
from PIL import Image

from alm_tf.data import example, make_dataset, read_manifest
from alm_tf.preprocessing import pixels as preprocessing
from alm_tf.data.convert import convert
from alm_tf.data.convert_config import ConvertConfig

MEAN = np.array(preprocessing.IMAGENET_MEAN, np.float32)
STD = np.array(preprocessing.IMAGENET_STD, np.float32)


def _asymmetric_png(value: int, h: int = 8, w: int = 4) -> bytes:
    arr = np.full((h, w, 3), value, np.uint8)
    arr[:, : w // 2] = 255 - value  # Left half differs: a flip is visible.
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """12 train images (asymmetric, 8x4) in 1 shard and 17 eval in 3 shards."""
    root = tmp_path_factory.mktemp("pipe")
    rows = []
    for i in range(12):
        (root / f"t{i}.png").write_bytes(_asymmetric_png(10 * i))
        rows.append([f"t{i}.png", "train", i % 2, (i // 2) % 2])
    for i in range(17):
        (root / f"e{i}.png").write_bytes(image_bytes(6, 4, seed=i))
        rows.append([f"e{i}.png", "test", 1, i % 2])
    ann = write_csv(str(root / "a.csv"), ["image", "split", "x", "y"], rows)
    out = str(root / "rec")
    convert(ConvertConfig(format="csv", annotations=ann, images_dir=str(root), output_dir=out, num_shards=1, show_progress=False))
    out3 = str(root / "rec3")
    convert(ConvertConfig(format="csv", annotations=ann, images_dir=str(root), output_dir=out3, num_shards=3, show_progress=False))
    return out, out3


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_shapes_dtypes_normalization(records):
    out, _ = records
    ds = make_dataset(out, "train", batch_size=5, image_size=(16, 8))
    x, y = next(iter(ds))
    assert x.shape == (5, 16, 8, 3) and x.dtype == tf.float32
    assert y.shape == (5, 2) and y.dtype == tf.float32
    xs, ys = _collect(ds)
    assert xs.shape[0] == 12  # Evaluation keeps the last partial batch.
    # Image 1: right half value 10 -> normalized (10/255 - mean) / std.
    np.testing.assert_allclose(xs[1, :, -1], np.broadcast_to((10 / 255 - MEAN) / STD, (16, 3)), atol=1e-5)
    np.testing.assert_array_equal(ys[:4], [[0, 0], [1, 0], [0, 1], [1, 1]])
    assert read_manifest(out)["splits"]["train"]["num_examples"] == 12


def test_training_flip_mirrors_image_keeps_labels(records):
    out, _ = records
    ref_x, ref_y = _collect(make_dataset(out, "train", batch_size=4, image_size=(8, 4)))
    ds = make_dataset(out, "train", batch_size=4, image_size=(8, 4), training=True, seed=7, shuffle_buffer=1)
    x, y = _collect(ds)
    np.testing.assert_array_equal(y, ref_y)
    flipped = 0
    for a, b in zip(x, ref_x):
        same, mirrored = np.allclose(a, b), np.allclose(a, b[:, ::-1])
        assert same or mirrored
        flipped += mirrored and not same
    assert 0 < flipped < len(x)
    x2, _ = _collect(make_dataset(out, "train", batch_size=4, image_size=(8, 4), training=True, seed=7, shuffle_buffer=1))
    np.testing.assert_array_equal(x, x2)


def test_seeded_training_order_is_deterministic(records):
    _, out3 = records
    def run():
        return _collect(make_dataset(out3, "test", batch_size=4, image_size=(6, 4), training=True, seed=3))
    (x1, y1), (x2, y2) = run(), run()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape[0] == 16  # drop_remainder in training.
    repeated = make_dataset(out3, "test", batch_size=4, image_size=(6, 4), training=True, seed=3, repeat=True)
    assert len(list(repeated.take(10))) == 10


def test_input_context_shards_files_and_batch(records):
    _, out3 = records
    counts = []
    for pipeline_id in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)
        ds = make_dataset(out3, "test", batch_size=8, image_size=(6, 4), input_context=ctx)
        batches = list(ds)
        assert batches[0][0].shape[0] == 4  # Per-replica batch.
        counts.append(sum(b[0].shape[0] for b in batches))
    assert counts == [11, 6]  # Shards 0, 2 (6 + 5) and shard 1 (6).
    ctx = tf.distribute.InputContext(num_input_pipelines=4, input_pipeline_id=3, num_replicas_in_sync=4)
    assert sum(b[0].shape[0] for b in make_dataset(out3, "test", batch_size=8, image_size=(6, 4), input_context=ctx)) == 4


def test_corrupt_records_fail_by_default_and_are_dropped_when_allowed(tmp_path):
    out = str(tmp_path)
    good = dict(image_format="png", filename="g.png", height=6, width=4, attributes=[1, 0])
    path = os.path.join(out, "test-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(example.build_example(encoded=image_bytes(6, 4), **good))
        w.write(example.build_example(encoded=b"\xff\xd8 corrupt jpeg", **good))
        w.write(example.build_example(encoded=image_bytes(6, 4, seed=3), **dict(good, attributes=[0, 1])))
        w.write(b"not an example proto at all")
        w.write(example.build_example(encoded=image_bytes(6, 4), **dict(good, attributes=[1, 1, 1])))
    with tf.io.TFRecordWriter(path + ".part") as w:
        w.write(example.build_example(encoded=image_bytes(6, 4), **good))
    with open(path, "ab") as f:  # A truncated last record.
        f.write(open(path + ".part", "rb").read()[:-20])
    manifest = {"dataset": "t", "attributes": ["x", "y"],
                "splits": {"test": {"num_examples": 5, "shards": [os.path.basename(path)]}}}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    # The check counts without decoding: record 1 (a bad JPEG) passes it, records 3 (not a
    # proto), 4 (3 labels) and the truncated last one do not.
    with pytest.raises(ValueError, match=r"test-00000-of-00001.tfrecord is corrupt after 5 records "
                                         r"\(truncated record.*record 3 is not a tf.train.Example\); "
                                         r"3 of the 5 records"):
        make_dataset(out, "test", batch_size=2, image_size=(6, 4))
    _, y = _collect(make_dataset(out, "test", batch_size=2, image_size=(6, 4), allow_corrupt_records=True))
    np.testing.assert_array_equal(y, [[1, 0], [0, 1]])


def test_manifest_not_matching_records_fails_early(records, tmp_path):
    out, _ = records
    manifest = read_manifest(out)
    manifest["attributes"], manifest["num_attributes"] = ["only_one"], 1
    for entry in manifest["splits"].values():  # a manifest consistent in itself, not with its shards
        entry["positive_ratio"] = entry["positive_ratio"][:1]
    for name in manifest["splits"]["train"]["shards"]:
        shutil.copy(os.path.join(out, name), tmp_path / name)  # a shard must lie inside its data folder
    with open(tmp_path / "manifest.json", "w") as f:
        json.dump(manifest, f)
    with pytest.raises(ValueError, match=r"train-00000-of-0000\d.tfrecord: \d+ of its \d+ records are bad "
                                         r"\(first: record 0 has \d labels where manifest.json names 1 "
                                         r"attributes\)"):
        make_dataset(str(tmp_path), "train", batch_size=2, repeat=True)


def test_errors(records, tmp_path):
    out, _ = records
    with pytest.raises(ValueError, match="'nope'"):
        make_dataset(out, "nope", batch_size=2)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(str(tmp_path))
    with pytest.raises(ValueError, match="image_size"):
        make_dataset(out, "train", batch_size=2, image_size=(0, 4))


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "L"), ("PNG", "RGBA"), ("JPEG", "L")])
def test_decode_image_formats(fmt, mode):
    image = preprocessing.decode_image(image_bytes(7, 5, fmt, mode))
    assert image.shape == (7, 5, 3) and image.dtype == tf.uint8


def test_decode_rgba_drops_alpha_and_gray_replicates():
    rgba = np.zeros((3, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    np.testing.assert_array_equal(preprocessing.decode_image(buf.getvalue())[..., 0], 200)
    gray = preprocessing.decode_image(image_bytes(4, 4, "PNG", "L")).numpy()
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


@pytest.mark.parametrize("data", [b"", b"garbage bytes", image_bytes(8, 8, "JPEG")[:40]])
def test_decode_invalid_raises_invalid_argument(data):
    fn = tf.function(preprocessing.decode_image, input_signature=[tf.TensorSpec([], tf.string)])
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(tf.constant(data))
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.decode_image(data)


def test_preprocess_in_tf_function_with_unknown_shapes():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def serve(images):
        return preprocessing.preprocess_images(images, 16, 8)

    out = serve(tf.fill([2, 9, 5, 3], 255.0))
    assert out.shape == (2, 16, 8, 3)
    np.testing.assert_allclose(out[0, 0, 0], (1 - MEAN) / STD, atol=1e-5)
    resized = preprocessing.resize_images(np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1), 4, 4)
    np.testing.assert_allclose(resized[0, :, 0, 0], [0.0, 0.5, 1.5, 2.0])  # Half-pixel bilinear.


def _textured(height, width, seed=0):
    """Stripes, a fine checkerboard and noise: what a naive resize aliases."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(np.sin(x * 1.3) + 1) * 127.5, ((y // 3 + x // 2) % 2) * 255.0,
                     rng.integers(0, 256, (height, width))], -1).astype(np.uint8)


@pytest.mark.parametrize("source", [(750, 450), (512, 256), (400, 160), (300, 130), (100, 50),
                                    (37, 19)])
def test_resize_matches_pillow_bilinear_within_one_level(source):
    """The official pipeline resizes PIL images (BILINEAR, antialiased when
    shrinking): ours agrees within 1/255, shrinking from 750x450 and
    enlarging from 100x50."""
    image = _textured(*source)
    pil = np.asarray(Image.fromarray(image).resize((128, 256), Image.BILINEAR), np.float32)
    ours = preprocessing.resize_images(tf.constant(image), 256, 128).numpy()
    assert np.abs(ours - pil).max() <= 1.0
    if source[0] > 256:  # the negative control: without antialiasing it is far off
        naive = tf.image.resize(tf.cast(image, tf.float32), (256, 128), antialias=False).numpy()
        assert np.abs(naive - pil).max() > 40
