"""One answer per track: per-frame probabilities of a person, aggregated.

A tracker links a person's boxes over frames (a MOT file's `id`). The
model answers each box; `aggregate` turns a track's per-frame
probabilities into one:

- `mean`: the mean over the track's frames;
- `ema`: exponential smoothing in frame order, s_1 = p_1,
  s_t = smoothing * p_t + (1 - smoothing) * s_(t-1); the answer is the
  last s (recent frames weigh more);

then the labels (aggregated probability > threshold, the model's or the
request's) and the readable answers (`alm_tf.groups`). Tracks with fewer
frames than `min_track_length` get no row. Attributes that change along a
track stay per frame (`per_frame`, default the `orientation` group: PA-100K
labels gender and age per tracklet but not orientation): they are not
aggregated, and their answers are given as runs of equal answers over the
frames (`back@1-12 side@13-20`). Deterministic: float64 sums in frame order,
tracks in id order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from alm_tf import groups as groups_lib

AGGREGATIONS = ("mean", "ema")
DEFAULT_AGGREGATION = "mean"
DEFAULT_SMOOTHING = 0.3
DEFAULT_MIN_TRACK_LENGTH = 1
#: Answer keys that stay per frame by default (those the model has).
DEFAULT_PER_FRAME = ("orientation",)

__all__ = [
    "AGGREGATIONS",
    "TrackAnswer",
    "TrackConfig",
    "aggregate",
    "aggregate_tracks",
    "runs",
    "runs_text",
]


@dataclasses.dataclass(frozen=True)
class TrackConfig:
    """How tracks are aggregated.

    Args:
        aggregation: `mean` or `ema`.
        smoothing: the `ema` factor in (0, 1] (1: the last frame alone).
        min_track_length: tracks with fewer frames get no row (>= 1).
        per_frame: group or attribute names that stay per frame; None: the
            DEFAULT_PER_FRAME keys the model has. A name must exist when given.
    """

    aggregation: str = DEFAULT_AGGREGATION
    smoothing: float = DEFAULT_SMOOTHING
    min_track_length: int = DEFAULT_MIN_TRACK_LENGTH
    per_frame: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}. "
                             f"Received: aggregation={self.aggregation!r}")
        if not (isinstance(self.smoothing, (int, float)) and 0.0 < float(self.smoothing) <= 1.0):
            raise ValueError(f"smoothing must lie in (0, 1]. Received: smoothing={self.smoothing!r}")
        if isinstance(self.min_track_length, bool) or int(self.min_track_length) != self.min_track_length \
                or self.min_track_length < 1:
            raise ValueError(f"min_track_length must be an integer >= 1. "
                             f"Received: min_track_length={self.min_track_length!r}")
        if self.per_frame is not None:
            object.__setattr__(self, "per_frame", tuple(self.per_frame))

    def per_frame_keys(self, groups: groups_lib.AttributeGroups) -> tuple[str, ...]:
        """The answer keys that stay per frame, in answer order."""
        if self.per_frame is None:
            wanted = {k for k in DEFAULT_PER_FRAME if k in groups.keys}
        else:
            wanted = {groups.key_of(name) for name in self.per_frame}
        return tuple(k for k in groups.keys if k in wanted)


def aggregate(probabilities: np.ndarray, aggregation: str = DEFAULT_AGGREGATION,
              smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """(T, M) per-frame probabilities in frame order -> (M,) float64."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or not len(probabilities):
        raise ValueError(f"expected (T, M) probabilities with T >= 1. Received: {probabilities.shape}")
    if aggregation == "mean":
        return probabilities.mean(axis=0)
    if aggregation == "ema":
        state = probabilities[0].copy()
        for row in probabilities[1:]:
            state = smoothing * row + (1.0 - smoothing) * state
        return state
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}. Received: {aggregation!r}")


def runs(frames: Sequence[int], values: Sequence[Any]) -> list[dict]:
    """Runs of equal consecutive values: [{"value", "first_frame", "last_frame"}]."""
    out: list[dict] = []
    for frame, value in zip(frames, values):
        if out and out[-1]["value"] == value:
            out[-1]["last_frame"] = int(frame)
        else:
            out.append({"value": value, "first_frame": int(frame), "last_frame": int(frame)})
    return out


def runs_text(items: list[dict]) -> str:
    """Runs as one CSV cell: `back@1-12 side@13-20` (a list value joined by `;`)."""
    parts = []
    for item in items:
        value = groups_lib.AttributeGroups.cell(item["value"])
        span = (str(item["first_frame"]) if item["first_frame"] == item["last_frame"]
                else f"{item['first_frame']}-{item['last_frame']}")
        parts.append(f"{value}@{span}")
    return " ".join(parts)


@dataclasses.dataclass
class TrackAnswer:
    """One track's row.

    probabilities: (M,) aggregated (NaN for per-frame attributes);
    labels: (M,) 0/1 (-1 for per-frame attributes); answers: the
    aggregated answer keys; per_frame: key -> runs of its answers;
    per_frame_labels: attribute index -> runs of its labels.
    """

    track_id: int
    frames: list[int]
    probabilities: np.ndarray
    labels: np.ndarray
    answers: dict[str, Any]
    per_frame: dict[str, list[dict]]
    per_frame_labels: dict[int, list[dict]] = dataclasses.field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def shown(self, frame: int, answer: Optional[dict] = None) -> dict[str, Any]:
        """What a picture of `frame` shows for this track: its answers, with the
        per-frame keys of that frame (`answer`, the box's own answer, when
        the model answered it; else the run reaching furthest up to `frame`)."""
        out = dict(self.answers)
        for key, items in self.per_frame.items():
            if answer is not None:
                out[key] = answer[key]
            elif items:
                before = [item for item in items if item["first_frame"] <= frame]
                out[key] = (before[-1] if before else items[0])["value"]
        return out


def aggregate_tracks(track_ids: Sequence[int], frames: Sequence[int], probabilities: np.ndarray,
                     labels: np.ndarray, groups: groups_lib.AttributeGroups, config: TrackConfig,
                     thresholds: groups_lib.ThresholdSpec = None,
                     model_thresholds: Optional[Sequence[float]] = None,
                     track_frames: Optional[dict[int, Sequence[int]]] = None
                     ) -> tuple[list[TrackAnswer], list[int]]:
    """One TrackAnswer per track long enough, in id order.

    Args:
        track_ids, frames: (B,) of every box; probabilities, labels: (B, M)
            per-box outputs (labels after the request's thresholds).
        groups: the model's AttributeGroups.
        config: TrackConfig.
        thresholds: the request's thresholds (as given to alm-predict).
        model_thresholds: the model's (M,) thresholds, for attributes the
            request leaves alone (aggregated probability > threshold).
        track_frames: track id -> every frame of the track, when the boxes
            given are a sample of it: a track's frames, length and span are
            then the whole track's (default: the frames given).

    Returns:
        (answers, ids of the tracks shorter than min_track_length).
    """
    track_ids = np.asarray(track_ids, np.int64)
    frames = np.asarray(frames, np.int64)
    probabilities = np.asarray(probabilities, np.float32)
    labels = np.asarray(labels, np.int32)
    m = len(groups.attributes)
    base = np.asarray(model_thresholds if model_thresholds is not None else [0.5] * m, np.float64)
    request = groups_lib.request_thresholds(thresholds, groups.attributes)
    cut = base if request is None else np.where(np.isnan(request), base, request)
    per_frame_keys = config.per_frame_keys(groups)
    per_frame_attrs = sorted({i for k in per_frame_keys for i in groups.attribute_indices(k)})
    answers, short = [], []
    for track in sorted(set(track_ids.tolist())):
        rows = np.flatnonzero(track_ids == track)
        rows = rows[np.argsort(frames[rows], kind="stable")]
        span = sorted(track_frames[track]) if track_frames is not None else frames[rows].tolist()
        if len(span) < config.min_track_length:
            short.append(int(track))
            continue
        mean = aggregate(probabilities[rows], config.aggregation, config.smoothing)
        track_labels = (mean > cut).astype(np.int32)
        answer = groups.answer(mean, track_labels)
        per_frame = {}
        for key in per_frame_keys:
            values = [groups.answer(probabilities[r], labels[r])[key] for r in rows]
            per_frame[key] = runs(frames[rows].tolist(), values)
            answer.pop(key)
        label_runs = {m: runs(frames[rows].tolist(), labels[rows, m].tolist()) for m in per_frame_attrs}
        mean[per_frame_attrs] = np.nan
        track_labels[per_frame_attrs] = -1
        answers.append(TrackAnswer(int(track), span, mean, track_labels, answer,
                                   per_frame, label_runs))
    return answers, short
