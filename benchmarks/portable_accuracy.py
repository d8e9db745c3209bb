"""What the portable formats cost in accuracy: mA of each file vs the Keras model.

    python -m benchmarks.portable_accuracy --model=/tmp/p_demo/models/alm \
        --data_dir=/tmp/p_demo/records [--split=test] [--calibration_images=200]

Exports the model (a model dir or .keras file, `alm_tf.serving.export.load_source`)
to ONNX, LiteRT float32/float16/int8 (int8 calibrated on the training split of
--data_dir) and OpenVINO in a temp folder, runs every file and the Keras model
on the same pre-resized RGB 0..255 images of --split, and prints mA (at the
model's thresholds) and the largest probability difference to Keras.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np



def read_split(data_dir, split, image_size):
    """(images float32 (N, H, W, 3) RGB 0..255, labels (N, M)) as the input pipeline decodes them."""
    import tensorflow as tf

    from alm_tf.data import example, manifest as manifest_lib
    from alm_tf.preprocessing import pixels as preprocessing

    manifest = manifest_lib.read_manifest(data_dir)
    shards = [os.path.join(data_dir, s) for s in manifest["splits"][split]["shards"]]
    m = len(manifest["attributes"])

    def decode(serialized):
        features = example.parse_example(serialized, m)
        image = preprocessing.resize_images(preprocessing.decode_image(features[example.ENCODED]),
                                            *image_size)
        return image, features[example.ATTRIBUTES]

    images, labels = [], []
    for x, y in tf.data.TFRecordDataset(shards).map(decode).batch(64):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def batched(fn, images, batch=32):
    outs = [fn(images[i:i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate(outs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--calibration_images", type=int, default=200)
    args = parser.parse_args()

    import tensorflow as tf

    from alm_tf.evaluation import metrics
    from alm_tf.preprocessing import pixels as preprocessing
    from alm_tf.serving import export, litert, portable
    from alm_tf.artifacts import runtimes

    source = export.load_source(args.model)
    images, labels = read_split(args.data_dir, args.split, source.image_size)
    calibration = litert.load_calibration_images(args.data_dir, source.image_size,
                                                 args.calibration_images, progress=True)
    thresholds = np.asarray(source.thresholds)
    keras_probs = batched(lambda x: tf.sigmoid(source.model(
        preprocessing.normalize_images(x), training=False)["logits"]).numpy(), images)
    results = {"keras": keras_probs}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        files = portable.export_portable(
            source.model, source.attributes, source.thresholds, source.image_size, tmp,
            ["onnx", "litert", "openvino"], litert_precisions=["float16", "int8"],
            calibration_images=calibration, progress=True)
        print(f"export: {time.time() - start:.0f} s ({len(calibration)} calibration images)")
        for key, path in files.items():
            if key == "metadata":
                continue
            model = runtimes.open_portable(path)
            results[key] = batched(lambda x: model.predict(x)["probabilities"], images)
    print(f"split {args.split}: {len(images)} images, {labels.shape[1]} attributes")
    print("| model | mA | mA - keras (points) | max abs prob diff vs keras |")
    print("| --- | --- | --- | --- |")
    base = metrics.compute_metrics(labels, keras_probs, thresholds)["mA"]
    for key, probs in results.items():
        ma = metrics.compute_metrics(labels, probs, thresholds)["mA"]
        print(f"| {key} | {ma:.4f} | {100 * (ma - base):+.2f} | "
              f"{float(np.abs(probs - keras_probs).max()):.2e} |")


if __name__ == "__main__":
    main()
