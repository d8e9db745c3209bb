"""Person boxes from files: MOTChallenge det/gt files and plain CSV.

Two formats, told apart by the first field of the first line (a number:
MOT; a name: a CSV header):

- MOTChallenge (no header, comma-separated; MOT16/17/20 `det/det.txt`
  and `gt/gt.txt`): `frame, id, left, top, width, height[, conf, x, y, z]`
  (6 to 10 numbers a row; gt files put a flag, a class and a visibility
  in columns 7-9). Frames are numbers from 1; `id` is the track id (-1 in
  detection files). The box covers columns [left, left + width) and rows
  [top, top + height) in pixels.
- CSV with a header: `image` (a frame's file name or path) or `frame` (a
  frame number), then `x1, y1, x2, y2` in pixels (x2, y2 exclusive),
  optionally `id` and `score`. Any other column is refused.

Every problem is a `DetectionsError` whose one-line message names the
file, the line and the value. Frames are matched to the `--images` files
by `FrameIndex`: numbers to files named by their number (MOT's
`img1/000001.jpg`), else to the n-th file in name order.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Optional

import numpy as np

MOT_COLUMNS = ("frame", "id", "left", "top", "width", "height", "conf", "x", "y", "z")
MOT_MIN_COLUMNS = 6
CSV_REQUIRED = ("x1", "y1", "x2", "y2")
CSV_FRAME_COLUMNS = ("image", "frame")
CSV_OPTIONAL = ("id", "score")
CSV_COLUMNS = CSV_FRAME_COLUMNS + CSV_REQUIRED + CSV_OPTIONAL
#: The id of a box without a track (MOT detection files say -1).
NO_ID = -1

__all__ = [
    "Detection",
    "DetectionsError",
    "FrameIndex",
    "read_detections",
]


class DetectionsError(ValueError):
    """A detections / tracks file or frame that cannot be used (one line)."""


@dataclasses.dataclass(frozen=True)
class Detection:
    """One person box of a file.

    frame: the frame number (MOT, CSV `frame`) or None; image: the frame's
    name (CSV `image`) or None; track_id: id or NO_ID; x1, y1, x2, y2:
    pixels (x2, y2 exclusive); score: confidence or None; line: where.
    """

    frame: Optional[int]
    image: Optional[str]
    track_id: int
    x1: float
    y1: float
    x2: float
    y2: float
    score: Optional[float]
    line: str


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DetectionsError(f"{where}: column {column!r} is not a number: {text.strip()!r}") from None
    if not np.isfinite(value):
        raise DetectionsError(f"{where}: column {column!r} is not finite: {text.strip()!r}")
    return value


def _integer(text: str, where: str, column: str) -> int:
    value = _number(text, where, column)
    if value != int(value):
        raise DetectionsError(f"{where}: column {column!r} must be a whole number: {text.strip()!r}")
    return int(value)


def _looks_like_header(fields: Sequence[str]) -> bool:
    """A CSV header starts with a name; a MOT row with its frame number."""
    try:
        float(fields[0])
    except ValueError:
        return True
    return False


def _check_box(d: Detection) -> Detection:
    if not (d.x2 > d.x1 and d.y2 > d.y1):
        raise DetectionsError(f"{d.line}: empty box (x1={d.x1:g}, y1={d.y1:g}, x2={d.x2:g}, y2={d.y2:g}); "
                              "width and height must be > 0")
    return d


def read_detections(path: str, *, need_ids: bool = False, min_score: Optional[float] = None
                    ) -> tuple[list[Detection], int]:
    """Reads a MOT or CSV detections file.

    Args:
        path: the file.
        need_ids: every box must carry a track id (>= 0): a tracks file.
        min_score: drop boxes whose score is below it (rows without a score
            are kept).

    Returns:
        (detections in file order, number dropped by min_score).

    Raises:
        DetectionsError: a missing file, an unknown column, a bad value, an
            empty box, a missing id (one line naming it).
    """
    if not os.path.isfile(path):
        raise DetectionsError(f"detections file not found: {path!r}")
    name = os.path.basename(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, [v.strip() for v in row]) for n, row in enumerate(csv.reader(f), start=1)
                if row and any(v.strip() for v in row)]
    if not rows:
        raise DetectionsError(f"{path}: no boxes in the file")
    if _looks_like_header(rows[0][1]):
        detections = _read_csv(rows, name)
    else:
        detections = _read_mot(rows, name)
    if need_ids:
        for d in detections:
            if d.track_id < 0:
                raise DetectionsError(f"{d.line}: a tracks file needs a track id >= 0 in every row. "
                                      f"Received: id={d.track_id}")
        seen: dict[tuple, str] = {}
        for d in detections:
            key = (d.frame if d.image is None else d.image, d.track_id)
            if key in seen:
                raise DetectionsError(f"{d.line}: track {d.track_id} has a second box in frame {key[0]} "
                                      f"(first at {seen[key]})")
            seen[key] = d.line
    dropped = 0
    if min_score is not None:
        kept = [d for d in detections if d.score is None or d.score >= min_score]
        dropped = len(detections) - len(kept)
        detections = kept
        if not detections:
            raise DetectionsError(f"{path}: no box has a score >= {min_score}")
    return detections, dropped


def _read_mot(rows, name: str) -> list[Detection]:
    out = []
    for n, fields in rows:
        where = f"{name}:{n}"
        if not MOT_MIN_COLUMNS <= len(fields) <= len(MOT_COLUMNS):
            raise DetectionsError(f"{where}: {len(fields)} columns; a MOT file has {MOT_MIN_COLUMNS} to "
                                  f"{len(MOT_COLUMNS)} ({', '.join(MOT_COLUMNS)})")
        frame = _integer(fields[0], where, "frame")
        if frame < 1:
            raise DetectionsError(f"{where}: frame numbers start at 1. Received: frame={fields[0]}")
        track = _integer(fields[1], where, "id")
        left, top, width, height = (_number(fields[k], where, MOT_COLUMNS[k]) for k in range(2, 6))
        score = _number(fields[6], where, "conf") if len(fields) > 6 else None
        for k in range(7, len(fields)):  # x, y, z (or gt's class, visibility): numbers, unused
            _number(fields[k], where, MOT_COLUMNS[k])
        out.append(_check_box(Detection(frame, None, track, left, top, left + width, top + height,
                                        score, where)))
    return out


def _read_csv(rows, name: str) -> list[Detection]:
    (header_line, header), body = rows[0], rows[1:]
    header = [h.lower() for h in header]
    for column in header:
        if column not in CSV_COLUMNS:
            raise DetectionsError(f"{name}:{header_line}: unknown column {column!r} (a box CSV has "
                                  f"{' or '.join(CSV_FRAME_COLUMNS)}, {', '.join(CSV_REQUIRED)}, optional "
                                  f"{', '.join(CSV_OPTIONAL)}; a MOT file has no header)")
    if len(set(header)) != len(header):
        raise DetectionsError(f"{name}:{header_line}: a column name repeats: {header}")
    frame_columns = [c for c in CSV_FRAME_COLUMNS if c in header]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if len(frame_columns) != 1 or missing:
        what = missing[0] if missing else " or ".join(CSV_FRAME_COLUMNS)
        raise DetectionsError(f"{name}:{header_line}: the header needs column {what!r} (exactly one of "
                              f"image, frame). Received: {header}")
    col = {c: header.index(c) for c in header}
    if not body:
        raise DetectionsError(f"{name}: no boxes below the header")
    out = []
    for n, fields in body:
        where = f"{name}:{n}"
        if len(fields) != len(header):
            raise DetectionsError(f"{where}: {len(fields)} values for {len(header)} columns")
        image = fields[col["image"]] if "image" in col else None
        if image is not None and not image:
            raise DetectionsError(f"{where}: empty image name")
        frame = _integer(fields[col["frame"]], where, "frame") if "frame" in col else None
        if frame is not None and frame < 1:
            raise DetectionsError(f"{where}: frame numbers start at 1. Received: frame={frame}")
        x1, y1, x2, y2 = (_number(fields[col[c]], where, c) for c in CSV_REQUIRED)
        track = _integer(fields[col["id"]], where, "id") if "id" in col else NO_ID
        score = _number(fields[col["score"]], where, "score") if "score" in col else None
        out.append(_check_box(Detection(frame, image, track, x1, y1, x2, y2, score, where)))
    return out


# ------------------------------------------------------------------ frames


_NUMBER = re.compile(r"^\d+$")


class FrameIndex:
    """Frame files of `--images` by frame number and by name.

    Numbers: when every file's stem is a number (`000001.jpg`), that
    number; else the file's position in name order, from 1.
    Names: a file's path as found, its path relative to `root`, or its
    base name (when no other file has it).
    """

    def __init__(self, paths: Sequence[str], root: Optional[str] = None):
        self.paths = list(paths)
        stems = [os.path.splitext(os.path.basename(p))[0] for p in self.paths]
        self.by_number: dict[int, str] = {}
        if self.paths and all(_NUMBER.match(s) for s in stems):
            for stem, path in zip(stems, self.paths):
                if int(stem) in self.by_number:
                    raise DetectionsError(f"two frame files have number {int(stem)}: "
                                          f"{self.by_number[int(stem)]!r} and {path!r}")
                self.by_number[int(stem)] = path
        else:
            self.by_number = {k: p for k, p in enumerate(sorted(self.paths), start=1)}
        self.by_name: dict[str, str] = {}
        basenames: dict[str, list[str]] = {}
        for path in self.paths:
            self.by_name[path] = path
            self.by_name[os.path.normpath(path)] = path
            if root and os.path.isdir(root):
                self.by_name[os.path.relpath(path, root)] = path
            basenames.setdefault(os.path.basename(path), []).append(path)
        self._ambiguous = {b for b, ps in basenames.items() if len(ps) > 1}
        for base, ps in basenames.items():
            if len(ps) == 1:
                self.by_name.setdefault(base, ps[0])

    def path_of(self, d: Detection) -> str:
        """The frame file of a detection; DetectionsError naming a missing frame."""
        if d.image is not None:
            path = self.by_name.get(d.image) or self.by_name.get(os.path.normpath(d.image))
            if path is None:
                why = ("several --images files have that name" if os.path.basename(d.image) in self._ambiguous
                       else "no such file among --images")
                raise DetectionsError(f"{d.line}: image {d.image!r} does not exist ({why})")
            return path
        if d.frame not in self.by_number:
            last = max(self.by_number) if self.by_number else 0
            raise DetectionsError(f"{d.line}: frame {d.frame} does not exist (--images has "
                                  f"{len(self.paths)} frames, numbers up to {last})")
        return self.by_number[d.frame]

    def number_of(self, path: str) -> int:
        for number, p in self.by_number.items():
            if p == path:
                return number
        raise KeyError(path)
