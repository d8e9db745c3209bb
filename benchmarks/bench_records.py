"""Cost of counting a split's records against its manifest (alm_tf.data.records).

Synthetic pedestrians (alm-synth's generator, JPEG 80-240 px tall) are
converted once; the train shards are then copied `--copies` times under a
new manifest, so the split has `num_images * 0.7 * copies` records. Prints
the check's time (first call: a read of every shard; second call: the
per-process cache) and, for scale, the time of one epoch of the training
input pipeline over the same split (decode, resize 256x128, flip,
normalize, batch 32), with the ratio.

Usage:
  .venv/bin/python -m benchmarks.bench_records [--num_images=2000] [--copies=10] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from alm_tf.data import make_dataset, read_manifest, records, synth  # noqa: E402
from alm_tf.data.convert import convert  # noqa: E402
from alm_tf.data.convert_config import ConvertConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_images", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_records_")
    try:
        src, rec, big = (os.path.join(tmp, n) for n in ("synth", "records", "big"))
        synth.generate(synth.SynthConfig(output_dir=src, num_images=args.num_images))
        convert(ConvertConfig(format="csv", annotations=os.path.join(src, "annotations.csv"), images_dir=src,
                              output_dir=rec, workers=os.cpu_count() or 1, show_progress=False))
        manifest = read_manifest(rec)
        os.makedirs(big)
        shards = []
        for copy in range(args.copies):
            for name in manifest["splits"]["train"]["shards"]:
                new = f"train-{len(shards):05d}-copy{copy}.tfrecord"
                shutil.copyfile(os.path.join(rec, name), os.path.join(big, new))
                shards.append(new)
        count = manifest["splits"]["train"]["num_examples"] * args.copies
        manifest["splits"] = {"train": dict(manifest["splits"]["train"], num_examples=count, shards=shards)}
        with open(os.path.join(big, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        size = sum(os.path.getsize(os.path.join(big, s)) for s in shards)
        records.clear_cache()
        t0 = time.perf_counter()
        records.check_split(big, "train", manifest)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        records.check_split(big, "train", manifest)
        cached = time.perf_counter() - t0
        ds = make_dataset(big, "train", batch_size=32, image_size=(256, 128), training=True, seed=0)
        t0 = time.perf_counter()
        seen = sum(int(x.shape[0]) for x, _ in ds)
        epoch = time.perf_counter() - t0
        result = {"records": count, "shards": len(shards), "megabytes": round(size / 1e6, 1),
                  "check_s": round(first, 2), "check_records_per_s": round(count / first),
                  "cached_check_s": round(cached, 4), "epoch_input_s": round(epoch, 2),
                  "epoch_records": seen, "check_over_epoch": round(first / epoch, 3),
                  "cpus": os.cpu_count()}
        print(json.dumps(result, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
