"""Measured quality of the footage path on synthetic sequences with known truth:
detector recall / precision and tracker IDF1 / MOTA (alm_tf.people.mot_metrics),
and the attribute model's per-box against per-track mean accuracy (mA) on the
same people (each box and each track judged against its person's true labels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Optional

import numpy as np

from alm_tf.people import detections as det_lib
from alm_tf.people import detectors
from alm_tf.people import mot_metrics
from alm_tf.people import footage as run
from alm_tf.people import tracking

__all__ = ["detection_quality", "mean_accuracy", "per_box_and_track_ma"]


def detection_quality(frames: Sequence, truth: Sequence[det_lib.Detection], detector,
                      tracker_config: tracking.TrackerConfig, fps: float, every: int = 1) -> dict:
    """Detector precision / recall (every frame) and the tracker's metrics on `frames`."""
    raw = []
    for number, _, frame in frames:
        boxes, scores = detector(frame)
        raw += [det_lib.Detection(number, None, det_lib.NO_ID, *map(float, b), float(s), "")
                for b, s in zip(boxes, scores)]
    found, _ = run.detect_tracks(frames, detector, tracking.make_tracker(tracker_config, fps), every)
    det = mot_metrics.mot_metrics(truth, raw, ignore_ids=True)
    trk = mot_metrics.mot_metrics(truth, found)
    return {"detector_precision": det["precision"], "detector_recall": det["recall"],
            "idf1": trk["idf1"], "mota": trk["mota"], "id_switches": int(trk["num_switches"]),
            "tracks_found": len({d.track_id for d in found}), "people": int(trk["num_unique_objects"])}


def mean_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """mA: the mean over attributes of (recall of positives + recall of negatives) / 2
    (attributes with only one class in `truth` count that class's recall)."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    scores = []
    for m in range(truth.shape[1]):
        t, p = truth[:, m], predicted[:, m]
        parts = [float((p[t] == 1).mean())] if t.any() else []
        parts += [float((p[~t] == 0).mean())] if (~t).any() else []
        scores.append(np.mean(parts))
    return float(np.mean(scores))


def per_box_and_track_ma(people_file: str, boxes_csv: str, tracks_csv: str,
                         attributes: Optional[Sequence[str]] = None) -> dict:
    """Per-box and per-track mA of an alm-predict --tracks=gt run against people.json."""
    import pandas as pd

    with open(people_file, encoding="utf-8") as f:
        people = json.load(f)
    names = [a for a in (attributes or people["attributes"])]
    boxes, tracks = pd.read_csv(boxes_csv), pd.read_csv(tracks_csv)
    names = [a for a in names if a in boxes.columns and a in tracks.columns
             and pd.api.types.is_numeric_dtype(tracks[a])]

    def table(frame):
        truth = np.asarray([[people["tracks"][str(i)]["labels"][a] for a in names] for i in frame["id"]])
        return mean_accuracy(truth, frame[names].to_numpy())

    return {"per_box_ma": table(boxes), "per_track_ma": table(tracks), "boxes": len(boxes),
            "tracks": len(tracks), "attributes": len(names)}


def load(spec: str, upscale: float = 1.0) -> detectors.Detector:
    return detectors.load_detector(detectors.DetectorConfig(spec, upscale=upscale))
