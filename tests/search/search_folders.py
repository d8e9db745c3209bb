"""People folders as alm-predict writes them (docs of the people output:
tracks.csv, predictions.jsonl, run.json, thumbnails/), built from given
probabilities, for the search tests."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
from PIL import Image

from alm_tf import groups as groups_lib
from alm_tf.data import synth

ATTRIBUTES = synth.ATTRIBUTES
GROUPS = [dict(g, attributes=list(g["attributes"]), values=list(g["values"])) for g in synth.GROUPS]
THRESHOLDS = [0.5] * len(ATTRIBUTES)
#: One colour per track id, so a screenshot can find each thumbnail.
COLOURS = ((230, 30, 30), (30, 160, 30), (30, 60, 230), (230, 200, 20), (160, 30, 200), (20, 200, 200))


def model(attributes=ATTRIBUTES, groups=GROUPS, thresholds=None):
    description = groups_lib.from_description({"groups": groups}, attributes).description()
    return {"attributes": list(attributes), "thresholds": list(thresholds or [0.5] * len(attributes)),
            "groups": description}


def write_folder(folder, probabilities, camera="cam1", source="cam1.mp4", times=None, lengths=None,
                 model_description=None, thumbnails=True, run_json=True):
    """A people folder with a track per row of `probabilities` (N, M), ids 1..N."""
    description = model_description or model()
    attributes = description["attributes"]
    groups = groups_lib.from_description(description["groups"], attributes)
    probabilities = np.asarray(probabilities, np.float64)
    n = len(probabilities)
    lengths = lengths if lengths is not None else [10] * n
    times = times if times is not None else [(2.0 * k, 2.0 * k + 1.5) for k in range(n)]
    thresholds = np.asarray(description["thresholds"])
    os.makedirs(os.path.join(folder, "thumbnails"), exist_ok=True)
    header = (["id", "first_frame", "last_frame", "num_frames", "camera", "start_time", "end_time"]
              + list(groups.csv_columns) + [c for a in attributes for c in (f"{a}_prob", a)])
    rows, records = [], []
    for k, p in enumerate(probabilities):
        labels = (p > thresholds).astype(int)
        answer = groups.answer(p, labels)
        track = k + 1
        start, end = times[k]
        rows.append([track, 1 + 5 * k, 1 + 5 * k + lengths[k] - 1, lengths[k], camera, start, end]
                    + groups.csv_values(answer)
                    + [c for q, y in zip(p, labels) for c in (f"{q:.6f}", int(y))])
        records.append({"id": track, "camera": camera, "start_time": start, "end_time": end,
                        "answers": answer, "probabilities": {a: round(float(q), 6) for a, q in zip(attributes, p)}})
        if thumbnails:
            Image.new("RGB", (32, 64), COLOURS[k % len(COLOURS)]).save(
                os.path.join(folder, "thumbnails", f"{track}.jpg"), quality=95)
    with open(os.path.join(folder, "tracks.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    with open(os.path.join(folder, "predictions.jsonl"), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    if run_json:
        with open(os.path.join(folder, "run.json"), "w", encoding="utf-8") as f:
            json.dump({"camera": camera, "source": source, "fps": 10.0, "frame_size": [240, 320],
                       "num_frames": 5 * n + 20, "model": description, "detector": None,
                       "tracker": None}, f)
    return folder


def probs(**by_attribute):
    """One track's (M,) probabilities: 0.1 for every attribute but those given."""
    p = np.full(len(ATTRIBUTES), 0.1)
    for name, value in by_attribute.items():
        p[ATTRIBUTES.index(name)] = value
    return p
