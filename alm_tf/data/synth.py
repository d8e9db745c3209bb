"""Synthetic pedestrians with known attribute regions (what `alm-synth` writes).

Each image is a person-like figure (head, torso with arms, legs, feet) at a
random position, scale and pose on a textured background, at crop sizes
like real pedestrian data (about 80-240 px tall, aspect near 2:1 h:w),
framed as the annotated boxes of PETA, RAP and PA-100K frame people
(`crop="tight"`, the default) or with more, randomly placed, slack
(`crop="loose"`; `CROPS`).
Eight attributes are bound to a body region and drawn there with clear,
sizeable cues; two are global (`female`, correlated with several cues, and
`dark_clothing`). The crop holds, as detector crops in a crowd do, parts of
one or two other people cut by the left or right border, with their own
(unlabelled) hats, glasses, hair, bags... at the same body heights; and
look-alikes of the cues where the attribute is NOT (a hat-coloured cap
beside the feet, a backpack-coloured box beside the head, a glasses band
across the legs...). So a model that pools the whole crop is confused,
and one that looks at the right body part of the person in the middle is
not: localization matters.

Output: `images/NNNNN.jpg`, `annotations.csv` (image, split, attributes;
paths relative to the output folder) and `regions.json`:
`{"attribute_regions": {attr: region or null}, "images": {image: {attr:
[y1, x1, y2, x2]}}}` with each region-bound attribute's true region box in
normalized image coordinates (where the attribute is, or would be).
Deterministic: image i depends only on (seed, i).
"""

from __future__ import annotations

import colorsys
import csv
import dataclasses
import json
import os
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from alm_tf.data.synth_attributes import (ATTRIBUTE_REGIONS, ATTRIBUTES, CLOTHING_COLOURS, COLOUR_ATTRIBUTES,
                                          COLOUR_GROUPS, GROUPS, REGION_ATTRIBUTES, attributes)

SPLITS = ("train", "val", "test")
#: The files of an alm-synth folder (the module docstring).
IMAGES_DIR = "images"
ANNOTATIONS_FILE = "annotations.csv"
REGIONS_FILE = "regions.json"
#: How a crop frames its labelled person: (person height range, top margin
#: range, horizontal centre offset), as fractions of the crop height /
#: height / width. The top margin's upper end is also capped by the room
#: the person leaves (1% at the bottom).
CROPS: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "tight": ((0.88, 0.96), (0.01, 0.04), 0.04),
    "loose": ((0.78, 0.93), (0.02, 1.0), 0.1),
}

__all__ = [
    "ANNOTATIONS_FILE",
    "ATTRIBUTES",
    "ATTRIBUTE_REGIONS",
    "IMAGES_DIR",
    "REGIONS_FILE",
    "REGION_ATTRIBUTES",
    "CLOTHING_COLOURS",
    "COLOUR_ATTRIBUTES",
    "COLOUR_GROUPS",
    "CROPS",
    "GROUPS",
    "attributes",
    "SynthConfig",
    "check_crop",
    "generate",
    "load_regions",
    "render_pedestrian",
]

Box = tuple[float, float, float, float]  # y1, x1, y2, x2 in pixels.


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Options of a synthetic data set.

    Args:
        output_dir: where images/, annotations.csv and regions.json go.
        num_images: how many images.
        seed: random seed; the same seed gives the same bytes.
        min_height, max_height: image height range in pixels.
        split_fractions: train / val / test fractions (sum 1).
        distractors: draw the crowd neighbours and look-alikes (off: the
            labelled person alone, for debugging).
        jpeg_quality: JPEG quality 50-100.
        crop: how the crop frames the labelled person (`CROPS`):
            `"tight"`, like the annotated boxes of PETA, RAP and PA-100K
            (person 88-96% of the crop height, 1-4% from the top, centred
            within 4% of the width); `"loose"`, like a detector box with
            context and poor centring (person 78-93% of the height, anywhere
            in the slack; centred within 10%).
        colours: also draw and label clothing colours (`CLOTHING_COLOURS`,
            `COLOUR_ATTRIBUTES`); off, no colour is drawn or labelled and the
            other attributes' images are unchanged.
    """

    output_dir: str
    num_images: int
    seed: int = 0
    min_height: int = 80
    max_height: int = 240
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    distractors: bool = True
    jpeg_quality: int = 92
    crop: str = "tight"
    colours: bool = False

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir must be set")
        if self.num_images < 1:
            raise ValueError(f"num_images must be >= 1. Received: num_images={self.num_images}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in 0..2**63-1. Received: seed={self.seed}")
        if not 32 <= self.min_height <= self.max_height <= 1024:
            raise ValueError(
                "need 32 <= min_height <= max_height <= 1024. Received: "
                f"min_height={self.min_height}, max_height={self.max_height}"
            )
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(f"split_fractions must be 3 values >= 0 summing to 1. Received: {self.split_fractions}")
        if not 50 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 50..100. Received: {self.jpeg_quality}")
        check_crop(self.crop)


def check_crop(crop: str) -> None:
    """ValueError naming `crop` unless it is one of `CROPS`."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}. Received: crop={crop!r}")


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _cloth_colour(rng: np.random.Generator, dark: bool) -> tuple[int, int, int]:
    if dark:
        return _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.06, 0.2))
    return _hsv(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.92))


def _hat_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(-0.04, 0.08), rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0))  # Red-orange.


def _bag_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(0.12, 0.2), rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0))  # Yellow.


def _boot_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.45))  # Brown.


def _skin_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(0.04, 0.09), rng.uniform(0.25, 0.55), rng.uniform(0.55, 0.95))


def _hair_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.3))


def _background(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """Low-frequency colour field + noise + a few muted rectangles and a ground."""
    coarse = rng.uniform(60, 200, size=(4, 3, 3)).astype(np.float32)
    coarse = coarse * 0.5 + coarse.mean(axis=2, keepdims=True) * 0.5  # Muted.
    field = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((w, h), Image.BILINEAR), np.float32)
    field += rng.normal(0, 8, size=(h, w, 1)).astype(np.float32)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 0.8) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.05, 0.4) * h
        draw.rectangle([x0, y0, x1, y1], fill=_hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.3, 0.8)))
    ground = rng.uniform(0.7, 0.9) * h
    draw.rectangle([0, ground, w, h], fill=_hsv(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.3, 0.7)))
    return image


def _sample_colours(rng: np.random.Generator, labels: dict[str, int]) -> dict[str, int]:
    """Colour labels of the labelled person: black when `dark_clothing`, else another colour."""
    others = [c for c in CLOTHING_COLOURS if c != "black"]
    chosen = {part: "black" if labels["dark_clothing"] else others[int(rng.integers(len(others)))]
              for part in ("upper", "lower")}
    return {f"{part}_{c}": int(chosen[part] == c) for part in ("upper", "lower") for c in CLOTHING_COLOURS}


def _garment_colour(labels: dict[str, int], part: str, drawn: tuple[int, int, int]) -> tuple[int, int, int]:
    """The named colour of a garment when the labels have one, else the drawn colour."""
    return next((rgb for c, rgb in CLOTHING_COLOURS.items() if labels.get(f"{part}_{c}")), drawn)


def _union(*boxes: Box) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _sample_labels(rng: np.random.Generator) -> dict[str, int]:
    female = int(rng.random() < 0.5)
    skirt = int(rng.random() < (0.45 if female else 0.0))
    shorts = int(not skirt and rng.random() < (0.2 if female else 0.3))
    return {
        "hat": int(rng.random() < (0.2 if female else 0.35)),
        "glasses": int(rng.random() < 0.3),
        "long_hair": int(rng.random() < (0.7 if female else 0.12)),
        "backpack": int(rng.random() < 0.3),
        "short_sleeves": int(rng.random() < 0.4),
        "skirt": skirt,
        "shorts": shorts,
        "boots": int(rng.random() < (0.35 if female else 0.2)),
        "female": female,
        "dark_clothing": int(rng.random() < 0.3),
    }


def render_pedestrian(rng: np.random.Generator, min_height: int = 80, max_height: int = 240, distractors: bool = True,
                      crop: str = "tight", colours: bool = False, transparent: bool = False,
                      ) -> tuple[Image.Image, dict[str, int], dict[str, list[float]]]:
    """Draws one pedestrian crop.

    The labelled person stands near the middle. With `distractors`, the
    crop also holds what real detector crops hold: parts of other people cut
    by the left or right border (with their own, unlabelled, attributes, at
    the same body heights) and attribute look-alikes at heights where the
    attribute never is. A model that pools the whole crop sees the
    neighbours' hats and bags too; one that looks at the right body part
    of the person in the middle does not. With `colours`, the person's
    garments take named colours, labelled (`COLOUR_ATTRIBUTES`). With
    `transparent`, the people are drawn on a transparent layer instead of
    the background (an RGBA image, opaque exactly where a person is, for
    pasting into a larger scene by its silhouette); the random draws are the
    same, so the same `rng` gives the same person, labels and regions.

    Returns:
        (RGB image, or RGBA with `transparent`; labels {attribute: 0/1}, regions {region-bound
        attribute: normalized [y1, x1, y2, x2]} of the labelled person).
    """
    labels = _sample_labels(rng)
    if colours:
        labels.update(_sample_colours(rng, labels))
    H = int(rng.integers(min_height, max_height + 1))
    W = max(16, int(round(H * rng.uniform(0.42, 0.58))))
    image = _background(rng, H, W)  # drawn also when transparent: the same draws follow
    if transparent:
        image = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    (ph_lo, ph_hi), (top_lo, top_hi), dx = CROPS[crop]
    ph = H * rng.uniform(ph_lo, ph_hi)  # Person height.
    top = rng.uniform(top_lo * H, min(top_hi * H, H - ph - 0.01 * H))
    cx = W / 2 + rng.uniform(-dx, dx) * W
    if distractors:
        for side in rng.permutation([-1, 1])[: int(rng.integers(1, 3))]:
            other_ph = ph * rng.uniform(0.9, 1.08)
            other_top = top + rng.uniform(-0.04, 0.04) * H
            other_cx = cx + side * rng.uniform(0.36, 0.5) * W
            _draw_person(draw, rng, _sample_labels(rng), other_cx, other_top, other_ph)
    regions_px = _draw_person(draw, rng, labels, cx, top, ph)
    if distractors:
        _draw_distractors(rng, draw, ph, top, cx, W, H, labels)
    regions = {
        a: [round(min(max(b[0] / H, 0.0), 1.0), 4), round(min(max(b[1] / W, 0.0), 1.0), 4),
            round(min(max(b[2] / H, 0.0), 1.0), 4), round(min(max(b[3] / W, 0.0), 1.0), 4)]
        for a, b in regions_px.items()
    }
    return image, labels, regions


@dataclasses.dataclass(frozen=True)
class _Body:
    """Where a drawn person stands and how it is built, in pixels."""

    cx: float
    top: float
    ph: float  # Person height.
    lean: float
    shoulder: float
    waist: float

    def y(self, f: float) -> float:
        """Person-relative height to pixels."""
        return self.top + f * self.ph


def _draw_person(draw: ImageDraw.ImageDraw, rng: np.random.Generator, labels: dict[str, int],
                 cx: float, top: float, ph: float) -> dict[str, Box]:
    """Draws a person `ph` px tall from `top`, centred at `cx`; returns the attribute regions in px.

    Back to front: long hair, legs and feet (the torso covers the hips),
    torso and arms with the backpack, head.
    """
    dark = bool(labels["dark_clothing"])
    upper, lower = _cloth_colour(rng, dark), _cloth_colour(rng, dark)
    upper, lower = _garment_colour(labels, "upper", upper), _garment_colour(labels, "lower", lower)
    skin, hair = _skin_colour(rng), _hair_colour(rng)
    shoulder = ph * (0.11 if labels["female"] else 0.13)
    waist = ph * (0.075 if labels["female"] else 0.1)
    head_r = ph * rng.uniform(0.06, 0.07)
    body = _Body(cx, top, ph, rng.uniform(-0.03, 0.03) * ph, shoulder, waist)
    Y = body.y
    hx, hy = cx + body.lean, Y(0.075)
    head_box = (hy - head_r, hx - head_r * 0.85, hy + head_r, hx + head_r * 0.85)

    # Long hair: behind the head, down to the shoulders.
    hair_box = (hy - head_r * 1.05, hx - head_r * 1.15, Y(0.27), hx + head_r * 1.15)
    if labels["long_hair"]:
        draw.rounded_rectangle([hair_box[1], hair_box[0], hair_box[3], hair_box[2]], radius=head_r * 0.8, fill=hair)
    legs_box, feet_box, skirt_box = _draw_legs(draw, rng, labels, body, skin, lower)
    torso_box, bag_box = _draw_torso(draw, rng, labels, body, skin, upper)
    # Head: neck, face, hair on top, glasses, hat.
    draw.rectangle([hx - head_r * 0.35, hy + head_r * 0.6, hx + head_r * 0.35, Y(0.15) + 1], fill=skin)
    draw.ellipse([head_box[1], head_box[0], head_box[3], head_box[2]], fill=skin)
    draw.chord([head_box[1], head_box[0], head_box[3], hy + head_r * 0.2], 180, 360, fill=hair)
    glasses_box = (hy - head_r * 0.05, head_box[1], hy + head_r * 0.4, head_box[3])
    if labels["glasses"]:
        draw.rectangle([glasses_box[1], glasses_box[0], glasses_box[3], glasses_box[2]], fill=(12, 12, 12))
    hat_box = (hy - head_r * 1.55, hx - head_r * 1.15, hy - head_r * 0.35, hx + head_r * 1.15)
    if labels["hat"]:
        _draw_hat(draw, hat_box, _hat_colour(rng))

    return {
        "hat": _union(head_box, hat_box),
        "glasses": head_box,
        "long_hair": _union(head_box, hair_box),
        "backpack": _union(torso_box, bag_box),
        "short_sleeves": torso_box,
        "skirt": _union(legs_box, skirt_box),
        "shorts": legs_box,
        "boots": feet_box,
    }


def _draw_legs(draw: ImageDraw.ImageDraw, rng: np.random.Generator, labels: dict[str, int], body: _Body,
               skin: tuple[int, int, int], lower: tuple[int, int, int]) -> tuple[Box, Box, Box]:
    """Legs, shorts, boots or shoes, skirt; returns the legs, feet and skirt boxes."""
    cx, ph, waist, Y = body.cx, body.ph, body.waist, body.y
    hip_y, ankle_y, foot_y = Y(0.5), Y(0.91), Y(0.985)
    stride = rng.uniform(0.0, 0.09) * ph
    leg_w = ph * 0.045
    legs = []
    for side in (-1, 1):
        x_hip = cx + side * waist * 0.5
        x_ank = cx + side * (waist * 0.4 + stride * 0.5)
        legs.append((x_hip, x_ank))
        quad = [(x_hip - leg_w, hip_y), (x_hip + leg_w, hip_y), (x_ank + leg_w * 0.8, ankle_y), (x_ank - leg_w * 0.8, ankle_y)]
        draw.polygon(quad, fill=skin if (labels["shorts"] or labels["skirt"]) else lower)
        if labels["shorts"]:
            knee = Y(0.63)
            t = (knee - hip_y) / (ankle_y - hip_y)
            xk = x_hip + (x_ank - x_hip) * t
            draw.polygon([(x_hip - leg_w * 1.1, hip_y), (x_hip + leg_w * 1.1, hip_y), (xk + leg_w * 1.05, knee), (xk - leg_w * 1.05, knee)], fill=lower)
        if labels["boots"]:
            draw.rectangle([x_ank - leg_w * 1.25, Y(0.78), x_ank + leg_w * 1.25, foot_y], fill=_boot_colour(rng))
        else:
            draw.ellipse([x_ank - leg_w * 1.2, ankle_y - ph * 0.005, x_ank + leg_w * 1.2, foot_y], fill=(30, 30, 30))
    legs_x1 = min(x for pair in legs for x in pair) - leg_w * 1.3
    legs_x2 = max(x for pair in legs for x in pair) + leg_w * 1.3
    legs_box = (hip_y, legs_x1, ankle_y, legs_x2)
    feet_box = (Y(0.77), legs_x1, foot_y, legs_x2)
    skirt_box = (Y(0.47), cx - waist * 1.35, Y(0.72), cx + waist * 1.35)
    if labels["skirt"]:
        draw.polygon([(cx - waist * 0.65, skirt_box[0]), (cx + waist * 0.65, skirt_box[0]), (skirt_box[3], skirt_box[2]), (skirt_box[1], skirt_box[2])], fill=lower)
    return legs_box, feet_box, skirt_box


def _draw_torso(draw: ImageDraw.ImageDraw, rng: np.random.Generator, labels: dict[str, int], body: _Body,
                skin: tuple[int, int, int], upper: tuple[int, int, int]) -> tuple[Box, Box]:
    """Arms with their sleeves, torso, backpack; returns the torso and bag boxes."""
    cx, ph, lean, shoulder, waist, Y = body.cx, body.ph, body.lean, body.shoulder, body.waist, body.y
    hip_y, sh_y = Y(0.5), Y(0.15)
    torso = [(cx + lean * 0.5 - shoulder, sh_y), (cx + lean * 0.5 + shoulder, sh_y), (cx + waist * 0.75, hip_y), (cx - waist * 0.75, hip_y)]
    arm_w = ph * 0.032
    arms_x = []
    for side in (-1, 1):
        x0 = cx + lean * 0.5 + side * (shoulder + arm_w * 0.6)
        swing = rng.uniform(-0.05, 0.08) * ph
        x1 = x0 + side * swing * 0.3
        hand_y = Y(0.49)
        arms_x += [x0, x1]
        sleeve_end = Y(0.22) if labels["short_sleeves"] else hand_y
        draw.polygon([(x0 - arm_w, sh_y), (x0 + arm_w, sh_y), (x1 + arm_w, hand_y), (x1 - arm_w, hand_y)], fill=skin if labels["short_sleeves"] else upper)
        t = (sleeve_end - sh_y) / (hand_y - sh_y)
        xs = x0 + (x1 - x0) * t
        draw.polygon([(x0 - arm_w * 1.15, sh_y), (x0 + arm_w * 1.15, sh_y), (xs + arm_w * 1.15, sleeve_end), (xs - arm_w * 1.15, sleeve_end)], fill=upper)
        draw.ellipse([x1 - arm_w, hand_y - arm_w, x1 + arm_w, hand_y + arm_w * 1.2], fill=skin)
    draw.polygon(torso, fill=upper)
    torso_box = (sh_y, min(arms_x) - arm_w * 1.2, hip_y, max(arms_x) + arm_w * 1.2)
    bag_side = 1 if rng.random() < 0.5 else -1
    bx = cx + lean * 0.5 + bag_side * shoulder
    bag_box = (Y(0.17), min(bx, bx + bag_side * ph * 0.09) - arm_w, Y(0.43), max(bx, bx + bag_side * ph * 0.09) + arm_w)
    if labels["backpack"]:
        colour = _bag_colour(rng)
        draw.rounded_rectangle([bag_box[1], bag_box[0], bag_box[3], bag_box[2]], radius=ph * 0.015, fill=colour)
        for side in (-1, 1):  # Straps over the shoulders.
            sx = cx + lean * 0.5 + side * shoulder * 0.55
            draw.line([(sx, sh_y), (sx + side * ph * 0.01, Y(0.36))], fill=colour, width=max(2, int(ph * 0.022)))
    return torso_box, bag_box


def _draw_hat(draw: ImageDraw.ImageDraw, box: Box, colour: tuple[int, int, int]) -> None:
    y1, x1, y2, x2 = box
    w = x2 - x1
    draw.rounded_rectangle([x1 + w * 0.12, y1, x2 - w * 0.12, y2], radius=w * 0.2, fill=colour)
    draw.rectangle([x1, y2 - (y2 - y1) * 0.25, x2, y2], fill=colour)  # Brim.


def _draw_distractors(rng: np.random.Generator, draw: ImageDraw.ImageDraw, ph: float, top: float, cx: float, W: int, H: int, labels: dict[str, int]) -> None:
    """Attribute look-alikes at body heights where that attribute never is."""
    Y = lambda f: top + f * ph  # noqa: E731
    beside = lambda: cx + (1 if rng.random() < 0.5 else -1) * rng.uniform(0.22, 0.45) * W  # noqa: E731
    kinds = ["hat", "bag", "band", "boot", "hair", "skin"]
    for kind in rng.choice(kinds, size=int(rng.integers(1, 4)), replace=False):
        s = ph * rng.uniform(0.9, 1.1)
        if kind == "hat":  # A cap at leg / feet height.
            y, x = Y(rng.uniform(0.62, 0.92)), beside()
            _draw_hat(draw, (y - s * 0.09, x - s * 0.08, y, x + s * 0.08), _hat_colour(rng))
        elif kind == "bag":  # A yellow box at head or leg height.
            y, x = Y(rng.choice([rng.uniform(0.0, 0.1), rng.uniform(0.6, 0.8)])), beside()
            draw.rounded_rectangle([x - s * 0.045, y, x + s * 0.045, y + s * 0.2], radius=s * 0.015, fill=_bag_colour(rng))
        elif kind == "band":  # A glasses band across the legs.
            y = Y(rng.uniform(0.6, 0.85))
            draw.rectangle([cx - s * 0.1, y, cx + s * 0.1, y + s * 0.03], fill=(12, 12, 12))
        elif kind == "boot":  # Brown boots at head / torso height.
            y, x = Y(rng.uniform(0.0, 0.3)), beside()
            draw.rectangle([x - s * 0.055, y, x + s * 0.055, y + s * 0.2], fill=_boot_colour(rng))
        elif kind == "hair":  # A long-hair patch at leg height.
            y, x = Y(rng.uniform(0.55, 0.8)), beside()
            draw.rounded_rectangle([x - s * 0.08, y, x + s * 0.08, y + s * 0.2], radius=s * 0.05, fill=_hair_colour(rng))
        else:  # Skin-coloured sticks (bare arms) at leg height.
            y, x = Y(rng.uniform(0.55, 0.75)), beside()
            draw.rectangle([x - s * 0.03, y, x + s * 0.03, y + s * 0.2], fill=_skin_colour(rng))


def _splits(num_images: int, fractions: tuple[float, float, float], seed: int) -> list[str]:
    n_train = int(round(num_images * fractions[0]))
    n_val = min(num_images - n_train, int(round(num_images * fractions[1])))
    order = np.random.default_rng([seed, 2**32 - 1]).permutation(num_images)
    out = ["test"] * num_images
    for rank, i in enumerate(order):
        out[i] = "train" if rank < n_train else ("val" if rank < n_train + n_val else "test")
    return out


def generate(cfg: SynthConfig) -> dict[str, Any]:
    """Writes the data set; returns {"num_images", "splits" (counts), "paths"}."""
    out = cfg.output_dir
    os.makedirs(os.path.join(out, IMAGES_DIR), exist_ok=True)
    width = max(5, len(str(cfg.num_images - 1)))
    splits = _splits(cfg.num_images, cfg.split_fractions, cfg.seed)
    regions: dict[str, dict[str, list[float]]] = {}
    rows = []
    names = attributes(cfg.colours)
    for i in range(cfg.num_images):
        rng = np.random.default_rng([cfg.seed, i])
        image, labels, boxes = render_pedestrian(rng, cfg.min_height, cfg.max_height, cfg.distractors, cfg.crop,
                                                 cfg.colours)
        rel = f"{IMAGES_DIR}/{i:0{width}d}.jpg"
        image.save(os.path.join(out, rel), format="JPEG", quality=cfg.jpeg_quality, subsampling=0)
        regions[rel] = boxes
        rows.append([rel, splits[i]] + [labels[a] for a in names])
    csv_path = os.path.join(out, ANNOTATIONS_FILE)
    with open(csv_path + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["image", "split", *names])
        writer.writerows(rows)
    os.replace(csv_path + ".tmp", csv_path)
    regions_path = os.path.join(out, REGIONS_FILE)
    with open(regions_path + ".tmp", "w", encoding="utf-8") as f:
        attribute_regions = ({**ATTRIBUTE_REGIONS, **dict.fromkeys(COLOUR_ATTRIBUTES)} if cfg.colours
                             else ATTRIBUTE_REGIONS)
        json.dump({"attribute_regions": attribute_regions, "images": regions}, f, separators=(",", ":"))
    os.replace(regions_path + ".tmp", regions_path)
    counts = {s: splits.count(s) for s in SPLITS}
    return {"num_images": cfg.num_images, "splits": counts, "annotations": csv_path, "regions": regions_path}


def load_regions(path: str | os.PathLike) -> dict[str, dict[str, list[float]]]:
    """regions.json's per-image boxes: {image path: {attribute: [y1, x1, y2, x2]}}."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)["images"]
