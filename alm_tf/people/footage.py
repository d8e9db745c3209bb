"""Frames -> person boxes with track ids (a detector, then a tracker).

`detect_tracks` turns every frame of a video or of image files into
`alm_tf.people.detections.Detection`s with track ids, the same records a
`--tracks` file gives, so the rest of alm-predict (the model per box, the
per-track aggregation, the files) is the one path for both.
With `every=K` the detector runs on every K-th frame; the frames between
keep the boxes the tracker gave on the last detected frame.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Optional

import numpy as np
from PIL import Image

from alm_tf.people import detections as det_lib
from alm_tf.people import video as video_lib
from alm_tf.people import detectors
from alm_tf.people import tracking

DEFAULT_FRAMES_FPS = 25.0  # frames given as image files, without --fps

__all__ = ["DEFAULT_FRAMES_FPS", "FootageConfig", "detect_tracks", "iter_source_frames"]


@dataclasses.dataclass(frozen=True)
class FootageConfig:
    """The front half of alm-predict on footage without a boxes file.

    Args:
        detector: DetectorConfig.
        tracker: TrackerConfig.
        every: the detector runs on every `every`-th frame (1: all).
    """

    detector: detectors.DetectorConfig = detectors.DetectorConfig()
    tracker: tracking.TrackerConfig = tracking.TrackerConfig()
    every: int = 1

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"detector_every must be >= 1. Received: {self.every}")


def read_rgb(path: str) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); DetectionsError naming a bad file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError):
        raise det_lib.DetectionsError(f"frame {path!r} is not an image") from None


def iter_source_frames(video: Optional[str], images: Optional[Iterable[str]],
                       numbers: Optional[dict[str, int]] = None) -> Iterator[tuple[int, Optional[str], np.ndarray]]:
    """(frame number from 1, image path or None, RGB array) of a video or of image files."""
    if video is not None:
        for number, array in video_lib.iter_frames(video):
            yield number, None, array
        return
    for k, path in enumerate(images or (), start=1):
        yield (numbers or {}).get(path, k), path, read_rgb(path)


def detect_tracks(frames: Iterable[tuple[int, Optional[str], np.ndarray]], detector, tracker, every: int = 1,
                  on_frame: Optional[Callable[[int], None]] = None) -> tuple[list[det_lib.Detection], int]:
    """Detections with track ids (from 1) of every frame; and the number of frames seen."""
    found: list[det_lib.Detection] = []
    held: tuple = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    seen = 0
    for k, (number, path, frame) in enumerate(frames):
        seen += 1
        if k % every == 0:
            boxes, scores = detector(frame)
            held = tracker.update(boxes, scores)
        for (x1, y1, x2, y2), score, tid in zip(*held):
            found.append(det_lib.Detection(number, path, int(tid) + 1, float(x1), float(y1), float(x2),
                                           float(y2), float(score), f"{tracker.name} frame {number}"))
        if on_frame is not None:
            on_frame(number)
    if not seen:
        raise video_lib.VideoError("the footage has no frames")
    return found, seen


def camera_name(video: Optional[str], images_root: Optional[str], images: Optional[Iterable[str]]) -> str:
    """The default camera name: the video's file stem, or the frames' folder name."""
    if video is not None:
        return os.path.splitext(os.path.basename(video))[0]
    folder = images_root or os.path.dirname(next(iter(images or ()), "")) or "."
    name = os.path.basename(os.path.normpath(os.path.abspath(folder)))
    if name in ("img1", "images", "frames"):  # MOT's layout: the sequence is the folder above
        name = os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(folder)))) or name
    return name
