"""The hit rate of the best FIXED box centre per attribute (no model involved).

For each region-bound attribute of an alm-synth data set, the single point
(y, x) that lies inside the most true regions of the split's images with the
attribute present. A model whose boxes were the same for every image could
reach at most this localization hit rate; above it, boxes must follow the
person image by image. BUILD_NOTES.md (issue 6) quotes it for the demo data.

Usage:
  .venv/bin/python benchmarks/constant_box_ceiling.py --synth=demo_output/synth [--split=test]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np


def ceiling(synth: str, split: str, grid: tuple[int, int] = (101, 51)) -> dict:
    """{attribute: (hit rate, y, x, pairs)} and "overall" for the best fixed centres."""
    with open(os.path.join(synth, "regions.json"), encoding="utf-8") as f:
        regions = json.load(f)
    with open(os.path.join(synth, "annotations.csv"), newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        raise ValueError(f"no images in split {split!r} of {synth}")
    ys, xs = np.linspace(0, 1, grid[0]), np.linspace(0, 1, grid[1])
    out, hits, pairs = {}, 0.0, 0
    for attribute, region in regions["attribute_regions"].items():
        if not region:
            continue
        boxes = np.array([regions["images"][r["image"]][attribute] for r in rows if int(r[attribute])])
        if not len(boxes):
            continue
        inside = ((boxes[:, 0, None, None] <= ys[None, :, None]) & (ys[None, :, None] <= boxes[:, 2, None, None])
                  & (boxes[:, 1, None, None] <= xs[None, None, :]) & (xs[None, None, :] <= boxes[:, 3, None, None]))
        share = inside.mean(0)
        i, j = np.unravel_index(int(share.argmax()), share.shape)
        out[attribute] = (float(share[i, j]), float(ys[i]), float(xs[j]), len(boxes))
        hits += share[i, j] * len(boxes)
        pairs += len(boxes)
    out["overall"] = float(hits / pairs) if pairs else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", required=True, help="alm-synth output (annotations.csv, regions.json)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    for name in ("annotations.csv", "regions.json"):
        if not os.path.isfile(os.path.join(args.synth, name)):
            parser.error(f"not found: {os.path.join(args.synth, name)}")
    try:
        result = ceiling(args.synth, args.split)
    except ValueError as e:
        print(f"constant_box_ceiling: error: {e}", file=sys.stderr)
        sys.exit(1)
    for attribute, value in result.items():
        if attribute != "overall":
            rate, y, x, n = value
            print(f"{attribute:<14} {rate:.3f}  at y={y:.2f} x={x:.2f}  ({n} images)")
    print(f"{'overall':<14} {result['overall']:.3f}")


if __name__ == "__main__":
    main()
