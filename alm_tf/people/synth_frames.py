"""Synthetic camera sequences: moving synthetic people pasted into frames,
written in the MOTChallenge layout (what tests and the people demo use).

Each person is drawn once by `alm_tf.data.synth.render_pedestrian` (a
tight crop, no distractors) on a transparent layer and pasted, frame after
frame, by its silhouette onto the street, so a frame shows people on the
street and nothing of their crops' backgrounds. The crop moves at a
constant velocity and bounces off the frame's borders; each person is
visible over one contiguous stretch of the sequence, later people on top.
A person's true box is its silhouette's bounding box (the person's full
extent, as MOTChallenge's gt boxes), hat to feet and backpack included.
Layout:

  D/img1/000001.jpg ...    the frames (MOT's image folder)
  D/gt/gt.txt              frame, id, left, top, width, height, 1, 1,
                           visibility (the share of the person's
                           silhouette that people pasted later leave
                           uncovered, as MOT17's gt)
  D/det/det.txt            frame, -1, left, top, width, height, 1.0, -1, -1, -1
  D/seqinfo.ini            MOT's sequence description
  D/people.json            {"attributes": [...], "tracks": {id: {"labels":
                           {attribute: 0/1}, "first_frame", "last_frame"}}}
  D/street.mp4             (`video`) the same frames as a video (PyAV)

With `crossings`, people walk along one street band instead: they enter
from the left and right edges in turn, walk across at the same height
and so pass in front of each other (occlusions; later people on top).

Deterministic: the same config gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import numpy as np
from PIL import Image

from alm_tf.data.synth import attributes, render_pedestrian

IMAGE_DIR = "img1"
GT_FILE = os.path.join("gt", "gt.txt")
DET_FILE = os.path.join("det", "det.txt")
SEQINFO_FILE = "seqinfo.ini"
PEOPLE_FILE = "people.json"
VIDEO_FILE = "street.mp4"
VIDEO_FPS = 10  # seqinfo.ini's frameRate

__all__ = ["FramesConfig", "generate_frames"]


@dataclasses.dataclass(frozen=True)
class FramesConfig:
    """A synthetic sequence.

    Args:
        output_dir: where the sequence goes (see the module docstring).
        num_frames: frames (>= 1).
        num_people: tracks (>= 1).
        height, width: frame size in pixels.
        min_person_height, max_person_height: the people's crop heights
            (default: 35% and 60% of the frame height, at least 32 px);
            a person is 88-96% of its crop's height (`synth.CROPS`).
        speed: the largest speed in pixels per frame.
        seed: random seed.
        jpeg_quality: 50..100.
        crossings: people cross each other along one band (module docstring).
        video: also write the frames as D/street.mp4.
        colours: people wear named clothing colours, labelled
            (`alm_tf.data.synth.attributes(colours=True)`).
    """

    output_dir: str
    num_frames: int = 12
    num_people: int = 3
    height: int = 240
    width: int = 320
    min_person_height: Optional[int] = None
    max_person_height: Optional[int] = None
    speed: float = 6.0
    seed: int = 0
    jpeg_quality: int = 92
    crossings: bool = False
    video: bool = False
    colours: bool = False

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir must be set")
        for name in ("num_frames", "num_people"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if not 48 <= self.height <= 4096 or not 48 <= self.width <= 4096:
            raise ValueError(f"height and width must lie in 48..4096. Received: height={self.height}, "
                             f"width={self.width}")
        if self.min_person_height is None:
            object.__setattr__(self, "min_person_height", max(32, int(0.35 * self.height)))
        if self.max_person_height is None:
            object.__setattr__(self, "max_person_height", max(self.min_person_height, int(0.6 * self.height)))
        if not 32 <= self.min_person_height <= self.max_person_height < self.height:
            raise ValueError("need 32 <= min_person_height <= max_person_height < height. Received: "
                             f"{self.min_person_height}, {self.max_person_height}, height={self.height}")
        if self.width < self.max_person_height:
            raise ValueError(f"width must be >= max_person_height. Received: width={self.width}")
        if not 0 <= self.speed <= 100:
            raise ValueError(f"speed must lie in [0, 100]. Received: speed={self.speed}")
        if not 50 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 50..100. Received: {self.jpeg_quality}")


def _background(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A street-like backdrop: a vertical colour gradient, a ground band, noise."""
    top = rng.uniform(90, 200, size=3)
    bottom = rng.uniform(60, 160, size=3)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    field = top * (1 - t) + bottom * t + np.zeros((1, width, 1), np.float32)
    ground = int(height * rng.uniform(0.6, 0.75))
    field[ground:] = field[ground:] * 0.7
    field += rng.normal(0, 6, size=(height, width, 1))
    return Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))


def _track(rng: np.random.Generator, cfg: FramesConfig, w: int, h: int) -> dict[str, Any]:
    third = max(1, cfg.num_frames // 3)
    first = int(rng.integers(1, third + 1)) if cfg.num_frames > 2 else 1
    last = int(rng.integers(cfg.num_frames - third + 1, cfg.num_frames + 1)) if cfg.num_frames > 2 \
        else cfg.num_frames
    x = rng.uniform(0, cfg.width - w)
    y = rng.uniform(0, cfg.height - h)
    vx = rng.uniform(-cfg.speed, cfg.speed)
    vy = rng.uniform(-cfg.speed, cfg.speed) * 0.25
    boxes = {}
    for frame in range(first, last + 1):
        boxes[frame] = (int(round(x)), int(round(y)), w, h)
        x, y = x + vx, y + vy
        if not 0 <= x <= cfg.width - w:
            vx, x = -vx, min(max(x, 0.0), float(cfg.width - w))
        if not 0 <= y <= cfg.height - h:
            vy, y = -vy, min(max(y, 0.0), float(cfg.height - h))
    return {"first_frame": first, "last_frame": last, "boxes": boxes}


def _crossing(rng: np.random.Generator, cfg: FramesConfig, w: int, h: int, k: int) -> dict[str, Any]:
    """Person k walks across from the left (k even) or right edge, feet on one band."""
    speed = max(cfg.speed, 1.0) * rng.uniform(0.6, 1.0)
    span = cfg.width - w
    first = 1 + int(rng.integers(0, max(1, cfg.num_frames // 4)))
    x, vx = (0.0, speed) if k % 2 == 0 else (float(span), -speed)
    ground = int(cfg.height * 0.9)
    y = int(np.clip(ground - h + rng.integers(-4, 5), 0, cfg.height - h))
    boxes = {}
    for frame in range(first, cfg.num_frames + 1):
        boxes[frame] = (int(round(x)), y, w, h)
        x += vx
        if not 0 <= x <= span:
            break
    return {"first_frame": first, "last_frame": max(boxes), "boxes": boxes}


def _silhouette(crop: Image.Image) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A transparent person crop's opaque pixels and their bounding box (left, top, right, bottom)."""
    alpha = crop.getchannel("A")
    return np.asarray(alpha) > 0, alpha.getbbox()


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _paste_frame(background: Image.Image, people: list, shapes: dict, frame: int, frames: list, images_dir: str,
                 cfg: FramesConfig) -> tuple[list[str], list[str]]:
    """Writes frame `frame` (people by their silhouettes, later ones on top); its gt and det rows.

    shapes: track id -> (RGB crop, silhouette mask, its bounding box), see `_silhouette`.
    """
    image = background.copy()
    owner = np.zeros((cfg.height, cfg.width), np.int32)  # the track id seen at each pixel
    placed = []
    for track_id, crop, _, track in people:
        if frame in track["boxes"]:
            left, top, w, h = track["boxes"][frame]
            rgb, mask, (x1, y1, x2, y2) = shapes[track_id]
            image.paste(rgb, (left, top), crop)
            owner[top:top + h, left:left + w][mask] = track_id
            placed.append((track_id, left + x1, top + y1, x2 - x1, y2 - y1, int(mask.sum())))
    gt_rows, det_rows = [], []
    for track_id, left, top, w, h, area in placed:
        seen = float((owner == track_id).sum()) / max(area, 1)
        gt_rows.append(f"{frame},{track_id},{left},{top},{w},{h},1,1,{seen:.3f}")
        det_rows.append(f"{frame},-1,{left},{top},{w},{h},1.0,-1,-1,-1")
    path = os.path.join(images_dir, f"{frame:06d}.jpg")
    image.save(path + ".tmp", format="JPEG", quality=cfg.jpeg_quality, subsampling=0)
    os.replace(path + ".tmp", path)
    frames.append(path)
    return gt_rows, det_rows


def generate_frames(cfg: FramesConfig) -> dict[str, Any]:
    """Writes the sequence; returns {"frames", "gt", "det", "people", "images_dir", "num_boxes"[, "video"]}."""
    out = cfg.output_dir
    images_dir = os.path.join(out, IMAGE_DIR)
    os.makedirs(images_dir, exist_ok=True)
    rng = np.random.default_rng([cfg.seed, 7])
    background = _background(rng, cfg.height, cfg.width)
    people = []
    for track_id in range(1, cfg.num_people + 1):
        person_rng = np.random.default_rng([cfg.seed, track_id])
        crop, labels, _ = render_pedestrian(person_rng, cfg.min_person_height, cfg.max_person_height,
                                            distractors=False, crop="tight", colours=cfg.colours,
                                            transparent=True)
        track = (_crossing(person_rng, cfg, *crop.size, track_id) if cfg.crossings
                 else _track(person_rng, cfg, *crop.size))
        people.append((track_id, crop, labels, track))
    shapes = {track_id: (crop.convert("RGB"), *_silhouette(crop)) for track_id, crop, _, _ in people}
    gt_rows, det_rows, frames, arrays = [], [], [], []
    for frame in range(1, cfg.num_frames + 1):
        gt_rows_here, det_rows_here = _paste_frame(background, people, shapes, frame, frames, images_dir, cfg)
        gt_rows += gt_rows_here
        det_rows += det_rows_here
        if cfg.video:
            arrays.append(np.asarray(Image.open(frames[-1]).convert("RGB")))
    _write_text(os.path.join(out, GT_FILE), "".join(r + "\n" for r in gt_rows))
    _write_text(os.path.join(out, DET_FILE), "".join(r + "\n" for r in det_rows))
    _write_text(os.path.join(out, SEQINFO_FILE), (
        f"[Sequence]\nname=synthetic\nimDir=img1\nframeRate={VIDEO_FPS}\n"
        f"seqLength={cfg.num_frames}\nimWidth={cfg.width}\nimHeight={cfg.height}\nimExt=.jpg\n"))
    payload = {"attributes": list(attributes(cfg.colours)), "tracks": {
        str(track_id): {"labels": labels, "first_frame": track["first_frame"],
                        "last_frame": track["last_frame"]}
        for track_id, _, labels, track in people}}
    _write_text(os.path.join(out, PEOPLE_FILE), json.dumps(payload, indent=1, sort_keys=True) + "\n")
    info = {"frames": frames, "images_dir": images_dir, "gt": os.path.join(out, GT_FILE),
            "det": os.path.join(out, DET_FILE), "people": os.path.join(out, PEOPLE_FILE),
            "num_boxes": len(gt_rows)}
    if cfg.video:
        from alm_tf.people import video as video_lib

        info["video"] = video_lib.write_video(os.path.join(out, VIDEO_FILE), arrays, fps=VIDEO_FPS)
    return info
