"""Peak memory of one request carrying a large image, per entry point.

Each measurement runs in a fresh process: it loads the model (and, for
`predict`, imports alm_tf), records its peak resident memory, sends one
request with a real solid JPEG of --size x --size pixels (low quality, so
the file is small while the decoded image is not), and records the peak
again (`resource.getrusage(RUSAGE_SELF).ru_maxrss`). Entry points:

  serving_default  the SavedModel's signature (what TF Serving runs)
  predict          alm_tf.inference.images.predict_files on the image file
                   (what alm-predict runs), a .keras model

The model is the tests' mini ALM model (alm_tf/testing/mini_model.py): the figures
are the image's cost, not the network's. It measures the checkout it is
run from (`python -m` imports that checkout's alm_tf; an older checkout
gives the figures before the header check).

Usage:
  .venv/bin/python -m benchmarks.bench_image_bomb [--size=12000] [--workdir=/tmp/bomb]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, os, resource, sys
import tensorflow as tf
kind, model, image = sys.argv[1:4]
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if kind == "serving_default":
    fn = tf.saved_model.load(model).signatures["serving_default"]
    before = peak()
    try:
        fn(image_bytes=tf.constant([open(image, "rb").read()]))
        answer = "answered"
    except tf.errors.InvalidArgumentError as e:
        lines = [line for line in e.message.splitlines() if "image of" in line] or [e.message]
        answer = "INVALID_ARGUMENT: " + lines[0].strip()[-100:]
else:
    from alm_tf import prediction
    predictor = prediction.load_image_predictor(model)
    before = peak()
    try:
        result = prediction.predict_files(predictor, [image], os.path.join(os.path.dirname(image), "out"),
                                          progress=False, pictures=False, report=lambda line: None)
        answer = "answered"
    except ValueError as e:
        answer = str(e)[-90:]
print(json.dumps({"kind": kind, "after_load_mb": round(before), "peak_mb": round(peak()), "answer": answer}))
"""


def _models(workdir: str) -> tuple[str, str]:
    """(SavedModel dir, model dir) of the mini ALM model, made once."""
    from alm_tf.serving import export

    from alm_tf.testing import mini_model as ph

    model_dir = os.path.join(workdir, "alm")
    if not os.path.isdir(model_dir):
        ph.write_model_dir(model_dir)
    saved = os.path.join(workdir, "export", "1")
    if not os.path.isdir(saved):
        export.export_saved_model(export.load_source(model_dir), os.path.join(workdir, "export"), 1)
    return saved, model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=12000)
    parser.add_argument("--workdir", default="/tmp/bench_image_bomb")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    from PIL import Image

    image = os.path.join(args.workdir, f"solid_{args.size}.jpg")
    if not os.path.isfile(image):
        Image.new("L", (args.size, args.size), 128).save(image, "JPEG", quality=10)
    saved, model_dir = _models(args.workdir)
    print(f"image: {args.size}x{args.size} JPEG, {os.path.getsize(image) / 1e6:.1f} MB")
    for kind, model in (("serving_default", saved), ("predict", model_dir)):
        out = subprocess.run([sys.executable, "-c", _CHILD, kind, model, image], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(json.dumps(json.loads(out)))


if __name__ == "__main__":
    main()
