"""Tracker and detector quality against ground-truth tracks, computed by
maintained libraries: `motmetrics` (py-motmetrics: the CLEAR MOT and
identity metrics of the MOTChallenge devkit, with box overlaps from
`supervision`) and the `trackers` library's evaluation (`trackers.eval`:
HOTA, its detection and association parts DetA and AssA, averaged over
the IoU thresholds 0.05 ... 0.95 as TrackEval does).

Boxes match when their IoU is at least `iou` (0.5, MOTChallenge's rule).
Detector recall and precision are the same matching with every box its own
id, so identity plays no part.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from alm_tf.people import detections as det_lib

METRICS = ("idf1", "mota", "motp", "precision", "recall", "num_switches", "num_false_positives",
           "num_misses", "num_objects", "mostly_tracked", "num_unique_objects")
#: trackers.eval's HOTA result key -> ours
HOTA_METRICS = {"HOTA": "hota", "DetA": "deta", "AssA": "assa"}
QUALITY_EXTRA = "dev"

__all__ = ["METRICS", "mot_metrics", "read_mot", "read_visibility"]


def _require():
    try:
        import motmetrics
        import supervision
        import trackers.eval
    except ImportError:
        raise ValueError(f"tracking metrics need motmetrics, supervision and trackers: pip install "
                         f"'alm-tf[{QUALITY_EXTRA},video]'") from None
    return motmetrics, supervision, trackers.eval


def read_mot(path: str) -> list[det_lib.Detection]:
    """A MOTChallenge file's boxes (alm_tf.people.detections)."""
    found, _ = det_lib.read_detections(path, need_ids=False)
    return found


def read_visibility(path: str) -> dict[tuple[int, int], float]:
    """(frame, id) -> the visibility column (9th) of a MOTChallenge gt file."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) >= 9:
                out[(int(float(fields[0])), int(float(fields[1])))] = float(fields[8])
    return out


def _by_frame(boxes: Iterable[det_lib.Detection]) -> dict[int, list[det_lib.Detection]]:
    out: dict[int, list[det_lib.Detection]] = {}
    for d in boxes:
        out.setdefault(int(d.frame), []).append(d)
    return out


def mot_metrics(truth: Iterable[det_lib.Detection], found: Iterable[det_lib.Detection], iou: float = 0.5,
                ignore_ids: bool = False) -> dict[str, float]:
    """METRICS and HOTA_METRICS' values of `found` against `truth` (per-frame
    boxes with track ids).

    ignore_ids: every found box counts as its own track (detector recall
    and precision; IDF1, HOTA's AssA and switches are then meaningless).
    """
    mm, sv, trackers_eval = _require()
    truth_frames, found_frames = _by_frame(truth), _by_frame(found)
    accumulator = mm.MOTAccumulator(auto_id=False)
    hota_inputs: tuple[list, list, list] = ([], [], [])
    serial = 0
    for frame in sorted(set(truth_frames) | set(found_frames)):
        t, f = truth_frames.get(frame, []), found_frames.get(frame, [])
        if ignore_ids:
            ids = list(range(serial, serial + len(f)))
            serial += len(f)
        else:
            ids = [d.track_id for d in f]
        if t and f:
            overlap = sv.box_iou_batch(np.asarray([[d.x1, d.y1, d.x2, d.y2] for d in t], np.float64),
                                       np.asarray([[d.x1, d.y1, d.x2, d.y2] for d in f], np.float64))
            distance = np.where(overlap >= iou, 1.0 - overlap, np.nan)
        else:
            overlap = np.zeros((len(t), len(f)))
            distance = overlap
        accumulator.update([d.track_id for d in t], ids, distance, frameid=frame)
        hota_inputs[0].append(np.asarray([d.track_id for d in t], np.int64))
        hota_inputs[1].append(np.asarray(ids, np.int64))
        hota_inputs[2].append(np.asarray(overlap, np.float64))
    summary = mm.metrics.create().compute(accumulator, metrics=list(METRICS), name="sequence")
    out = {name: float(summary[name].iloc[0]) for name in METRICS}
    hota = trackers_eval.compute_hota_metrics(*hota_inputs)
    out.update({ours: float(hota[theirs]) for theirs, ours in HOTA_METRICS.items()})
    return out
