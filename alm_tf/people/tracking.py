"""Tracking by the `trackers` library (Apache-2.0; Roboflow's SORT, ByteTrack and
OC-SORT): person boxes of each frame in, the same boxes with track ids out.

The `video` extra installs `trackers` 2.6 or a later 2.x release, which has
all three. A parameter a tracker class does not take is refused (one line).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Optional

import numpy as np

from alm_tf.people import detectors

# --tracker name -> the `trackers` class
TRACKERS = {"bytetrack": "ByteTrackTracker", "sort": "SORTTracker", "ocsort": "OCSORTTracker"}
DEFAULT_TRACKER = "bytetrack"
#: TrackerConfig field -> its alm-predict flag
FLAG_NAMES = {"lost_track_buffer": "track_buffer", "track_activation_threshold": "track_threshold",
              "minimum_iou_threshold": "match_iou", "minimum_consecutive_frames": "track_min_frames"}

__all__ = ["TRACKERS", "TrackerConfig", "TrackerError", "make_tracker"]


class TrackerError(ValueError):
    """A tracker that cannot be made (one line)."""


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """The tracker and its main parameters (None: the library's default).

    Args:
        name: a key of TRACKERS.
        lost_track_buffer: frames a lost track is kept before it ends.
        track_activation_threshold: the score a box needs to start a track.
        minimum_iou_threshold: the overlap a box needs to join a track.
        minimum_consecutive_frames: frames before a new track gets its id.
    """

    name: str = DEFAULT_TRACKER
    lost_track_buffer: Optional[int] = None
    track_activation_threshold: Optional[float] = None
    minimum_iou_threshold: Optional[float] = None
    minimum_consecutive_frames: Optional[int] = None

    def __post_init__(self) -> None:
        if self.name not in TRACKERS:
            raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}. Received: {self.name!r}")
        if self.lost_track_buffer is not None and self.lost_track_buffer < 1:
            raise ValueError(f"track_buffer must be >= 1. Received: {self.lost_track_buffer}")
        if self.minimum_consecutive_frames is not None and self.minimum_consecutive_frames < 1:
            raise ValueError(f"track_min_frames must be >= 1. Received: {self.minimum_consecutive_frames}")
        for name, flag in (("track_activation_threshold", "track_threshold"),
                           ("minimum_iou_threshold", "match_iou")):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{flag} must be in [0, 1]. Received: {value}")


class Tracker:
    """`update(boxes (N, 4) pixels, scores (N,))` -> (boxes (M, 4), scores (M,), ids (M,))."""

    def __init__(self, config: TrackerConfig, fps: float):
        try:
            import supervision as sv
            import trackers
        except ImportError as e:
            raise TrackerError(detectors.missing_module_message("tracking needs the 'trackers' package",
                                                                e)) from None
        cls = getattr(trackers, TRACKERS[config.name], None)
        if cls is None:
            raise TrackerError(f"--tracker={config.name} needs a newer 'trackers' release than the "
                               f"installed one: pip install 'alm-tf[{detectors.EXTRA}]'")
        kwargs = {k: v for k, v in dataclasses.asdict(config).items() if k != "name" and v is not None}
        accepted = inspect.signature(cls.__init__).parameters
        for key in kwargs:
            if key not in accepted:
                raise TrackerError(f"--{FLAG_NAMES[key]} does not apply to --tracker={config.name}")
        self._sv = sv
        self.name = config.name
        self._tracker = cls(frame_rate=float(fps), **kwargs)
        # The library counts track ids per class, across instances: restart them, so that a
        # sequence's ids do not depend on the sequences tracked before it in the process.
        if hasattr(self._tracker, "reset"):
            self._tracker.reset()

    def update(self, boxes: np.ndarray, scores: np.ndarray):
        detections = self._sv.Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                                          confidence=np.asarray(scores, np.float32).reshape(-1),
                                          class_id=np.zeros(len(scores), int))
        out = self._tracker.update(detections)
        ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], np.int64).reshape(-1)
        keep = ids >= 0
        confidence = out.confidence if out.confidence is not None else np.ones(len(out))
        return out.xyxy[keep], np.asarray(confidence)[keep], ids[keep]


def make_tracker(config: TrackerConfig, fps: float) -> Tracker:
    """A fresh tracker for one sequence."""
    return Tracker(config, fps)
