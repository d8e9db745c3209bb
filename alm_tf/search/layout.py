"""The index folder's layout and the rules every part of the search shares.

An index folder IDX holds:

  IDX/index.json                 {"format_version", "model": {"attributes",
                                 "thresholds", "groups"}}: the one model
                                 whose answers the index holds
  IDX/tracks/<video>.parquet     one file per indexed video: a row per track
  IDX/thumbnails/<video>/<id>.jpg  the tracks' thumbnails, copied

`<video>` is a key of the video's camera and source (`video_key`), so
indexing the same people folder again replaces its file. Rows carry
`TRACK_COLUMNS`, then the model's answer columns (one per group, the
readable answer as alm-predict writes it), then `<attr>_prob` (float32)
and `<attr>` (int8 thresholded label, null where the answer was given per
frame) for every attribute. Thumbnail paths are relative to IDX, so the
folder can be moved whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

FORMAT_VERSION = 1
INDEX_JSON = "index.json"
TRACKS_DIR = "tracks"
THUMBNAILS_DIR = "thumbnails"
PARQUET_SUFFIX = ".parquet"
#: Columns every row has, before the answers and the attributes.
TRACK_COLUMNS = ("video", "camera", "source", "track_id", "first_frame", "last_frame", "num_frames",
                 "start_time", "end_time", "thumbnail")
#: The columns of a result, before the readable answers (CONTRACT.md's "Search").
RESULT_COLUMNS = ("rank", "camera", "track_id", "start_time", "end_time", "score", "thumbnail")
#: What `--output` writes, by file extension.
OUTPUT_FORMATS = ("html", "csv", "json")


class SearchError(ValueError):
    """Bad input to indexing or search; the message is one line naming the bad value."""


def prob_column(attribute: str) -> str:
    return f"{attribute}_prob"


def video_key(camera: str, source: str) -> str:
    """The file stem of a video in the index: readable camera, then a hash of (camera, source)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", camera).strip("._")[:40] or "video"
    digest = hashlib.sha1(f"{camera}\0{source}".encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}"


def quote(name: str) -> str:
    """An SQL identifier (attribute names hold spaces, '&', '-')."""
    return '"' + name.replace('"', '""') + '"'


def read_index_json(path: str) -> dict[str, Any]:
    """IDX/index.json, checked; SearchError when IDX is not an index."""
    if not os.path.isdir(path):
        raise SearchError(f"index folder not found: {path!r}")
    meta_path = os.path.join(path, INDEX_JSON)
    if not os.path.isfile(meta_path):
        raise SearchError(f"{path!r} is not an index (no {INDEX_JSON}; alm-index creates one)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SearchError(f"{meta_path} is not valid JSON ({type(e).__name__})") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    if (meta.get("format_version") if isinstance(meta, dict) else None) != FORMAT_VERSION \
            or not isinstance(model, dict) or not isinstance(model.get("attributes"), list):
        raise SearchError(f"{meta_path} is not an index description (format_version {FORMAT_VERSION} "
                          "with a model's attributes)")
    return meta


def write_json_atomic(path: str, payload: Any) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def parquet_files(path: str) -> list[str]:
    folder = os.path.join(path, TRACKS_DIR)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(PARQUET_SUFFIX))
