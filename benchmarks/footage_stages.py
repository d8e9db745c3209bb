"""bench_people.py --stages: the footage path's stages timed one by one (see there)."""

from __future__ import annotations

import json
import os
import tempfile
import time


import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import alm_tf  # noqa: E402
from alm_tf.testing import detector_files  # noqa: E402  (the tests' stand-in detector files)
from alm_tf import artifacts
from alm_tf.preprocessing import crops as people
from alm_tf.people import video  # noqa: E402
from alm_tf.data import schemas
from alm_tf.people import answering
from alm_tf.people import synth_frames  # noqa: E402
from alm_tf.people import detectors
from alm_tf.people import mot_metrics
from alm_tf.people import footage_files as outputs
from alm_tf.people import tracking  # noqa: E402
from alm_tf.serving import export  # noqa: E402

HEIGHT, WIDTH = 360, 640


def _timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _detector_kinds(tmp: str) -> dict:
    table = detector_files.yolo_table([[100, 100, 160, 300]], [[0.9] + [0.0] * 79], (HEIGHT, WIDTH), size=640)
    return {
        "hog": detectors.DetectorConfig("hog"),
        "savedmodel_standin": detectors.DetectorConfig(detector_files.od_api_saved_model(
            os.path.join(tmp, "od"), [[0.2, 0.1, 0.8, 0.3]] * 100, [0.9] * 100, [1] * 100)),
        "onnx_standin": detectors.DetectorConfig(detector_files.yolo_onnx(
            os.path.join(tmp, "y.onnx"), np.repeat(table, 8400, axis=2), size=640)),
    }


def _model_stage(boxes_fn, info, truth, boxes_per_call, crops_per_track=None) -> tuple[float, int]:
    """Seconds of predict_boxes on the true boxes (at most `crops_per_track`
    per track, as alm-predict chooses them); and the boxes answered."""
    jpegs = {n: open(p, "rb").read() for n, p in enumerate(info["frames"], start=1)}
    placed = {}
    for d in truth:
        placed.setdefault(d.frame, []).append(d)
    chosen = answering.select_for_tracks(placed, crops_per_track)
    by_frame = {}
    for n, k in sorted(chosen):
        d = placed[n][k]
        by_frame.setdefault(n, []).append(people.from_pixels(d.x1, d.y1, d.x2, d.y2, HEIGHT, WIDTH))
    calls, frames, boxes, index = [], [], [], []
    for n in sorted(by_frame):
        if boxes and len(boxes) + len(by_frame[n]) > boxes_per_call:
            calls.append((frames, boxes, index))
            frames, boxes, index = [], [], []
        frames.append(jpegs[n])
        boxes += by_frame[n]
        index += [len(frames) - 1] * len(by_frame[n])
    calls.append((frames, boxes, index))

    def run():
        for f, b, i in calls:
            boxes_fn(image_bytes=tf.constant(f), boxes=tf.constant(np.asarray(b, np.float32)),
                     box_indices=tf.constant(i, tf.int32))["probabilities"].numpy()
    run()  # warm up
    return _timed(run), len(chosen)


def main(args) -> None:
    counts = [int(k) for k in (args.people or "4,12").split(",")]
    results = {"cpus": os.cpu_count(), "load_avg_1min_start": os.getloadavg()[0], "frames": args.frames,
               "frame": f"{WIDTH}x{HEIGHT}"}
    model = alm_tf.build_model(len(schemas.PA100K_ATTRIBUTES), input_shape=(256, 128, 3))
    source = artifacts.from_keras_model(model, schemas.PA100K_ATTRIBUTES, origin="bench")
    with tempfile.TemporaryDirectory() as tmp:
        boxes_fn = tf.saved_model.load(export.export_saved_model(source, tmp)).signatures["predict_boxes"]
        kinds = {name: detectors.load_detector(c) for name, c in _detector_kinds(tmp).items()}
        for k in counts:
            info = synth_frames.generate_frames(synth_frames.FramesConfig(
                os.path.join(tmp, f"p{k}"), num_frames=args.frames, num_people=k, height=HEIGHT, width=WIDTH,
                min_person_height=140, max_person_height=200, speed=8, crossings=True, video=True))
            truth = mot_metrics.read_mot(info["gt"])
            n = args.frames
            row = {"people": k, "boxes": len(truth)}
            frames = []
            row["decode_fps"] = n / _timed(lambda: frames.extend(a for _, a in video.iter_frames(info["video"])))
            for name, detector in kinds.items():
                detector(frames[0])
                row[f"detect_{name}_fps"] = n / _timed(lambda: [detector(f) for f in frames])
            per_frame = {}
            for d in truth:
                per_frame.setdefault(d.frame, []).append([d.x1, d.y1, d.x2, d.y2])
            tracker = tracking.make_tracker(tracking.TrackerConfig(), synth_frames.VIDEO_FPS)
            row["track_fps"] = n / _timed(lambda: [tracker.update(np.asarray(per_frame.get(f, np.zeros((0, 4)))),
                                                                  np.ones(len(per_frame.get(f, [])))) for f in range(1, n + 1)])
            seconds, _ = _model_stage(boxes_fn, info, truth, args.boxes_per_call)
            row["model_fps"], row["model_people_per_s"] = n / seconds, len(truth) / seconds
            seconds, answered = _model_stage(boxes_fn, info, truth, args.boxes_per_call, args.crops_per_track)
            row[f"model_crops{args.crops_per_track}_fps"] = n / seconds
            row[f"model_crops{args.crops_per_track}_boxes"] = answered
            seconds, _ = _model_stage(boxes_fn, info, truth, 2 * args.boxes_per_call)
            row[f"model_calls_of_{2 * args.boxes_per_call}_fps"] = n / seconds

            def write():
                writer = outputs.VideoWriter(os.path.join(tmp, "people.mp4"), 10, HEIGHT, WIDTH)
                for f, frame in enumerate(frames, start=1):
                    writer.write(outputs.annotate(frame, [(b, j, ["#1", "male,backpack"])
                                                          for j, b in enumerate(per_frame.get(f, []))]))
                writer.close()
            row["write_fps"] = n / _timed(write)
            row = {key: round(v, 2) if isinstance(v, float) else v for key, v in row.items()}
            results[f"K{k}"] = row
            print(json.dumps(row), flush=True)
    results["load_avg_1min_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
