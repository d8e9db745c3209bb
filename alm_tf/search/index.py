"""Adding alm-predict people folders to an index (`alm_tf.search.layout`).

A people folder (what alm-predict writes for a video or frames with tracks)
needs `run.json` (camera, source and the model: attributes, thresholds,
groups) and `tracks.csv` (a row per track with `camera`, `start_time`,
`end_time`, the groups' answers, `<attr>_prob` and `<attr>`);
`thumbnails/<id>.jpg` are copied when present. A folder without run.json
(alm-predict before it wrote one) is refused: the index needs the model's
attributes and groups from the run itself, not guessed from a CSV header.

Every input is read and checked before anything is written; each video is
then written under temporary names and renamed into place, so a failure
leaves the index as it was. Re-indexing a video (same camera and source)
replaces its rows and thumbnails.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alm_tf import groups as groups_lib
from alm_tf.search import layout
from alm_tf.search.layout import SearchError

RUN_JSON = "run.json"
TRACKS_CSV = "tracks.csv"
THUMBNAILS_DIR = "thumbnails"
THUMBNAIL_SUFFIX = ".jpg"
#: tracks.csv columns before the answers, and their Arrow types.
CSV_TYPES = {"id": pa.int64(), "first_frame": pa.int64(), "last_frame": pa.int64(),
             "num_frames": pa.int64(), "camera": pa.string(), "start_time": pa.float64(),
             "end_time": pa.float64()}

#: Folders read (and videos written) at once.
_WORKERS = 2

__all__ = ["PeopleRun", "index_folders", "open_index", "read_people_folder", "write_video"]


@dataclasses.dataclass(frozen=True)
class PeopleRun:
    """One people folder, read and checked, ready to write."""

    folder: str
    key: str
    camera: str
    model: dict  # {"attributes", "thresholds", "groups"} as run.json has it
    table: pa.Table
    thumbnails: dict  # track id -> source file


def _load_json(path: str) -> Any:
    import json
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SearchError(f"{path} is not valid JSON ({type(e).__name__})") from None


def _read_run(folder: str) -> tuple[dict, groups_lib.AttributeGroups]:
    path = os.path.join(folder, RUN_JSON)
    if not os.path.isfile(path):
        raise SearchError(f"{folder!r} has no {RUN_JSON}: not a people folder of alm-predict with the "
                          "camera and model it needs (run alm-predict again to write one)")
    run = _load_json(path)
    model = run.get("model") if isinstance(run, dict) else None
    if not isinstance(model, dict) or not isinstance(run.get("camera"), str) or not run["camera"] \
            or not isinstance(run.get("source"), str):
        raise SearchError(f"{path}: expected 'camera', 'source' and 'model' fields")
    attributes = model.get("attributes")
    thresholds = model.get("thresholds")
    if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) for a in attributes):
        raise SearchError(f"{path}: model 'attributes' must be a list of names")
    if not isinstance(thresholds, list) or len(thresholds) != len(attributes):
        raise SearchError(f"{path}: model 'thresholds' must be one number per attribute")
    try:
        groups = groups_lib.from_description(model.get("groups") or {"groups": []}, attributes, path)
    except groups_lib.GroupsError as e:
        raise SearchError(str(e).splitlines()[0]) from None
    for name in groups.csv_columns:
        if name in layout.TRACK_COLUMNS or name in layout.RESULT_COLUMNS:
            raise SearchError(f"{path}: group {name!r} has the name of an index column")
    return run, groups


def _csv_header(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise SearchError(f"{path} not found")
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise SearchError(f"{path} is empty")
    return header


def _label_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """0/1 label text -> int8; other text (runs of per-frame labels) -> null."""
    is_label = pc.is_in(column, value_set=pa.array(["0", "1"]))
    return pc.cast(pc.if_else(is_label, column, pa.scalar(None, pa.string())), pa.int8())


def _read_csv(path: str, names: list[str], types: dict, quiet: bool = False) -> Optional[pa.Table]:
    try:
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=types, include_columns=names, strings_can_be_null=False))
    except pa.ArrowInvalid as e:
        if quiet:
            return None
        raise SearchError(f"{path}: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise SearchError(f"{path}: {str(e).splitlines()[0]}") from None


def _read_tracks(path: str, groups: groups_lib.AttributeGroups) -> pa.Table:
    header = _csv_header(path)
    answers = list(groups.csv_columns)
    attrs = list(groups.attributes)
    needed = list(CSV_TYPES) + answers + [c for a in attrs for c in (layout.prob_column(a), a)]
    missing = [c for c in needed if c not in header]
    if missing:
        raise SearchError(f"{path} has no column {missing[0]!r} (the model's attributes and the people "
                          "output's columns are needed)")
    types = dict(CSV_TYPES)
    types.update({c: pa.string() for c in answers})
    types.update({layout.prob_column(a): pa.float32() for a in attrs})
    # Labels read as int8; a file with per-frame label runs (text) is read again with text labels.
    raw = _read_csv(path, needed, {**types, **{a: pa.int8() for a in attrs}}, quiet=True)
    if raw is None:
        raw = _read_csv(path, needed, {**types, **{a: pa.string() for a in attrs}})
    if raw.num_rows and pc.any(pc.is_null(raw["camera"])).as_py():
        raise SearchError(f"{path}: a row has no camera")
    columns = {name: raw[name] for name in CSV_TYPES}
    columns.update({name: raw[name] for name in answers})
    for a in attrs:
        columns[layout.prob_column(a)] = raw[layout.prob_column(a)]
        columns[a] = raw[a] if raw[a].type == pa.int8() else _label_column(raw[a])
    return pa.table(columns)


def read_people_folder(folder: str) -> PeopleRun:
    """One people folder as rows of the index (nothing written)."""
    if not os.path.isdir(folder):
        raise SearchError(f"people folder not found: {folder!r}")
    run, groups = _read_run(folder)
    raw = _read_tracks(os.path.join(folder, TRACKS_CSV), groups)
    key = layout.video_key(run["camera"], run["source"])
    thumbs_dir = os.path.join(folder, THUMBNAILS_DIR)
    present = set(os.listdir(thumbs_dir)) if os.path.isdir(thumbs_dir) else set()
    if pc.count_distinct(raw["id"]).as_py() != raw.num_rows:
        raise SearchError(f"{os.path.join(folder, TRACKS_CSV)}: a track id appears twice")
    ids = raw["id"].to_pylist() if present else []
    thumbnails = {i: os.path.join(thumbs_dir, f"{i}{THUMBNAIL_SUFFIX}") for i in ids
                  if f"{i}{THUMBNAIL_SUFFIX}" in present}
    thumb_paths = (pa.array([f"{layout.THUMBNAILS_DIR}/{key}/{i}{THUMBNAIL_SUFFIX}" if i in thumbnails
                             else None for i in ids], pa.string()) if present
                   else pa.nulls(raw.num_rows, pa.string()))
    n = raw.num_rows
    table = pa.table({
        "video": pa.array([key] * n, pa.string()),
        "camera": raw["camera"],
        "source": pa.array([run["source"]] * n, pa.string()),
        "track_id": raw["id"],
        **{c: raw[c] for c in ("first_frame", "last_frame", "num_frames", "start_time", "end_time")},
        "thumbnail": thumb_paths,
        **{c: raw[c] for c in raw.column_names if c not in CSV_TYPES},
    })
    model = {"attributes": list(groups.attributes), "thresholds": list(run["model"]["thresholds"]),
             "groups": {"groups": groups.description()["groups"]}}
    return PeopleRun(folder, key, run["camera"], model, table, thumbnails)


def _same_model(index_model: dict, run: PeopleRun) -> None:
    if list(index_model["attributes"]) != run.model["attributes"]:
        ours, theirs = index_model["attributes"], run.model["attributes"]
        diff = next((f"{a!r} vs {b!r}" for a, b in zip(ours, theirs) if a != b),
                    f"{len(theirs)} attributes vs the index's {len(ours)}")
        raise SearchError(f"{run.folder!r} holds answers of a model with other attributes than the "
                          f"index's ({diff}); index it into another index")
    if index_model.get("groups", {}).get("groups") != run.model["groups"]["groups"]:
        raise SearchError(f"{run.folder!r} holds answers with other groups than the index's; index it "
                          "into another index")


def _open_index(path: str, first: PeopleRun) -> dict:
    """The index's description; a new index (missing or empty folder) takes `first`'s model."""
    return open_index(path, first.model)


def open_index(path: str, model: dict) -> dict:
    """The index's description; a new index (missing or empty folder) takes `model`
    ({"attributes", "thresholds", "groups"} as a people folder's run.json has it)."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, layout.INDEX_JSON)):
        return layout.read_index_json(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise SearchError(f"{path!r} is not an index (no {layout.INDEX_JSON}) and not empty: refusing "
                          "to write into it")
    os.makedirs(os.path.join(path, layout.TRACKS_DIR), exist_ok=True)
    meta = {"format_version": layout.FORMAT_VERSION, "model": model}
    layout.write_json_atomic(os.path.join(path, layout.INDEX_JSON), meta)
    return meta


def write_video(path: str, run: PeopleRun) -> None:
    """Writes one video's rows and thumbnails, replacing an earlier indexing of it."""
    tracks_dir = os.path.join(path, layout.TRACKS_DIR)
    thumbs_root = os.path.join(path, layout.THUMBNAILS_DIR)
    os.makedirs(tracks_dir, exist_ok=True)
    os.makedirs(thumbs_root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{run.key}.", dir=thumbs_root)
    target = os.path.join(tracks_dir, run.key + layout.PARQUET_SUFFIX)
    try:
        for track_id, source in run.thumbnails.items():
            shutil.copyfile(source, os.path.join(staging, f"{track_id}{THUMBNAIL_SUFFIX}"))
        strings = [f.name for f in run.table.schema if pa.types.is_string(f.type)]
        pq.write_table(run.table, target + ".tmp", use_dictionary=strings)
        final_thumbs = os.path.join(thumbs_root, run.key)
        if os.path.isdir(final_thumbs):
            shutil.rmtree(final_thumbs)
        os.replace(staging, final_thumbs)
        os.replace(target + ".tmp", target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.exists(target + ".tmp"):
            os.remove(target + ".tmp")
        raise


def index_folders(folders: Sequence[str], path: str) -> list[PeopleRun]:
    """Adds people folders to the index at `path` (created when missing or empty).

    Every folder is read and checked first (SearchError, one line, nothing
    written), then each video is written (`write_video`). Returns the runs.
    """
    if not folders:
        raise SearchError("no people folders to index")
    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:  # Arrow releases the GIL
        runs = list(pool.map(read_people_folder, folders))
    keys: dict[str, str] = {}
    for run in runs:
        if run.key in keys:
            raise SearchError(f"{run.folder!r} and {keys[run.key]!r} are the same video (camera and source)")
        keys[run.key] = run.folder
    for run in runs[1:]:
        _same_model(runs[0].model, run)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, layout.INDEX_JSON)):
        _same_model(layout.read_index_json(path)["model"], runs[0])
    _open_index(path, runs[0])
    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(lambda run: write_video(path, run), runs))
    return runs
