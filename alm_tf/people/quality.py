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

__all__ = ["crops_per_track_ma", "detection_quality", "found_people_ma", "match_boxes", "mean_accuracy", "per_box_and_track_ma"]


def detection_quality(frames: Sequence, truth: Sequence[det_lib.Detection], detector,
                      tracker_config: tracking.TrackerConfig, fps: float, every: int = 1,
                      visibility: Optional[dict] = None, min_visibility: float = 0.5) -> dict:
    """Detector precision / recall (every frame) and the tracker's metrics on `frames`.

    visibility: (frame, id) -> visible share of each true box
    (`mot_metrics.read_visibility`): adds the recall of the boxes at least
    `min_visibility` visible (`detector_recall_visible`), and their share.
    """
    raw = []
    for number, _, frame in frames:
        boxes, scores = detector(frame)
        raw += [det_lib.Detection(number, None, det_lib.NO_ID, *map(float, b), float(s), "")
                for b, s in zip(boxes, scores)]
    found, _ = run.detect_tracks(frames, detector, tracking.make_tracker(tracker_config, fps), every)
    det = mot_metrics.mot_metrics(truth, raw, ignore_ids=True)
    trk = mot_metrics.mot_metrics(truth, found)
    extra = {}
    if visibility is not None:
        seen = [d for d in truth if visibility.get((int(d.frame), d.track_id), 1.0) >= min_visibility]
        extra = {"visible_share": len(seen) / max(len(truth), 1),
                 "detector_recall_visible": mot_metrics.mot_metrics(seen, raw, ignore_ids=True)["recall"]}
    return {**extra, "detector_precision": det["precision"], "detector_recall": det["recall"],
            "idf1": trk["idf1"], "mota": trk["mota"], "hota": trk["hota"], "deta": trk["deta"],
            "assa": trk["assa"], "id_switches": int(trk["num_switches"]),
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


def load(spec: str, upscale: float = 1.0, threshold: Optional[float] = None,
         hog_model: str = detectors.DEFAULT_HOG_MODEL) -> detectors.Detector:
    return detectors.load_detector(detectors.DetectorConfig(spec, threshold=threshold, upscale=upscale,
                                                            hog_model=hog_model))


def match_boxes(truth: Sequence[det_lib.Detection], found: Sequence[det_lib.Detection],
                iou: float = 0.5) -> dict[int, int]:
    """index in `found` -> true track id: each found box's best true box in its
    frame, when their IoU is at least `iou` (greedy, highest overlap first)."""
    import supervision as sv

    truth_at: dict[int, list[det_lib.Detection]] = {}
    for d in truth:
        truth_at.setdefault(int(d.frame), []).append(d)
    found_at: dict[int, list[int]] = {}
    for i, d in enumerate(found):
        found_at.setdefault(int(d.frame), []).append(i)
    matched: dict[int, int] = {}
    for frame, indices in found_at.items():
        people = truth_at.get(frame, [])
        if not people:
            continue
        overlap = sv.box_iou_batch(np.asarray([[found[i].x1, found[i].y1, found[i].x2, found[i].y2] for i in indices]),
                                   np.asarray([[d.x1, d.y1, d.x2, d.y2] for d in people]))
        for flat in np.argsort(-overlap, axis=None):
            r, c = np.unravel_index(flat, overlap.shape)
            if overlap[r, c] < iou:
                break
            if indices[r] not in matched and people[c].track_id not in {matched.get(j) for j in indices}:
                matched[indices[r]] = people[c].track_id
    return matched


def found_people_ma(people_file: str, truth: Sequence[det_lib.Detection], boxes_csv: str, tracks_csv: str,
                    tracks_txt: str) -> dict:
    """Per-box and per-track mA of a detector + tracker run against people.json.

    A box counts when it overlaps a true box of its frame (IoU >= 0.5) and is
    judged against that person; a track is judged against the person most
    of its boxes (tracks.txt) matched, and counts when one did.
    """
    import pandas as pd

    with open(people_file, encoding="utf-8") as f:
        people = json.load(f)
    boxes, tracks = pd.read_csv(boxes_csv), pd.read_csv(tracks_csv)
    names = [a for a in people["attributes"] if a in boxes.columns and a in tracks.columns
             and pd.api.types.is_numeric_dtype(tracks[a])]
    labels = {int(k): v["labels"] for k, v in people["tracks"].items()}
    answered = [det_lib.Detection(int(r.frame), None, int(r.id), float(r.x1), float(r.y1), float(r.x2),
                                  float(r.y2), None, "") for r in boxes.itertuples()]
    box_person = match_boxes(truth, answered)
    drawn = mot_metrics.read_mot(tracks_txt)
    votes: dict[int, list[int]] = {}
    for i, person in match_boxes(truth, drawn).items():
        votes.setdefault(drawn[i].track_id, []).append(person)
    track_person = {tid: max(set(v), key=v.count) for tid, v in votes.items()}

    def score(rows, person_of):
        pairs = [(labels[person_of[i]], row) for i, row in enumerate(rows) if i in person_of]
        if not pairs:
            return float("nan"), 0
        truth_table = np.asarray([[p[a] for a in names] for p, _ in pairs])
        return mean_accuracy(truth_table, np.asarray([row for _, row in pairs])), len(pairs)

    box_ma, box_count = score(boxes[names].to_numpy(), box_person)
    track_rows = tracks[names].to_numpy()
    by_row = {i: track_person[int(t)] for i, t in enumerate(tracks["id"]) if int(t) in track_person}
    track_ma, track_count = score(track_rows, by_row)
    return {"per_box_ma": box_ma, "per_track_ma": track_ma, "boxes_matched": box_count, "boxes": len(boxes),
            "tracks_matched": track_count, "tracks": len(tracks), "attributes": len(names)}


def crops_per_track_ma(predictor, info: dict, output_dir: str, crops_per_track: Sequence[Optional[int]]) -> list[dict]:
    """Per-track mA of the true tracks of a synthetic sequence (`info`: what
    `synth_frames.generate_frames` returned) when each track is answered
    from at most N of its boxes (`answering.select_for_tracks`), for each N
    of `crops_per_track` (None: every box); and the per-box mA of all boxes.

    The model answers every box once (alm-predict --tracks with the truth);
    the sampled answers are the mean of the chosen boxes' probabilities
    against the model's thresholds, as a run with --crops_per_track gives.
    """
    from alm_tf.people import answering
    from alm_tf.people import run as people_run

    config = people_run.PeopleConfig("tracks", info["gt"], output_dir, images=tuple(info["frames"]),
                                     crops_per_track=None, pictures=False, video_out=False, progress=False)
    plan = people_run.plan_people(config, report=lambda line: None)
    result = people_run.predict_people(predictor, config, plan=plan, report=lambda line: None)
    keys = [(n, k) for n in plan.numbers for k in range(len(plan.by_frame[n]))]
    track_of = np.asarray([plan.by_frame[n][k].track_id for n, k in keys])
    with open(info["people"], encoding="utf-8") as f:
        people = json.load(f)
    names = list(predictor.attributes)
    truth_of = {int(t): [v["labels"][a] for a in names] for t, v in people["tracks"].items()}
    thresholds = np.asarray(predictor.model_thresholds, np.float64)
    probabilities = np.asarray(result.probabilities, np.float64)
    box_ma = mean_accuracy(np.asarray([truth_of[t] for t in track_of]), result.labels)
    rows = []
    for n in crops_per_track:
        chosen = answering.select_for_tracks(plan.by_frame, n)
        mask = np.asarray([key in chosen for key in keys])
        ids = sorted(set(track_of.tolist()))
        answers = [probabilities[mask & (track_of == t)].mean(axis=0) > thresholds for t in ids]
        rows.append({"crops_per_track": n or 0, "boxes_answered": int(mask.sum()), "boxes": len(keys),
                     "tracks": len(ids), "per_box_ma": box_ma,
                     "per_track_ma": mean_accuracy(np.asarray([truth_of[t] for t in ids]), np.asarray(answers))})
    return rows
