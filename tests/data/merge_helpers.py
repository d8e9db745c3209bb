"""Converted synthetic data sets and mapping files for the merge tests."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from tests.data.data_helpers import write_csv, write_image

from alm_tf.data.convert import convert
from alm_tf.data.convert_config import ConvertConfig

# Two sources with disjoint attribute sets onto four targets: A labels
# `top` and `bottom` (inverted from `plain`), B labels `left` (any of two).
TARGETS = ["top", "bottom", "left", "right"]
MAPPING = {
    "description": "test mapping",
    "attributes": TARGETS,
    "sources": {
        "a": {"top": "hat", "bottom": {"not": "plain"}},
        "b": {"left": {"any": ["bag", "box"]}, "right": None},
    },
}


def converted(root: str, attributes: Sequence[str], splits: dict[str, int], seed: int = 0,
              size=(16, 8), labels=None) -> str:
    """A csv data set converted into root/records; returns that folder."""
    rng = np.random.default_rng(seed)
    rows = []
    k = 0
    for split, count in splits.items():
        for _ in range(count):
            rel = f"img/{seed}_{k:03d}.png"
            write_image(os.path.join(root, "src", rel), h=size[0] + k % 3, w=size[1], seed=seed * 1000 + k)
            values = labels[k] if labels is not None else rng.integers(0, 2, size=len(attributes)).tolist()
            rows.append([rel, split, *values])
            k += 1
    ann = write_csv(os.path.join(root, "src", "ann.csv"), ["image", "split", *attributes], rows)
    out = os.path.join(root, "records")
    convert(ConvertConfig(format="csv", annotations=ann, images_dir=os.path.join(root, "src"),
                          output_dir=out, num_shards=2, show_progress=False))
    return out


def write_mapping(path: str, mapping: dict | None = None, text: str | None = None) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text if text is not None else json.dumps(mapping or MAPPING))
    return path
