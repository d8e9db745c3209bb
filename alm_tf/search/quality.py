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

__all__ = ["SYNTH_QUERIES", "average_precision", "evaluate", "read_people_json", "relevant"]


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


def _scores(hits: list, num_relevant: int, k: int) -> tuple[float, float]:
    return average_precision(hits, num_relevant), float(np.sum(hits[:k]) / k)


def evaluate(index: Index, truth: Mapping, queries: Sequence[str] = SYNTH_QUERIES, k: int = 10) -> pd.DataFrame:
    """A row per query: relevant count, AP and precision@k of `ranked`, `strict`, `random`.

    `truth`: {(camera, track id): {attribute: 0/1}} for every indexed track.
    """
    rows = []
    total = len(truth)
    for query in queries:
        terms = parse_query(query, index.groups)
        wanted = {key for key, labels in truth.items() if relevant(terms, labels)}
        row = {"query": query, "terms": len(terms), "relevant": len(wanted)}
        for name, strict in (("ranked", False), ("strict", True)):
            frame = index.search(query, top=total, strict=strict)
            hits = [(c, int(t)) in wanted for c, t in zip(frame["camera"], frame["track_id"])]
            row[f"{name}_ap"], row[f"{name}_p@{k}"] = _scores(hits, len(wanted), k)
        row["random_ap"] = row[f"random_p@{k}"] = len(wanted) / total if total else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
