"""Retrieval quality of alm-search on synthetic camera sequences with known people.

For each of `--cameras` sequences: alm-synth-frames (people with known
attributes, people.json), alm-predict --tracks with the true tracks and the
given model; then alm-index and, for `alm_tf.search.quality.SYNTH_QUERIES`
(12 queries of one to four terms), mean average precision and precision@10
of the ranking, of --strict and of a random order (`alm_tf.search.quality`).

Where alm-predict's people folder has no run.json nor camera / time columns
(alm-predict before the footage work), the folder is completed here as the
people output describes them (camera: the sequence's name; times: frame
numbers / --fps; the model's attributes, thresholds and groups from the
model) into a copy, so that alm-index takes it.

Usage:
  .venv/bin/python -m benchmarks.search_quality --model=demo_output/models/alm \
      [--cameras=2] [--num_people=40] [--num_frames=60] [--fps=10] [--work_dir=DIR] [--json=out.json]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--num_people", type=int, default=40)
    parser.add_argument("--num_frames", type=int, default=60)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="search_quality_")
    model = artifacts.load(args.model)
    folders, truth = [], {}
    for c in range(args.cameras):
        camera, seq, people = f"cam{c + 1}", os.path.join(work, f"seq{c + 1}"), os.path.join(work, f"people{c + 1}")
        _run("pipelines.synth_frames", f"--output_dir={seq}", f"--num_people={args.num_people}",
             f"--num_frames={args.num_frames}", f"--seed={c}")
        _run("pipelines.predict", f"--model={args.model}", f"--images={seq}/img1", f"--tracks={seq}/gt/gt.txt",
             f"--output_dir={people}", "--max_pictures=0")
        folders.append(complete_folder(people, people + "_indexed", camera, args.fps, model))
        truth.update(quality.read_people_json(os.path.join(seq, "people.json"), camera))
    index_dir = os.path.join(work, "idx")
    search.index_folders(folders, index_dir)
    table = quality.evaluate(search.Index(index_dir), truth)
    scored = table[table["relevant"] > 0]
    columns = ["ranked_ap", "strict_ap", "random_ap", "ranked_p@10", "strict_p@10", "random_p@10"]
    print(f"{len(truth)} tracks on {args.cameras} cameras, model {args.model}")
    print("| query | terms | relevant | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for _, r in table.iterrows():
        print(f"| `{r['query']}` | {r['terms']} | {r['relevant']} | "
              + " | ".join(f"{r[c]:.3f}" for c in columns) + " |")
    print(f"| mean over {len(scored)} queries with relevant tracks | | | "
          + " | ".join(f"{scored[c].mean():.3f}" for c in columns) + " |")
    if args.json:
        table.to_json(args.json, orient="records", indent=1)


if __name__ == "__main__":
    main()
