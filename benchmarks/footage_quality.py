"""Quality of alm-predict on footage: synthetic street sequences with known truth.

For each sequence (alm-synth-frames --crossings: people walk across one
street band from both sides, crossing and occluding each other) and each
detector / tracker: detector precision and recall, tracker IDF1, MOTA and
identity switches (motmetrics, IoU >= 0.5). With --model: the attribute
model's per-box and per-track mA on the true tracks (alm-predict --tracks
with the ground truth; each box and each track judged against its person).

Usage:
  .venv/bin/python -m benchmarks.footage_quality [--people=4,12] [--frames=40]
      [--detectors=hog,hog@1.5] [--trackers=bytetrack,sort] [--model=export/1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from alm_tf.people import synth_frames  # noqa: E402
from alm_tf.people import mot_metrics
from alm_tf.people import quality
from alm_tf.people import footage as run
from alm_tf.people import tracking  # noqa: E402


def _sequence(folder: str, people: int, frames: int, seed: int) -> dict:
    return synth_frames.generate_frames(synth_frames.FramesConfig(
        folder, num_frames=frames, num_people=people, height=360, width=640, min_person_height=140,
        max_person_height=200, speed=8, crossings=True, seed=seed))


def _attribute_ma(model: str, info: dict, folder: str) -> dict:
    out = os.path.join(folder, "people")
    subprocess.run([sys.executable, "-m", "pipelines.predict", f"--model={model}", f"--images={info['images_dir']}",
                    f"--tracks={info['gt']}", "--no_video", "--pictures=false", "--progress=false",
                    f"--output_dir={out}"], check=True)
    return quality.per_box_and_track_ma(info["people"], os.path.join(out, "boxes.csv"),
                                        os.path.join(out, "tracks.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="4,12")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detectors", default="hog", help="hog, hog@SCALE, a SavedModel or .onnx")
    parser.add_argument("--trackers", default="bytetrack,sort")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in [int(v) for v in args.people.split(",")]:
            folder = os.path.join(tmp, f"p{k}")
            info = _sequence(folder, k, args.frames, args.seed)
            truth = mot_metrics.read_mot(info["gt"])
            frames = list(run.iter_source_frames(None, info["frames"]))
            for spec in args.detectors.split(","):
                name, _, scale = spec.partition("@")
                detector = quality.load(name, float(scale or 1))
                for tracker in args.trackers.split(","):
                    row = {"people": k, "frames": args.frames, "detector": spec, "tracker": tracker,
                           **quality.detection_quality(frames, truth, detector, tracking.TrackerConfig(tracker),
                                                       synth_frames.VIDEO_FPS, args.every)}
                    rows.append(row)
                    print(json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}),
                          flush=True)
            if args.model:
                row = {"people": k, "frames": args.frames, **_attribute_ma(args.model, info, folder)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
