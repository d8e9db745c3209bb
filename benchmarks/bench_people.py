"""People in a frame: per-person latency of predict_boxes vs K crop requests.

The full ALM model (BN-Inception, 256x128, PA-100K's 26 attributes, random
weights) is exported with `alm_tf.serving.export` and loaded with
`tf.saved_model.load`. One 1280x720 JPEG frame holds K people (K = 1, 8,
32; person boxes about 90x220 px). For each K, timed in alternation (so
that drifting CPU load hits every method alike), per call and per person:

  boxes_frames   one predict_boxes call: the frame once, K boxes, indices
                 (the layout for servers without batching)
  boxes_rows     one predict_boxes call in the row layout (the frame's bytes
                 repeated per box, index -1: the layout a batching server
                 accepts; the signature decodes the frame once)
  crops_separate K serving_default calls with one JPEG crop each, the
                 client cropping (Pillow) and encoding (JPEG q90) each box
  crops_batched  one serving_default call with the K JPEG crops (same
                 client work), for reference

In-process signature calls: no network, no gRPC serialization (TF Serving
would add both, per request, to every method; most to crops_separate).
The 1-minute load average is printed: timings taken while other processes
share the CPUs are not comparable.

With --stages: the footage path stage by stage on a 640x360 synthetic
street (alm-synth-frames --crossings --video) with 4 and with 12 people:
frames/s of decoding (PyAV), detection (per detector kind), tracking
(ByteTrack on the true boxes), writing (drawing + H.264 people.mp4), and
people/s and frames/s of the attribute model (predict_boxes on the true
boxes, up to --boxes_per_call crops of several frames per call; again on
at most --crops_per_track boxes per track, as alm-predict answers them;
and with calls twice as large). The
SavedModel and ONNX detectors are the tests' constant-output stand-ins
(no detector weights ship offline): their figures are the wrapper's cost
(letterbox, runtime call, NMS), not a network's.

Usage:
  .venv/bin/python -m benchmarks.bench_people [--runs=5] [--people=1,8,32] [--json=out.json]
  .venv/bin/python -m benchmarks.bench_people --stages [--people=4,12] [--frames=30] [--crops_per_track=4]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

import alm_tf  # noqa: E402
from alm_tf import artifacts
from alm_tf.preprocessing import crops as people  # noqa: E402
from alm_tf.data import schemas, synth  # noqa: E402
from alm_tf.serving import export  # noqa: E402

HEIGHT, WIDTH = 256, 128
FRAME_H, FRAME_W = 720, 1280


def _frame_and_boxes(k: int, seed: int = 0):
    """A 1280x720 frame with k synthetic people pasted in; their normalized boxes."""
    rng = np.random.default_rng([seed, k])
    frame = Image.fromarray(rng.integers(60, 200, (FRAME_H, FRAME_W, 3), dtype=np.uint8))
    boxes = []
    for j in range(k):
        person, _, _ = synth.render_pedestrian(np.random.default_rng([seed, k, j]), 200, 240,
                                               distractors=False)
        left = int(rng.integers(0, FRAME_W - person.size[0]))
        top = int(rng.integers(0, FRAME_H - person.size[1]))
        frame.paste(person, (left, top))
        boxes.append(people.from_pixels(left, top, left + person.size[0], top + person.size[1],
                                        FRAME_H, FRAME_W))
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), np.asarray(frame), np.asarray(boxes, np.float32)


def _crops(frame: np.ndarray, boxes: np.ndarray) -> list[bytes]:
    """What a client sending crops does: crop each box, encode it as JPEG."""
    out = []
    for box in boxes:
        buffer = io.BytesIO()
        Image.fromarray(people.crop_array(frame, box)).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--people", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--boxes_per_call", type=int, default=16)
    parser.add_argument("--crops_per_track", type=int, default=4)
    args = parser.parse_args()
    if args.stages:
        from benchmarks import footage_stages

        footage_stages.main(args)
        return
    args.people = args.people or "1,8,32"
    counts = [int(k) for k in args.people.split(",")]

    model = alm_tf.build_model(len(schemas.PA100K_ATTRIBUTES), input_shape=(HEIGHT, WIDTH, 3))
    source = artifacts.from_keras_model(model, schemas.PA100K_ATTRIBUTES, origin="bench")
    results = {"cpus": os.cpu_count(), "tensorflow": tf.__version__, "runs": args.runs,
               "load_avg_1min_start": os.getloadavg()[0], "frame": f"{FRAME_W}x{FRAME_H} JPEG q90"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export.export_saved_model(source, tmp)
        results["export_s"] = round(time.perf_counter() - start, 1)
        loaded = tf.saved_model.load(path)
        boxes_fn, bytes_fn = loaded.signatures["predict_boxes"], loaded.signatures["serving_default"]

        for k in counts:
            jpeg, frame, boxes = _frame_and_boxes(k)
            methods = {
                "boxes_frames": lambda: boxes_fn(image_bytes=tf.constant([jpeg]), boxes=tf.constant(boxes),
                                                 box_indices=tf.zeros([k], tf.int32))["probabilities"].numpy(),
                "boxes_rows": lambda: boxes_fn(image_bytes=tf.constant([jpeg] * k), boxes=tf.constant(boxes),
                                               box_indices=tf.fill([k], -1))["probabilities"].numpy(),
                "crops_separate": lambda: np.concatenate([
                    bytes_fn(image_bytes=tf.constant([c]))["probabilities"].numpy()
                    for c in _crops(frame, boxes)]),
                "crops_batched": lambda: bytes_fn(image_bytes=tf.constant(_crops(frame, boxes)))[
                    "probabilities"].numpy(),
            }
            outputs = {name: fn() for name, fn in methods.items()}  # warm up; also the answers agree
            results[f"K{k}_max_abs_diff_boxes_vs_jpeg_crops"] = float(
                np.abs(outputs["boxes_frames"] - outputs["crops_batched"]).max())
            times = {name: [] for name in methods}
            for _ in range(args.runs):
                for name, fn in methods.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            for name, t in times.items():
                median = float(np.median(t))
                results[f"K{k}_{name}_call_ms"] = round(1e3 * median, 1)
                results[f"K{k}_{name}_per_person_ms"] = round(1e3 * median / k, 1)
            results[f"K{k}_speedup_boxes_frames_over_crops_separate"] = round(
                float(np.median(times["crops_separate"]) / np.median(times["boxes_frames"])), 2)
            print(json.dumps({key: v for key, v in results.items() if key.startswith(f"K{k}_")}), flush=True)
    results["load_avg_1min_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
