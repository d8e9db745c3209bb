"""Retrieval quality of a search: mean average precision and precision@k
against people whose true attributes are known.

A track is relevant to a query when its true labels satisfy every term
(`Term` semantics on 0/1 labels: a literal holds when the label says so;
an exclusive group's value when its attribute is 1). Three rankings are
scored over the same tracks:

- `ranked`: every track, by the query's joint log-probability;
- `strict`: only the tracks whose thresholded answers satisfy every term,
  by score (relevant tracks it leaves out count as never found);
- `random`: a uniformly random order, whose expected precision at every
  rank is the base rate of relevant tracks (its expected average precision
  is about the base rate too, a little above it on few tracks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alm_tf.search.query import Term, parse_query
from alm_tf.search.ranking import Index

#: Queries of one to four terms over alm-synth's attributes (`alm_tf.data.synth`).
SYNTH_QUERIES = (
    "female", "backpack", "hat -glasses", "female long_hair", "-female short_sleeves", "skirt|shorts",
    "gender=female hair=long backpack", "boots clothing=dark", "hat backpack -female",
    "female long_hair -hat skirt", "-backpack -hat glasses", "gender=male sleeves=short boots",
)

#: The colour queries, for people drawn with named clothing colours
#: (`alm-synth-frames --colours`; a model trained on `alm-synth --colours`).
#: Black is drawn only as dark clothing, on both garments (`alm_tf.data.synth`).
COLOUR_QUERIES = (
    "upper_color=red", "upper_color=blue|green", "upper_color=white lower_color=blue|green",
    "female upper_color=red", "lower_color=purple -backpack",
)

__all__ = ["COLOUR_QUERIES", "SYNTH_QUERIES", "average_precision", "evaluate", "match_tracks", "read_people_json",
           "relevant"]


def average_precision(hits: Sequence[bool], num_relevant: int) -> float:
    """AP of a ranked list (`hits` in rank order) with `num_relevant` relevant items in all."""
    if num_relevant == 0:
        return float("nan")
    hits = np.asarray(hits, bool)
    ranks = np.flatnonzero(hits) + 1
    return float(np.sum(np.arange(1, len(ranks) + 1) / ranks) / num_relevant)


def relevant(terms: Sequence[Term], labels: Mapping[str, int]) -> bool:
    """Whether true 0/1 labels satisfy every term."""
    for term in terms:
        held = any(int(labels[lit.attribute]) == (1 if lit.present else 0) for lit in term.literals)
        if held == term.negated:
            return False
    return True


def read_people_json(path: str, camera: str) -> dict:
    """alm-synth-frames' people.json as {(camera, track id): {attribute: 0/1}}."""
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    return {(camera, int(k)): dict(v["labels"]) for k, v in payload["tracks"].items()}


def _iou(a, b) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


def match_tracks(found: Sequence, truth: Sequence, iou: float = 0.5) -> dict[int, int]:
    """{found track id: true track id} for tracks found by a detector and tracker.

    `found`, `truth`: per-frame boxes with track ids (`alm_tf.people.mot_metrics.read_mot`).
    A found track is the true person whose box overlaps it (IoU >= `iou`) in
    the most frames, when that is at least half of the track's frames;
    otherwise it is no one (a false track, relevant to no query). A person
    split into several tracks is each of them.
    """
    by_frame: dict[int, list] = {}
    for box in truth:
        by_frame.setdefault(int(box.frame), []).append(box)
    votes: dict[int, dict[int, int]] = {}
    lengths: dict[int, int] = {}
    for box in found:
        lengths[box.track_id] = lengths.get(box.track_id, 0) + 1
        overlaps = [(_iou(box, t), t.track_id) for t in by_frame.get(int(box.frame), [])]
        best = max(overlaps, default=(0.0, None))
        if best[0] >= iou:
            counts = votes.setdefault(box.track_id, {})
            counts[best[1]] = counts.get(best[1], 0) + 1
    matched = {}
    for track, counts in votes.items():
        person, frames = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
        if 2 * frames >= lengths[track]:
            matched[track] = person
    return matched


def _scores(hits: list, num_relevant: int, k: int) -> tuple[float, float]:
    return average_precision(hits, num_relevant), float(np.sum(hits[:k]) / k)


def evaluate(index: Index, truth: Mapping, queries: Sequence[str] = SYNTH_QUERIES, k: int = 10,
             unfound: Sequence[Mapping] = ()) -> pd.DataFrame:
    """A row per query: relevant count, AP and precision@k of `ranked`, `strict`, `random`.

    `truth`: {(camera, track id): {attribute: 0/1} or None (a false track)}
    for every indexed track. `unfound`: the labels of people no track found
    (a detector's misses): relevant ones count as never retrieved, which
    caps every ranking's AP (the random one's expected AP too).
    """
    rows = []
    total = len(truth)
    for query in queries:
        terms = parse_query(query, index.groups)
        wanted = {key for key, labels in truth.items() if labels is not None and relevant(terms, labels)}
        missed = sum(relevant(terms, labels) for labels in unfound)
        num_relevant = len(wanted) + missed
        row = {"query": query, "terms": len(terms), "relevant": num_relevant}
        for name, strict in (("ranked", False), ("strict", True)):
            frame = index.search(query, top=total, strict=strict)
            hits = [(c, int(t)) in wanted for c, t in zip(frame["camera"], frame["track_id"])]
            row[f"{name}_ap"], row[f"{name}_p@{k}"] = _scores(hits, num_relevant, k)
        rate = len(wanted) / total if total else float("nan")
        row["random_ap"] = rate * len(wanted) / num_relevant if num_relevant else float("nan")
        row[f"random_p@{k}"] = rate * min(k, total) / k  # fewer than k tracks: the rest are empty ranks
        rows.append(row)
    return pd.DataFrame(rows)
