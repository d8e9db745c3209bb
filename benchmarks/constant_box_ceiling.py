"""The hit rate of the best FIXED box centre per attribute (no model involved).

The same figure as the demo's `fixed_box_ceiling` in summary.json
(`alm_tf.evaluation.localization.fixed_box_ceiling`), for any alm-synth folder and split.

For each region-bound attribute of an alm-synth data set, the single point
(y, x) that lies inside the most true regions of the split's images with the
attribute present. A model whose boxes were the same for every image could
reach at most this localization hit rate; above it, boxes must follow the
person image by image. BUILD_NOTES.md (issue 6) quotes it for the demo data.

Usage:
  .venv/bin/python -m benchmarks.constant_box_ceiling --synth=demo_output/synth [--split=test]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np


from alm_tf.evaluation.localization import fixed_box_ceiling  # noqa: E402  (the demo's own, in summary.json)


def ceiling(synth: str, split: str, grid: tuple[int, int] = (101, 51)) -> dict:
    """{attribute: (hit rate, y, x, pairs)} and "overall" for the best fixed centres."""
    with open(os.path.join(synth, "regions.json"), encoding="utf-8") as f:
        regions = json.load(f)
    with open(os.path.join(synth, "annotations.csv"), newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        raise ValueError(f"no images in split {split!r} of {synth}")
    attributes = list(regions["attribute_regions"])
    labels = np.array([[int(r[a]) for a in attributes] for r in rows])
    result = fixed_box_ceiling([r["image"] for r in rows], labels, attributes, regions["images"],
                               regions["attribute_regions"], grid)
    out = {a: (v["rate"], v["y"], v["x"], v["num_pairs"]) for a, v in result["per_attribute"].items()}
    out["overall"] = result["overall"]
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
