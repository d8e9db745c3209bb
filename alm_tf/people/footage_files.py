"""The footage files of a tracks run: tracks.txt (MOTChallenge), a thumbnail
per track, the annotated video people.mp4 and run.json (what ran on what);
and the frame times of its tracks. Called by alm_tf.people.run.

Every file goes through a temporary name and is renamed by the caller's
commit, so a failed run leaves none of them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from alm_tf import groups as groups_lib
from alm_tf.inference import pictures as visualization
from alm_tf.people import footage as footage_run
from alm_tf.people import video as video_lib

TRACKS_TXT = "tracks.txt"
THUMBNAILS_DIR = "thumbnails"
PEOPLE_VIDEO = "people.mp4"
RUN_JSON = "run.json"
VIDEO_CODECS = ("libx264", "mpeg4")  # the first one PyAV's FFmpeg has

__all__ = ["FrameClock", "PEOPLE_VIDEO", "RUN_JSON", "THUMBNAILS_DIR", "TRACKS_TXT", "Thumbnails",
           "VideoWriter", "annotate", "default_camera", "mot_rows", "write_footage_files", "write_run_json"]

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


@dataclasses.dataclass
class FrameClock:
    """Seconds of each frame: the container's timestamps, else (frame - 1) / fps."""

    fps: float
    times: dict = dataclasses.field(default_factory=dict)

    def seconds(self, number: int) -> float:
        t = self.times.get(number)
        return round(float((number - 1) / self.fps if t is None else t), 6)


def write_footage_files(out, config, boxes, track_answers, answers, thumbnails: Thumbnails,
                        clock: FrameClock, camera: str, predictor, frames, num_frames: Optional[int],
                        detector: Optional[str], tracker: Optional[str]) -> None:
    """tracks.txt, thumbnails/<id>.jpg, people.mp4 (unless `config.video_out` is
    off) and run.json, under `out`'s temporary names.

    `out`: the caller's staged files; `boxes`: every box of the run,
    `answers` theirs (None where the model did not answer); `frames`: a
    callable giving every frame (number, path, RGB array) again, for the
    video, the frame size and count.
    """
    rows = sorted((b.frame, b.detection.track_id, *b.box, b.detection.score) for b in boxes)
    with open(out.path(TRACKS_TXT), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in mot_rows(rows)))
    thumbnails.write(out.path, [t.track_id for t in track_answers])
    per_frame = _drawn(boxes, track_answers, answers) if config.video_out else None
    seen, size, writer = 0, None, None
    try:
        for number, _, array in frames():
            seen += 1
            if size is None:
                size = [int(array.shape[0]), int(array.shape[1])]
                if per_frame is None:
                    if num_frames is not None:
                        break
                    continue
                writer = VideoWriter(out.path(PEOPLE_VIDEO), clock.fps, *size)
            if writer is not None:
                writer.write(annotate(array, per_frame.get(number, [])))
    finally:
        if writer is not None:
            writer.close()
    attributes = list(predictor.attributes)
    groups = getattr(predictor, "groups", None) or groups_lib.infer(attributes)
    thresholds = getattr(predictor, "model_thresholds", None)
    write_run_json(out.path(RUN_JSON), camera=camera, source=config.video or config.source,
                   fps=float(clock.fps), frame_size=size,
                   num_frames=int(num_frames if num_frames is not None else seen),
                   model={"attributes": attributes,
                          "thresholds": None if thresholds is None else [round(float(t), 6) for t in thresholds],
                          "groups": groups.description()},
                   detector=detector, tracker=tracker)


def _drawn(boxes, track_answers, answers) -> dict:
    """frame number -> [(box, track id, text lines)] of the annotated video
    (`answers[i]`: box i's own answer, None when the model did not answer it)."""
    by_track = {t.track_id: t for t in track_answers}
    per_frame: dict[int, list] = {}
    for b, answer in zip(boxes, answers):
        track = by_track.get(b.detection.track_id)
        shown = track.shown(b.frame, answer) if track is not None else dict(answer or {})
        lines = visualization.answer_lines(shown, f"#{b.detection.track_id}", width=24)[:4]
        per_frame.setdefault(b.frame, []).append((b.box, b.detection.track_id, lines))
    return per_frame


def default_camera(config) -> str:
    return config.camera or footage_run.camera_name(config.video, config.images_root, config.images)
