"""The answer files that image and people predictions write: their names,
the CSV columns and JSON lines objects, and files written under temporary
names and renamed together."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from typing import Optional

import numpy as np

#: One row per image: its path, its picture, then every attribute's probability and label.
PREDICTIONS_CSV = "predictions.csv"
#: One JSON object per image, box or track with its readable answers.
PREDICTIONS_JSONL = "predictions.jsonl"
#: The folder of the pictures (localization panels, frames with boxes) in an output folder.
PICTURES_DIR = "pictures"

__all__ = ["PICTURES_DIR", "PREDICTIONS_CSV", "PREDICTIONS_JSONL", "StagedFiles", "attribute_cells",
           "attribute_columns", "jsonl_record", "write_jsonl"]


def attribute_columns(attributes: Sequence[str]) -> list[str]:
    """`<attr>_prob`, `<attr>` for every attribute (the predictions.csv order)."""
    return [c for a in attributes for c in (f"{a}_prob", a)]


def attribute_cells(probabilities, labels) -> list:
    return [c for p, y in zip(probabilities, labels) for c in (f"{p:.6f}", int(y))]


def jsonl_record(answer: dict, probabilities, attributes: Sequence[str], per_frame: Optional[dict] = None,
                 **fields) -> dict:
    """A predictions.jsonl object: `fields`, `answers`, (a track's) `per_frame`,
    `probabilities` (6 decimals; a track's per-frame attributes left out)."""
    record = {**fields, "answers": answer}
    if per_frame is not None:
        record["per_frame"] = per_frame
    record["probabilities"] = {a: round(float(p), 6) for a, p in zip(attributes, probabilities)
                               if np.isfinite(p)}
    return record


def write_jsonl(path: str, records) -> str:
    """JSON lines, one object a line, written atomically (temp name + rename)."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    os.replace(path + ".tmp", path)
    return path


class StagedFiles:
    """Files written under temporary names, renamed together by `commit`."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.files: dict[str, str] = {}

    def path(self, name: str) -> str:
        final = os.path.join(self.output_dir, name)
        self.files[name] = final
        return final + ".tmp"

    def csv(self, name: str, header: Sequence[str], rows) -> None:
        with open(self.path(name), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    def jsonl(self, name: str, records) -> None:
        with open(self.path(name), "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, sort_keys=False) + "\n")

    def commit(self) -> dict[str, str]:
        for final in self.files.values():
            os.replace(final + ".tmp", final)
        return dict(self.files)

    def discard(self) -> None:
        for final in self.files.values():
            if os.path.exists(final + ".tmp"):
                os.remove(final + ".tmp")


