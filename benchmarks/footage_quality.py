"""Quality of alm-predict on footage: synthetic street sequences with known truth.

For each sequence (alm-synth-frames --crossings: people walk across one
street band from both sides, crossing and occluding each other) and each
detector / tracker: detector precision and recall (also of the true boxes at least half
visible: the crossings hide people behind each other), tracker IDF1, MOTA and
identity switches (motmetrics, IoU >= 0.5), HOTA with its DetA and AssA
(trackers.eval). With --model: the attribute
model's per-box and per-track mA on the true tracks (alm-predict --tracks
with the ground truth; each box and each track judged against its person),
for each --crops_per_track (0: every box answered): per-box mA of the
answered boxes, per-track mA, and the boxes the model answered.

Usage:
  .venv/bin/python -m benchmarks.footage_quality [--people=4,12] [--frames=40]
      [--detectors=hog,hog@1.5,hog:daimler#0.5] [--trackers=bytetrack,sort] [--model=export/1]
      [--crops_per_track=0,2,4,8] [--seeds=0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from alm_tf.people import detectors  # noqa: E402
from alm_tf.people import synth_frames  # noqa: E402
from alm_tf.people import mot_metrics
from alm_tf.people import quality
from alm_tf.people import footage as run
from alm_tf.people import tracking  # noqa: E402


def _sequence(folder: str, people: int, frames: int, seed: int) -> dict:
    return synth_frames.generate_frames(synth_frames.FramesConfig(
        folder, num_frames=frames, num_people=people, height=360, width=640, min_person_height=140,
        max_person_height=200, speed=8, crossings=True, seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="4,12")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detectors", default="hog", help="hog[:MODEL][@SCALE][#THRESHOLD], a SavedModel or .onnx")
    parser.add_argument("--trackers", default="bytetrack,sort")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--crops_per_track", default="0", help="comma-separated; 0: every box")
    parser.add_argument("--seeds", default="0", help="comma-separated; a sequence per seed and people count")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    predictor = None
    if args.model:
        from alm_tf.inference import images as prediction

        predictor = prediction.load_image_predictor(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, k in [(int(s), int(v)) for s in args.seeds.split(",") for v in args.people.split(",")]:
            folder = os.path.join(tmp, f"s{seed}p{k}")
            info = _sequence(folder, k, args.frames, seed)
            truth = mot_metrics.read_mot(info["gt"])
            frames = list(run.iter_source_frames(None, info["frames"]))
            for spec in [v for v in args.detectors.split(",") if v]:
                spec_name, _, threshold = spec.partition("#")
                spec_name, _, scale = spec_name.partition("@")
                name, _, hog_model = spec_name.partition(":") if spec_name.startswith("hog") else (spec_name, "", "")
                detector = quality.load(name, float(scale or 1), float(threshold) if threshold else None,
                                        hog_model or detectors.DEFAULT_HOG_MODEL)
                for tracker in args.trackers.split(","):
                    row = {"people": k, "frames": args.frames, "seed": seed, "detector": spec, "tracker": tracker,
                           **quality.detection_quality(frames, truth, detector, tracking.TrackerConfig(tracker),
                                                       synth_frames.VIDEO_FPS, args.every,
                                                       mot_metrics.read_visibility(info["gt"]))}
                    rows.append(row)
                    print(json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}),
                          flush=True)
            if predictor is not None:
                wanted = [int(v) or None for v in args.crops_per_track.split(",")]
                for row in quality.crops_per_track_ma(predictor, info, os.path.join(folder, "people"), wanted):
                    rows.append({"people": k, "frames": args.frames, "seed": seed, **row})
                    print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
