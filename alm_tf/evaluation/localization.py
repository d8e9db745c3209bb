"""How well ALM boxes find attributes on data with known regions (alm-synth).

Localization hit rate (`localization_hit_rate`): over the pairs (image,
region-bound attribute) where the attribute is PRESENT in the ground
truth, a level's box hits when its centre ((y1+y2)/2, (x1+x2)/2),
normalized image coordinates, lies inside (borders included) that
attribute's true region box (alm-synth's regions.json). `levelK` is the
share of hits of level K's boxes; `overall` is the share over all (pair,
level) triples (the mean of the levels, as each level sees the same pairs).
Absent attributes are left out of the headline numbers: with nothing to
see, the box has nothing to find; the rate over all pairs (present or not)
is reported beside it as `all_pairs`, and, as a diagnostic only, the rate
counting the centre's height alone as `vertical_only`.

`fixed_box_ceiling`: the hit rate of the best single point per attribute
for a split, the most boxes that stay the same for every image could
reach. A hit rate near it says the boxes found each attribute's body part;
above it, they also follow each person.

The demo (`alm_tf.demo.stages`), `benchmarks/localization_study.py` and
`benchmarks/constant_box_ceiling.py` use these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["HIT_RATE_DEFINITION", "fixed_box_ceiling", "localization_hit_rate"]

HIT_RATE_DEFINITION = (
    "over (test image, region-bound attribute) pairs with the attribute present: share whose "
    "level box centre lies inside the attribute's true region (regions.json); overall = over "
    "all (pair, level) triples")


def localization_hit_rate(boxes: np.ndarray, images: list[str], labels: np.ndarray,
                          attributes: list[str], regions: dict, attribute_regions: dict) -> dict:
    """The demo's localization hit rate (see the module docstring).

    Args:
        boxes: (N, L, M, 4) predicted boxes of the N `images`.
        images: their regions.json keys.
        labels: (N, M) ground-truth 0/1.
        attributes: M names.
        regions: regions.json "images" (image -> attribute -> true box).
        attribute_regions: attribute -> region name or None (global).

    Returns:
        {"overall", "level1".., "num_pairs", "per_attribute", "all_pairs",
        "vertical_only", "definition"}; rates are None when there are no
        pairs.
    """
    boxes = np.asarray(boxes, np.float64)
    n, levels = boxes.shape[0], boxes.shape[1]
    bound = [m for m, a in enumerate(attributes) if attribute_regions.get(a)]
    cy = (boxes[..., 0] + boxes[..., 2]) / 2.0  # (N, L, M)
    cx = (boxes[..., 1] + boxes[..., 3]) / 2.0
    hits = np.zeros((n, levels, len(attributes)), bool)
    vertical = np.zeros_like(hits)  # diagnostic: the centre's height alone
    for i, image in enumerate(images):
        for m in bound:
            y1, x1, y2, x2 = regions[image][attributes[m]]
            vertical[i, :, m] = (cy[i, :, m] >= y1) & (cy[i, :, m] <= y2)
            hits[i, :, m] = vertical[i, :, m] & (cx[i, :, m] >= x1) & (cx[i, :, m] <= x2)
    mask = np.zeros((n, len(attributes)), bool)
    mask[:, bound] = True
    present = mask & (np.asarray(labels) > 0.5)

    def rates(selected: np.ndarray, hits: np.ndarray = hits) -> dict:
        count = int(selected.sum())
        out: dict[str, Any] = {"num_pairs": count}
        per_level = [float(hits[:, k][selected].mean()) if count else None for k in range(levels)]
        out["overall"] = float(np.mean(per_level)) if count else None
        for k, value in enumerate(per_level):
            out[f"level{k + 1}"] = value
        return out

    result = rates(present)
    result["per_attribute"] = {}
    for m in bound:
        sel = np.zeros_like(present)
        sel[:, m] = present[:, m]
        r = rates(sel)
        result["per_attribute"][attributes[m]] = {k: v for k, v in r.items()}
    result["all_pairs"] = rates(mask)
    # Not the headline: the same pairs, counting a hit when only the centre's
    # height lies in the region's height range (x ignored).
    result["vertical_only"] = rates(present, vertical)
    result["definition"] = HIT_RATE_DEFINITION
    return result


def fixed_box_ceiling(images: list[str], labels: np.ndarray, attributes: list[str], regions: dict,
                      attribute_regions: dict, grid: tuple[int, int] = (101, 51)) -> dict:
    """The hit rate of the best FIXED box centre per attribute (no model involved).

    For each region-bound attribute, the point of a `grid` over the image
    (rows, columns) that lies inside the most true regions of the `images`
    where the attribute is present: boxes that are the same for every image
    hit at most this often.

    Args:
        images, labels, attributes, regions, attribute_regions: as for
            `localization_hit_rate`.
        grid: candidate points per axis.

    Returns:
        {"overall": rate over all present pairs or None, "per_attribute":
        {attribute: {"rate", "y", "x", "num_pairs"}}}.
    """
    labels = np.asarray(labels)
    ys, xs = np.linspace(0.0, 1.0, grid[0]), np.linspace(0.0, 1.0, grid[1])
    per_attribute, hits, pairs = {}, 0.0, 0
    for m, attribute in enumerate(attributes):
        if not attribute_regions.get(attribute):
            continue
        boxes = np.array([regions[image][attribute] for i, image in enumerate(images) if labels[i, m] > 0.5],
                         np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        inside = ((boxes[:, 0, None, None] <= ys[None, :, None]) & (ys[None, :, None] <= boxes[:, 2, None, None])
                  & (boxes[:, 1, None, None] <= xs[None, None, :]) & (xs[None, None, :] <= boxes[:, 3, None, None]))
        share = inside.mean(0)
        i, j = np.unravel_index(int(share.argmax()), share.shape)
        per_attribute[attribute] = {"rate": float(share[i, j]), "y": float(ys[i]), "x": float(xs[j]),
                                    "num_pairs": len(boxes)}
        hits += share[i, j] * len(boxes)
        pairs += len(boxes)
    return {"overall": float(hits / pairs) if pairs else None, "per_attribute": per_attribute}
