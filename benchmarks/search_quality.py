"""Retrieval quality of alm-search on synthetic camera sequences with known people.

For each of `--cameras` sequences: alm-synth-frames (people with known
attributes, people.json), alm-predict --tracks with the true tracks and the
given model; then alm-index and, for `alm_tf.search.quality.SYNTH_QUERIES`
(12 queries of one to four terms; with a model that answers clothing
colours, also `COLOUR_QUERIES`), mean average precision and precision@10
of the ranking, of --strict and of a random order (`alm_tf.search.quality`).

With --footage, the path a user takes from video: each camera is a street
video (alm-synth-frames --write_video, people of 140-200 px in 640x360
frames, --colours when the model answers colours; with --crossings all on
one band, crossing each other), alm-predict --video finds and follows the
people (its detector and tracker, --detector and --tracker), and alm-index
and alm-search run as binaries; a found track is judged as the true person
it follows (`quality.match_tracks`), a false track is relevant to nothing
and a person no track found counts as never retrieved. Pages of the top
12 go to WORK/results.html (`gender=female hair=long backpack`) and, with
colours, WORK/results_colour.html (`upper_color=red`).

The detector is alm-predict's default (`--detector=hog`, what a user
gets); `--detector=oracle` instead builds per camera a SavedModel
detector (the Object Detection API layout alm-predict reads) that
answers each frame's true boxes, jittered by up to `--jitter` of their
size, in frame order: everything after the detector (video decoding, the
tracker's ids, the track answers, thumbnails, times, index, search) is
the real path, so the two runs tell what the detector's misses cost.

Where alm-predict's people folder has no run.json nor camera / time columns
(alm-predict before the footage work), the folder is completed here as the
people output describes them (camera: the sequence's name; times: frame
numbers / --fps; the model's attributes, thresholds and groups from the
model) into a copy, so that alm-index takes it.

--train_colour_model=DIR first trains the demo's model (alm-demo's recipe
and sizes) on synthetic data with clothing colours (alm-synth --colours)
into DIR and measures with its SavedModel (DIR/export/1).

Usage:
  .venv/bin/python -m benchmarks.search_quality --train_colour_model=colour_demo --footage
  .venv/bin/python -m benchmarks.search_quality --model=demo_output/models/alm \
      [--cameras=2] [--num_people=40] [--num_frames=60] [--fps=10] [--work_dir=DIR] [--json=out.json]
  .venv/bin/python -m benchmarks.search_quality --model=demo_output/models/alm --footage \
      [--cameras=4] [--num_people=8] [--num_frames=60] [--detector=hog|oracle|PATH] [--tracker=bytetrack]
      [--track_min_frames=N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from alm_tf import artifacts  # noqa: E402
from alm_tf import search  # noqa: E402
from alm_tf.people import mot_metrics  # noqa: E402
from alm_tf.search import quality  # noqa: E402


def _run(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:1])} failed: {done.stderr.strip().splitlines()[-1:]}")


def complete_folder(folder: str, out: str, camera: str, fps: float, model) -> str:
    """A copy of an alm-predict people folder with run.json and camera / time columns."""
    shutil.copytree(folder, out)
    with open(os.path.join(folder, "tracks.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if "camera" not in header:
        k = header.index("num_frames") + 1
        first, last = header.index("first_frame"), header.index("last_frame")
        header = header[:k] + ["camera", "start_time", "end_time"] + header[k:]
        body = [r[:k] + [camera, f"{(int(r[first]) - 1) / fps:g}", f"{int(r[last]) / fps:g}"] + r[k:]
                for r in body]
        with open(os.path.join(out, "tracks.csv"), "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([header] + body)
    if not os.path.isfile(os.path.join(out, "run.json")):
        run = {"camera": camera, "source": folder, "fps": fps, "frame_size": None, "num_frames": None,
               "model": {"attributes": list(model.attributes), "thresholds": [float(t) for t in model.thresholds],
                         "groups": model.groups.description()}, "detector": None, "tracker": None}
        with open(os.path.join(out, "run.json"), "w", encoding="utf-8") as f:
            json.dump(run, f, indent=1)
    return out


def _tracks_camera(args, model, work: str, c: int) -> tuple[str, dict, list]:
    """One camera through alm-predict --tracks (the true tracks): (folder, truth, unfound)."""
    camera, seq, people = f"cam{c + 1}", os.path.join(work, f"seq{c + 1}"), os.path.join(work, f"people{c + 1}")
    _run("pipelines.synth_frames", f"--output_dir={seq}", f"--num_people={args.num_people}",
         f"--num_frames={args.num_frames}", f"--seed={c}", *(["--colours"] if _colours(model) else []))
    _run("pipelines.predict", f"--model={args.model}", f"--images={seq}/img1", f"--tracks={seq}/gt/gt.txt",
         f"--camera={camera}", f"--output_dir={people}", "--max_pictures=0", "--no_video", "--progress=false")
    folder = complete_folder(people, people + "_indexed", camera, args.fps, model)
    return folder, quality.read_people_json(os.path.join(seq, "people.json"), camera), []


def oracle_detector(path: str, gt_file: str, num_frames: int, height: int, width: int, jitter: float,
                    seed: int) -> str:
    """A SavedModel detector answering the true boxes of frame 1, 2, ... on its 1st, 2nd, ... call.

    A box's score falls with the share of it that people drawn later (on
    top) hide, as a detector's would, so that a track's best-scoring box
    (its thumbnail) is one where the person is seen.
    """
    import numpy as np
    import tensorflow as tf

    truth = mot_metrics.read_mot(gt_file)
    visible = {}
    for f in range(1, num_frames + 1):
        frame = sorted((d for d in truth if d.frame == f), key=lambda d: -d.track_id)  # the top one first
        covered = np.zeros((height, width), bool)
        for d in frame:
            y1, x1, y2, x2 = (int(max(0, v)) for v in (d.y1, d.x1, d.y2, d.x2))
            region = covered[y1:y2, x1:x2]
            visible[(f, d.track_id)] = 1.0 - (region.mean() if region.size else 1.0)
            region[...] = True
    most = max(1, max((sum(d.frame == f for d in truth) for f in range(1, num_frames + 1)), default=1))
    boxes = np.zeros((num_frames + 1, most, 4), np.float32)
    scores = np.zeros((num_frames + 1, most), np.float32)
    rng = np.random.default_rng(seed)
    filled = [0] * (num_frames + 1)
    for d in truth:
        w, h = d.x2 - d.x1, d.y2 - d.y1
        dx1, dy1, dx2, dy2 = rng.uniform(-jitter, jitter, 4) * [w, h, w, h]
        k, filled[d.frame] = filled[d.frame], filled[d.frame] + 1
        boxes[d.frame - 1, k] = [(d.y1 + dy1) / height, (d.x1 + dx1) / width, (d.y2 + dy2) / height,
                                 (d.x2 + dx2) / width]
        scores[d.frame - 1, k] = 0.3 + 0.6 * visible[(d.frame, d.track_id)] + rng.uniform(0, 0.05)

    class Oracle(tf.Module):
        def __init__(self):
            super().__init__()
            self.frame = tf.Variable(0, dtype=tf.int32)
            self.boxes, self.scores = tf.constant(boxes), tf.constant(scores)

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def __call__(self, images):
            k = tf.minimum(self.frame, num_frames)
            self.frame.assign_add(1)
            return {"detection_boxes": self.boxes[k][None], "detection_scores": self.scores[k][None],
                    "detection_classes": tf.ones([1, most]), "num_detections": tf.constant([float(most)])}

    module = Oracle()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path


def _footage_camera(args, model, work: str, c: int) -> tuple[str, dict, list]:
    """One street video through alm-predict --video: (folder, truth of its found tracks, unfound people)."""
    camera, seq, people = f"cam{c + 1}", os.path.join(work, f"seq{c + 1}"), os.path.join(work, f"people{c + 1}")
    _run("pipelines.synth_frames", f"--output_dir={seq}", f"--num_people={args.num_people}",
         f"--num_frames={args.num_frames}", f"--seed={c}", *(["--crossings"] if args.crossings else []),
         "--write_video", "--frame_width=640", "--frame_height=360", "--person_height_min=140",
         "--person_height_max=200", "--speed=8", *(["--colours"] if _colours(model) else []))
    detector = args.detector
    if detector == "oracle":
        detector = oracle_detector(os.path.join(work, f"oracle{c + 1}"), os.path.join(seq, "gt", "gt.txt"),
                                   args.num_frames, 360, 640, args.jitter, c)
    _run("pipelines.predict", f"--model={args.model}", f"--video={seq}/street.mp4", f"--camera={camera}",
         f"--detector={detector}", f"--tracker={args.tracker}", f"--output_dir={people}", "--no_video",
         *([f"--track_min_frames={args.track_min_frames}"] if args.track_min_frames else []),
         "--max_pictures=0", "--progress=false")
    labels = quality.read_people_json(os.path.join(seq, "people.json"), camera)
    matched = quality.match_tracks(mot_metrics.read_mot(os.path.join(people, "tracks.txt")),
                                   mot_metrics.read_mot(os.path.join(seq, "gt", "gt.txt")))
    with open(os.path.join(people, "tracks.csv"), newline="", encoding="utf-8") as f:
        found = [int(row["id"]) for row in csv.DictReader(f)]
    truth = {(camera, t): labels[(camera, matched[t])] if t in matched else None for t in found}
    unfound = [v for (_, person), v in labels.items() if person not in {matched.get(t) for t in found}]
    print(f"{camera}: {len(found)} tracks, {sum(t in matched for t in found)} on a person, "
          f"{len(labels) - len(unfound)} of {len(labels)} people found", flush=True)
    return people, truth, unfound


def train_colour_model(output_dir: str) -> str:
    """alm-demo's run on synthetic data with clothing colours; returns its SavedModel."""
    import functools

    from alm_tf.data import synth
    from alm_tf.demo import run as demo

    # The demo draws its data with synth.SynthConfig's defaults; here the same
    # recipe with colours on (alm-demo itself has no colour option).
    demo.synth.SynthConfig = functools.partial(synth.SynthConfig, colours=True)
    summary = demo.run_demo(demo.default_demo_config(output_dir, progress=False))
    return summary["paths"]["saved_model"]


def _colours(model) -> bool:
    return "upper_color" in [g.name for g in model.groups.groups]


def _print_table(table, title: str) -> None:
    scored = table[table["relevant"] > 0]
    columns = ["ranked_ap", "strict_ap", "random_ap", "ranked_p@10", "strict_p@10", "random_p@10"]
    print(title)
    print("| query | terms | relevant | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for _, r in table.iterrows():
        print(f"| `{r['query']}` | {r['terms']} | {r['relevant']} | "
              + " | ".join(f"{r[c]:.3f}" for c in columns) + " |")
    print(f"| mean over {len(scored)} queries with relevant tracks | | | "
          + " | ".join(f"{scored[c].mean():.3f}" for c in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--train_colour_model", default=None, metavar="DIR")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--num_people", type=int, default=None, help="default 40, --footage 8")
    parser.add_argument("--num_frames", type=int, default=None, help="default 60")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--footage", action="store_true", help="from videos: detector and tracker")
    parser.add_argument("--detector", default="hog", help="hog (alm-predict's default), oracle (the true "
                        "boxes, jittered) or a detector file")
    parser.add_argument("--crossings", action="store_true", help="--footage: people walk across one band")
    parser.add_argument("--jitter", type=float, default=0.05)
    parser.add_argument("--tracker", default="bytetrack")
    parser.add_argument("--track_min_frames", type=int, default=None, help="alm-predict's (default: its own)")
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.num_people = args.num_people or (8 if args.footage else 40)
    args.num_frames = args.num_frames or 60
    work = args.work_dir or tempfile.mkdtemp(prefix="search_quality_")
    if args.train_colour_model:
        args.model = train_colour_model(args.train_colour_model)
    if not args.model:
        parser.error("--model or --train_colour_model is required")
    model = artifacts.load(args.model)
    queries = quality.SYNTH_QUERIES + (quality.COLOUR_QUERIES if _colours(model) else ())
    folders, truth, unfound = [], {}, []
    for c in range(args.cameras):
        folder, found, missed = (_footage_camera if args.footage else _tracks_camera)(args, model, work, c)
        folders.append(folder)
        truth.update(found)
        unfound += missed
    index_dir = os.path.join(work, "idx")
    if args.footage:  # the binaries, as a user runs them
        _run("pipelines.index", f"--inputs={','.join(folders)}", f"--index={index_dir}")
        pages = {"results.html": quality.SYNTH_QUERIES[6]}
        if _colours(model):
            pages["results_colour.html"] = quality.COLOUR_QUERIES[0]
        for name, query in pages.items():
            _run("pipelines.search", f"--index={index_dir}", f"--query={query}", "--top=12",
                 f"--output={os.path.join(work, name)}")
    else:
        search.index_folders(folders, index_dir)
    table = quality.evaluate(search.Index(index_dir), truth, queries, unfound=unfound)
    _print_table(table, f"{len(truth)} tracks on {args.cameras} cameras ({len(unfound)} people no track found), "
                        f"model {args.model}" + (f", {args.detector} + {args.tracker}" if args.footage
                                                 else ", true tracks"))
    if args.json:
        table.to_json(args.json, orient="records", indent=1)


if __name__ == "__main__":
    main()
