"""The model stage of a people run: person crops of several frames per call,
and the choice of which boxes of a track the model answers.

A track's answer is the aggregate of its boxes' answers
(`alm_tf.people.tracks`), and neighbouring frames show the same person
almost alike, so a track does not need every box answered:
`select_for_tracks` keeps at most N boxes per track, spread over it (the
track's frames cut into N equal stretches, from each the box with the
highest score, then the largest). Every box is still placed, clipped and
written to tracks.txt and the video; only the chosen ones go through the
model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from alm_tf.people import detections as det_lib
from alm_tf.people import frames as frames_lib
from alm_tf.preprocessing import crops
from alm_tf.preprocessing import image_input
from alm_tf.preprocessing import pixels

__all__ = ["answer_boxes", "placed_boxes", "select_for_tracks"]


def _rank(d: det_lib.Detection) -> tuple[float, float]:
    return (-np.inf if d.score is None else float(d.score), float((d.x2 - d.x1) * (d.y2 - d.y1)))


def select_for_tracks(by_frame: dict[int, list[det_lib.Detection]], per_track: Optional[int]) -> set[tuple[int, int]]:
    """(frame number, position in `by_frame[number]`) of the boxes the model
    answers: at most `per_track` per track (all when None), spread over the
    track (module docstring). Boxes without a track id are all answered."""
    tracks: dict[int, list[tuple[int, int]]] = {}
    for number in sorted(by_frame):
        for k, d in enumerate(by_frame[number]):
            tracks.setdefault(d.track_id, []).append((number, k))
    chosen: set[tuple[int, int]] = set()
    for track_id, keys in tracks.items():
        if per_track is None or len(keys) <= per_track or track_id < 0:
            chosen.update(keys)
            continue
        edges = np.linspace(0, len(keys), per_track + 1).round().astype(int)
        for start, stop in zip(edges[:-1], edges[1:]):
            chosen.add(max(keys[start:stop], key=lambda key: _rank(by_frame[key[0]][key[1]])))
    return chosen


def _predict(predictor, frames: list, boxes: list[frames_lib.PersonBox], numbers: list[int], limit: int) -> dict:
    position = {n: k for k, n in enumerate(numbers)}
    normalized = np.asarray([b.normalized for b in boxes], np.float32)
    indices = np.asarray([position[b.frame] for b in boxes], np.int32)
    boxes_fn = getattr(predictor, "boxes_fn", None)
    if boxes_fn is not None:
        return boxes_fn(frames, normalized, indices)
    out = []  # a predictor of crops only: crop here, by the same rule
    for box, index in zip(normalized, indices):
        frame = frames[index]
        array = pixels.decode_image(frame, limit).numpy() if isinstance(frame, bytes) else frame
        out.append(tf.io.encode_png(crops.crop_array(np.asarray(array, np.uint8), box)).numpy())
    return predictor(out)


class _Calls:
    """Chosen boxes gathered into model calls of at most `size` boxes (their frames once each)."""

    def __init__(self, predictor, size: int, limit: int, on_done: Callable[[int], None]):
        self.predictor, self.size, self.limit, self.on_done = predictor, size, limit, on_done
        self.frames, self.numbers, self.boxes = [], [], []
        self.outputs: dict[str, list] = {}

    def add(self, box: frames_lib.PersonBox, data) -> None:
        if len(self.boxes) >= self.size:
            self.flush()
        if not self.numbers or self.numbers[-1] != box.frame:
            self.frames.append(data)
            self.numbers.append(box.frame)
        self.boxes.append(box)

    def flush(self) -> None:
        if self.boxes:
            result = _predict(self.predictor, self.frames, self.boxes, self.numbers, self.limit)
            for key in ("probabilities", "labels"):
                self.outputs.setdefault(key, []).append(np.asarray(result[key]))
            self.on_done(len(self.boxes))
        self.frames, self.numbers, self.boxes = [], [], []


def placed_boxes(config, numbers, paths, by_frame, exif_orientation: str, times=None):
    """(position in `by_frame[number]`, frame: bytes or RGB array, the box clipped
    to it) of every box, in frame order: the order the model answers them."""
    for number, image, data in frames_lib.iter_frames(config, numbers, paths, times):
        height, width = frames_lib.frame_size(data, config.max_image_pixels, exif_orientation)
        for k, d in enumerate(by_frame[number]):
            yield k, data, frames_lib.clip(d, number, image, height, width)


def answer_boxes(predictor, config, numbers, paths, by_frame, report, times=None, thumbnails=None,
                 chosen: Optional[set[int]] = None):
    """Every box placed in its frame; the model's outputs for the chosen ones.

    Returns (all boxes in frame order, the answered ones' positions in
    that list, {"probabilities", "labels"} of the answered boxes).
    `chosen`: (frame number, position) of the boxes to answer (None: all;
    `select_for_tracks`).
    """
    total = sum(len(v) for v in by_frame.values())
    bar = tqdm(total=total if chosen is None else len(chosen), unit="box", desc="people",
               disable=not config.progress)
    calls = _Calls(predictor, config.boxes_per_call, config.max_image_pixels, bar.update)
    placed, answered = [], []
    exif = getattr(predictor, "exif_orientation", image_input.DEFAULT_EXIF_ORIENTATION)
    try:
        for k, data, box in placed_boxes(config, numbers, paths, by_frame, exif, times):
            if chosen is None or (box.frame, k) in chosen:
                answered.append(len(placed))
                calls.add(box, data)
            placed.append(box)
            if thumbnails is not None:
                thumbnails.offer(box.detection.track_id, box.detection.score, box.box, data)
        calls.flush()
    finally:
        bar.close()
    clipped = [b for b in placed if b.clipped]
    if clipped:
        first = clipped[0].detection
        report(f"clipped {len(clipped)} of {len(placed)} boxes to their frames (first: {first.line}, "
               f"x1={first.x1:g}, y1={first.y1:g}, x2={first.x2:g}, y2={first.y2:g})")
    if not calls.outputs:  # footage with nobody in it
        empty = np.zeros((0, len(predictor.attributes)), np.float32)
        return placed, answered, {"probabilities": empty, "labels": empty.astype(np.int32)}
    return placed, answered, {k: np.concatenate(v) for k, v in calls.outputs.items()}
