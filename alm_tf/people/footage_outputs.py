"""The people folder's footage files: tracks.txt (MOTChallenge), a thumbnail per
track, the annotated video people.mp4 and run.json (what ran on what).

Every file goes through a temporary name and is renamed by the caller's
commit, so a failed run leaves none of them.
"""

from __future__ import annotations

import io
import json
import os
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from alm_tf.people import video as video_lib

TRACKS_TXT = "tracks.txt"
THUMBNAILS_DIR = "thumbnails"
PEOPLE_VIDEO = "people.mp4"
RUN_JSON = "run.json"
VIDEO_CODECS = ("libx264", "mpeg4")  # the first one PyAV's FFmpeg has

__all__ = ["PEOPLE_VIDEO", "RUN_JSON", "THUMBNAILS_DIR", "TRACKS_TXT", "Thumbnails", "VideoWriter",
           "mot_rows", "write_run_json"]


def mot_rows(boxes) -> list[str]:
    """MOTChallenge lines `frame,id,left,top,width,height,score,-1,-1,-1` of (frame, id, x1, y1, x2, y2, score)."""
    lines = []
    for frame, tid, x1, y1, x2, y2, score in boxes:
        lines.append(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                     f"{1.0 if score is None else score:.4f},-1,-1,-1")
    return lines


class Thumbnails:
    """The best crop of each track: the highest score, then the largest box."""

    def __init__(self):
        self.best: dict[int, tuple[tuple[float, float], np.ndarray]] = {}

    def offer(self, track_id: int, score: Optional[float], box, frame) -> None:
        x1, y1, x2, y2 = (int(v) for v in box)
        key = (-np.inf if score is None else float(score), float((x2 - x1) * (y2 - y1)))
        if track_id in self.best and self.best[track_id][0] >= key:
            return
        if isinstance(frame, (bytes, bytearray)):
            with Image.open(io.BytesIO(frame)) as im:
                frame = np.asarray(im.convert("RGB"))
        self.best[track_id] = (key, np.array(frame[y1:y2, x1:x2]))

    def write(self, path_of, track_ids) -> list[str]:
        """JPEGs of `track_ids` at `path_of(name)` (a temporary path)."""
        written = []
        for tid in track_ids:
            if tid in self.best:
                path = path_of(os.path.join(THUMBNAILS_DIR, f"{tid}.jpg"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(self.best[tid][1]).save(path, format="JPEG", quality=90)
                written.append(path)
        return written


def _colour(key: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(key * 7919 + 13)
    return tuple(int(v) for v in rng.integers(64, 256, 3))


def annotate(frame: np.ndarray, items) -> np.ndarray:
    """The frame with each (box, track id, text lines) drawn."""
    image = Image.fromarray(np.asarray(frame, np.uint8))
    draw = ImageDraw.Draw(image)
    for box, tid, lines in items:
        colour = _colour(tid)
        draw.rectangle([int(box[0]), int(box[1]), int(box[2]) - 1, int(box[3]) - 1], outline=colour, width=2)
        y = int(box[1])
        for line in lines:  # dark under the text, so that it reads on any background
            left, top, right, bottom = draw.textbbox((int(box[0]) + 2, y + 1), line)
            draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=(0, 0, 0))
            draw.text((int(box[0]) + 2, y + 1), line, fill=colour)
            y += 12
    return np.asarray(image)


class VideoWriter:
    """An H.264 (or MPEG-4 part 2) video written frame by frame through PyAV."""

    def __init__(self, path: str, fps: float, height: int, width: int):
        av = video_lib.require_av()
        from fractions import Fraction

        codec = next(c for c in VIDEO_CODECS if c in av.codecs_available)
        self._av = av
        self._container = av.open(path, mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"

    def write(self, frame: np.ndarray) -> None:
        array = np.ascontiguousarray(frame[:self._stream.height, :self._stream.width])
        for packet in self._stream.encode(self._av.VideoFrame.from_ndarray(array, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def write_run_json(path: str, **fields) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fields, f, indent=1)
        f.write("\n")
    return path
