"""Indexing and query speed of alm_tf.search at archive scale.

Writes `--videos` people folders of `--tracks / --videos` synthetic tracks
each with RAP's 51 attributes and groups (tracks.csv, run.json; no
thumbnails), then times `alm_tf.search.index_folders` on them (tracks/s,
reading the CSVs included) and a 3-term query (`Index.search`, DuckDB over
the Parquet files) `--repeats` times: the first call and the median of the
rest. With --stages, the indexing is repeated one stage at a time, on one
thread: reading and checking the CSVs (`read_people_folder`: Arrow's CSV
parser) and writing the Parquet files (`write_video`: Arrow's encoder),
to show where the time goes. The 1-minute load average is printed: timings taken while other
processes share the CPUs are not comparable.

Usage:
  .venv/bin/python -m benchmarks.bench_search [--tracks=1000000] [--videos=10] \
      [--query='Female LongHair -Hat'] [--repeats=5] [--stages] [--work_dir=DIR] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from alm_tf import groups as groups_lib  # noqa: E402
from alm_tf import search  # noqa: E402
from alm_tf.data import schemas  # noqa: E402

DATASET = "rap"


def _answers(groups: groups_lib.AttributeGroups, probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """The groups' answer columns, vectorised (the same rules as AttributeGroups.answer)."""
    index = {a: m for m, a in enumerate(groups.attributes)}
    out = {}
    for g in groups.groups:
        members = [index[a] for a in g.attributes]
        if g.kind == "exclusive":
            out[g.name] = np.asarray(g.values, object)[np.argmax(probabilities[:, members], axis=1)]
        elif g.kind == "binary":
            out[g.name] = np.where(labels[:, members[0]] == 1, g.values[0], g.values[1]).astype(object)
        else:
            cells = np.full(len(probabilities), "", object)
            for value, m in zip(g.values, members):
                cells = cells + np.where(labels[:, m] == 1, value + groups_lib.MULTI_SEPARATOR, "")
            out[g.name] = np.asarray([c[:-1] for c in cells], object)
    return out


def write_folder(folder: str, camera: str, n: int, groups, rng: np.random.Generator, first_id: int) -> None:
    attributes = groups.attributes
    probabilities = rng.beta(0.5, 2.0, size=(n, len(attributes))).astype(np.float32)
    labels = (probabilities > 0.5).astype(np.int8)
    start = np.sort(rng.uniform(0, 3600, n))
    length = rng.integers(5, 300, n)
    columns = {"id": np.arange(first_id, first_id + n), "first_frame": (start * 10).astype(np.int64) + 1,
               "last_frame": (start * 10).astype(np.int64) + length, "num_frames": length,
               "camera": np.full(n, camera, object), "start_time": start, "end_time": start + length / 10.0}
    columns.update(_answers(groups, probabilities, labels))
    for m, a in enumerate(attributes):
        columns[f"{a}_prob"] = np.round(probabilities[:, m], 6)
        columns[a] = labels[:, m]
    os.makedirs(folder, exist_ok=True)
    pacsv.write_csv(pa.table(columns), os.path.join(folder, "tracks.csv"))
    model = {"attributes": list(attributes), "thresholds": [0.5] * len(attributes),
             "groups": groups.description()}
    with open(os.path.join(folder, "run.json"), "w", encoding="utf-8") as f:
        json.dump({"camera": camera, "source": f"{camera}.mp4", "fps": 10.0, "frame_size": [1080, 1920],
                   "num_frames": 36000, "model": model, "detector": None, "tracker": None}, f)


def _time_stages(folders: list, index_dir: str, total: int) -> None:
    """Reading and writing timed apart, serially (see the module docstring)."""
    from alm_tf.search import index as index_lib

    t = time.perf_counter()
    runs = [index_lib.read_people_folder(f) for f in folders]
    read_s = time.perf_counter() - t
    os.makedirs(index_dir)
    t = time.perf_counter()
    for run in runs:
        index_lib.write_video(index_dir, run)
    write_s = time.perf_counter() - t
    print(f"stages on one thread: read {read_s:.2f} s ({total / read_s:,.0f} tracks/s), write {write_s:.2f} s "
          f"({total / write_s:,.0f} tracks/s) (load {os.getloadavg()[0]:.2f})")
    shutil.rmtree(index_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--query", default="Female LongHair -Hat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages", action="store_true", help="also time reading and writing apart")
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    attributes, group_list = schemas.ATTRIBUTE_GROUPS[DATASET]
    groups = groups_lib.AttributeGroups(attributes, group_list, DATASET)
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_search_")
    rng = np.random.default_rng(0)
    per_video = args.tracks // args.videos
    t = time.perf_counter()
    folders = []
    for v in range(args.videos):
        folders.append(os.path.join(work, f"cam{v}"))
        write_folder(folders[-1], f"cam{v}", per_video, groups, rng, 1)
    print(f"wrote {args.videos} people folders of {per_video} tracks x {len(attributes)} attributes "
          f"in {time.perf_counter() - t:.1f} s (not timed below)")
    index_dir = os.path.join(work, "idx")
    shutil.rmtree(index_dir, ignore_errors=True)
    load = os.getloadavg()[0]
    t = time.perf_counter()
    search.index_folders(folders, index_dir)
    index_s = time.perf_counter() - t
    total = per_video * args.videos
    size = sum(os.path.getsize(f) for f in search.layout.parquet_files(index_dir))
    print(f"indexing: {total} tracks in {index_s:.2f} s = {total / index_s:,.0f} tracks/s "
          f"(Parquet {size / 1e6:.0f} MB; load {load:.2f})")
    if args.stages:
        _time_stages(folders, os.path.join(work, "idx_stages"), total)
    index = search.Index(index_dir)
    times = []
    for _ in range(max(2, args.repeats)):
        t = time.perf_counter()
        frame = index.search(args.query, top=20)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    strict = index.search(args.query, top=20, strict=True)
    strict_s = time.perf_counter() - t
    result = {"tracks": total, "attributes": len(attributes), "index_s": index_s,
              "tracks_per_s": total / index_s, "parquet_bytes": size, "query": args.query,
              "query_first_s": times[0], "query_median_s": statistics.median(times[1:]),
              "strict_s": strict_s, "load_1min": os.getloadavg()[0]}
    print(f"query {args.query!r}: first {times[0]:.3f} s, median of {len(times) - 1} more "
          f"{result['query_median_s']:.3f} s; --strict {strict_s:.3f} s ({len(strict)} of top 20); "
          f"best score {frame['score'].iloc[0]:.4f} (load {result['load_1min']:.2f})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
