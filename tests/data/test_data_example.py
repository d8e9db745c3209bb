"""The records' bytes without TensorFlow: `example.build_example` against
tf.train.Example's own serialization, `tfrecord.write_records` against
tf.io.TFRecordWriter, and a data-only import of the package."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import tensorflow as tf

import alm_tf
from alm_tf.data import example, tfrecord


def _tf_example(encoded, image_format, filename, height, width, attributes, source=None) -> bytes:
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    features = {example.ENCODED: b([encoded]), example.FORMAT: b([image_format.encode()]),
                example.FILENAME: b([filename.encode()]), example.HEIGHT: i([height]), example.WIDTH: i([width]),
                example.ATTRIBUTES: i(list(attributes))}
    if source is not None:
        features[example.SOURCE] = b([source.encode()])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def _cases(n: int):
    rng = random.Random(0)
    for _ in range(n):
        yield dict(encoded=rng.randbytes(rng.choice([0, 1, 127, 128, 300, 20_000])),
                   image_format=rng.choice(["jpeg", "png", ""]), filename=rng.choice(["a.jpg", "", "ü/ß.png", "x" * 200]),
                   height=rng.choice([0, 1, 127, 128, 1023, 1024, 2**31, 2**62]), width=rng.choice([1, 300, 16384]),
                   attributes=[rng.choice([-1, 0, 1, -2**63, 2**63 - 1, 1500]) for _ in range(rng.choice([0, 1, 26, 200]))],
                   source=rng.choice([None, "", "pa100k", "é"]))


def test_build_example_gives_tensorflows_bytes():
    for case in _cases(300):
        assert example.build_example(**case) == _tf_example(**case), case


def test_write_records_gives_tensorflows_file(tmp_path):
    records = [example.build_example(**case) for case in _cases(20)] + [b""]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    tfrecord.write_records(str(tmp_path / "ours.tfrecord"), records)
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()


def test_data_only_import_skips_keras():
    """What a Beam conversion worker imports: no TensorFlow, no Keras."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), alm_tf.DATA_ONLY_ENV: "1"}
    code = "import sys, alm_tf.beam.records; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_names_a_data_only_import_left_out_load_on_use():
    from alm_tf import model

    assert alm_tf.__getattr__("build_model") is model.build_model
    assert alm_tf.__getattr__("layers") is alm_tf.layers
    with pytest.raises(AttributeError, match="no_such_name"):
        alm_tf.__getattr__("no_such_name")
