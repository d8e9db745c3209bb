"""Localization pictures in the style of the paper's figure 5 (Pillow only).

Figure 5 of the ALM paper shows, for an attribute, the input image and then
the region each pyramid level's ALM localized for it. Here:

- `level_panels` draws one row: the input image, then one panel per level
  with that level's box for the attribute drawn and named;
- `localization_grid` stacks such rows for several attributes, with a
  header naming the levels and a row label with each attribute's name,
  probability and predicted label;
- `save_localization_picture` writes the grid as a PNG;
- `people_picture` draws every person box of a camera frame with its
  readable answers (`answer_lines`), one colour per track.

Boxes are the model's `boxes` output for one image, shape (L, M, 4),
[y1, x1, y2, x2] in normalized image coordinates, unclipped (a box may
reach outside the image; it is drawn clipped, dashed where it was cut).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "LEVEL_NAMES",
    "box_centre",
    "draw_box",
    "level_panels",
    "answer_lines",
    "localization_grid",
    "people_picture",
    "save_localization_picture",
    "save_png",
]

#: Default panel titles, levels ordered as the model's `boxes` (finest first).
LEVEL_NAMES: tuple[str, ...] = ("level 1", "level 2", "level 3")
_COLOURS = ((255, 40, 40), (40, 200, 40), (40, 120, 255), (255, 170, 0), (200, 0, 200), (0, 200, 200))
_BG = (255, 255, 255)
_TEXT = (0, 0, 0)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font.
        return ImageFont.load_default()


def _to_image(image) -> Image.Image:
    """A PIL RGB image from a PIL image or an (H, W, 3) array in 0..255."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3). Received: shape={array.shape}")
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def box_centre(box: Sequence[float]) -> tuple[float, float]:
    """(cy, cx) of a normalized [y1, x1, y2, x2] box."""
    y1, x1, y2, x2 = (float(v) for v in box)
    return (y1 + y2) / 2.0, (x1 + x2) / 2.0


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def draw_box(image, box: Sequence[float], label: str = "", colour=(255, 40, 40),
             width: int = 2, font_size: int = 11) -> Image.Image:
    """A copy of `image` with a normalized [y1, x1, y2, x2] box drawn and named.

    The box is clipped to the image; the centre is marked with a cross; the
    label goes on a filled tag above the box; when the box touches the top
    of the image, below the box (so a small box at the top stays visible),
    or inside its top edge when there is no room below either.
    """
    out = _to_image(image).copy()
    w, h = out.size
    y1, x1, y2, x2 = (float(v) for v in box)
    if not all(np.isfinite([y1, x1, y2, x2])):
        raise ValueError(f"box must be finite. Received: box={list(box)}")
    px1, px2 = sorted((min(max(x1, 0.0), 1.0) * (w - 1), min(max(x2, 0.0), 1.0) * (w - 1)))
    py1, py2 = sorted((min(max(y1, 0.0), 1.0) * (h - 1), min(max(y2, 0.0), 1.0) * (h - 1)))
    draw = ImageDraw.Draw(out)
    draw.rectangle([px1, py1, px2, py2], outline=colour, width=width)
    cy, cx = box_centre(box)
    if 0 <= cy <= 1 and 0 <= cx <= 1:
        r = max(3, width * 2)
        ccx, ccy = cx * (w - 1), cy * (h - 1)
        draw.line([(ccx - r, ccy), (ccx + r, ccy)], fill=colour, width=width)
        draw.line([(ccx, ccy - r), (ccx, ccy + r)], fill=colour, width=width)
    if label:
        font = _font(font_size)
        tw = _text_width(draw, label, font)
        th = font_size + 3
        if py1 - th >= 0:
            ty = py1 - th
        elif py2 + width + th <= h - 1:
            ty = py2 + width
        else:
            ty = py1 + width
        tx = min(max(px1, 0), max(0, w - tw - 4))
        draw.rectangle([tx, ty, tx + tw + 4, ty + th], fill=colour)
        draw.text((tx + 2, ty + 1), label, fill=(255, 255, 255), font=font)
    return out


def _fit_height(image: Image.Image, height: int) -> Image.Image:
    w, h = image.size
    width = max(1, int(round(w * height / h)))
    return image.resize((width, height), Image.BILINEAR)


def level_panels(image, boxes: np.ndarray, attribute: int, name: str,
                 level_names: Optional[Sequence[str]] = None,
                 panel_height: int = 256, gap: int = 6) -> Image.Image:
    """One figure-5 row: the input, then each level's box for `attribute`.

    Args:
        image: PIL image or (H, W, 3) array 0..255, any size.
        boxes: (L, M, 4) normalized boxes of this image.
        attribute: index m of the attribute.
        name: its name, written on every box.
        level_names: L titles (not drawn here; see `localization_grid`).
        panel_height: height of every panel in pixels (the image is scaled).
        gap: white pixels between panels.

    Returns:
        RGB image (panel_height, (L + 1) panels wide).
    """
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (L, M, 4). Received: shape={boxes.shape}")
    if not 0 <= attribute < boxes.shape[1]:
        raise ValueError(f"attribute must be in 0..{boxes.shape[1] - 1}. Received: attribute={attribute}")
    base = _fit_height(_to_image(image), panel_height)
    panels = [base]
    for level in range(boxes.shape[0]):
        panels.append(draw_box(base, boxes[level, attribute], name,
                               _COLOURS[level % len(_COLOURS)], width=max(2, panel_height // 100)))
    width = sum(p.size[0] for p in panels) + gap * (len(panels) - 1)
    row = Image.new("RGB", (width, panel_height), _BG)
    x = 0
    for p in panels:
        row.paste(p, (x, 0))
        x += p.size[0] + gap
    return row


def localization_grid(image, boxes: np.ndarray, attributes: Sequence[int],
                      names: Sequence[str], probabilities: Optional[Sequence[float]] = None,
                      labels: Optional[Sequence[int]] = None,
                      level_names: Optional[Sequence[str]] = None,
                      title: str = "", panel_height: int = 256) -> Image.Image:
    """Rows of `level_panels` for several attributes, with titles.

    Args:
        image: PIL image or (H, W, 3) array 0..255.
        boxes: (L, M, 4) boxes of this image.
        attributes: indices of the attributes to show (one row each).
        names: all M attribute names.
        probabilities, labels: optional length-M predictions, written in
            each row's label.
        level_names: L column titles (default "level 1".. finest first).
        title: a line on top (e.g. the file name).
        panel_height: panel height in pixels.
    """
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (L, M, 4). Received: shape={boxes.shape}")
    if len(names) != boxes.shape[1]:
        raise ValueError(f"names must have M={boxes.shape[1]} entries. Received: {len(names)}")
    if not attributes:
        raise ValueError("attributes must name at least one attribute")
    levels = boxes.shape[0]
    level_names = list(level_names or [LEVEL_NAMES[i] if i < len(LEVEL_NAMES) else f"level {i + 1}" for i in range(levels)])
    rows = [level_panels(image, boxes, m, names[m], panel_height=panel_height) for m in attributes]
    panel_w = _fit_height(_to_image(image), panel_height).size[0]
    font = _font(13)
    label_w = 150
    header_h = 22 + (20 if title else 0)
    row_gap = 8
    width = label_w + rows[0].size[0] + 8
    height = header_h + len(rows) * (panel_height + row_gap)
    grid = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(grid)
    y = 2
    if title:
        draw.text((4, y), title, fill=_TEXT, font=font)
        y += 20
    for c, text in enumerate(["input"] + level_names):
        draw.text((label_w + c * (panel_w + 6) + 2, y), text, fill=_TEXT, font=font)
    y = header_h
    for m, row in zip(attributes, rows):
        lines = [names[m]]
        if probabilities is not None:
            lines.append(f"p = {float(probabilities[m]):.3f}")
        if labels is not None:
            lines.append("predicted present" if int(labels[m]) else "predicted absent")
        for k, line in enumerate(lines):
            draw.text((4, y + 4 + 17 * k), line, fill=_TEXT, font=font)
        grid.paste(row, (label_w, y))
        y += panel_height + row_gap
    return grid


def save_localization_picture(path: str, image, boxes: np.ndarray, attributes: Sequence[int],
                              names: Sequence[str], **kwargs) -> str:
    """Writes `localization_grid(...)` as a PNG at `path`; returns the path."""
    grid = localization_grid(image, boxes, attributes, names, **kwargs)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    grid.save(path, format="PNG")
    return path


# ------------------------------------------------------------ people in frames


def answer_lines(answer: dict, title: str = "", width: int = 28) -> list[str]:
    """A readable answer as short lines: each group's value (a list joined by
    ","), each ungrouped attribute's name when present; wrapped at `width`."""
    words = [title] if title else []
    for key, value in answer.items():
        if isinstance(value, bool):
            if value:
                words.append(key)
        elif isinstance(value, (list, tuple)):
            if value:
                words.append(",".join(str(v) for v in value))
        elif value is not None and value != "":
            words.append(str(value))
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _track_colour(key) -> tuple[int, int, int]:
    number = int(key) if isinstance(key, (int, np.integer)) else zlib.crc32(str(key).encode("utf-8"))
    return _COLOURS[number % len(_COLOURS)]


def people_picture(image, boxes: Sequence[Sequence[float]], lines: Sequence[Sequence[str]],
                   colour_keys: Optional[Sequence] = None, title: str = "",
                   max_width: int = 1280, font_size: int = 12) -> Image.Image:
    """A camera frame with each person's box and answer lines.

    Args:
        image: the frame (PIL image or (H, W, 3) array 0..255).
        boxes: pixel boxes [x1, y1, x2, y2] (x2, y2 exclusive), in the frame.
        lines: the text lines of each box (`answer_lines`).
        colour_keys: one key per box (a track id) choosing its colour.
        title: a line at the top left (the frame's name).
        max_width: frames wider than this are scaled down first.
    """
    frame = _to_image(image)
    scale = min(1.0, max_width / frame.size[0])
    if scale < 1.0:
        frame = frame.resize((max(1, int(frame.size[0] * scale)), max(1, int(frame.size[1] * scale))),
                             Image.BILINEAR)
    draw = ImageDraw.Draw(frame)
    font = _font(font_size)
    w, h = frame.size
    keys = list(colour_keys) if colour_keys is not None else list(range(len(boxes)))
    for box, text, key in zip(boxes, lines, keys):
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        colour = _track_colour(key)
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=2)
        th = font_size + 3
        tag_h = th * len(text)
        tw = max([_text_width(draw, t, font) for t in text] or [0])
        ty = y1 - tag_h if y1 - tag_h >= 0 else min(max(y2, 0), max(0, h - tag_h))
        tx = min(max(x1, 0), max(0, w - tw - 4))
        if text:
            draw.rectangle([tx, ty, tx + tw + 4, ty + tag_h], fill=colour)
            for k, t in enumerate(text):
                draw.text((tx + 2, ty + 1 + k * th), t, fill=(255, 255, 255), font=font)
    if title:
        tw = _text_width(draw, title, font)
        draw.rectangle([0, 0, tw + 6, font_size + 5], fill=_BG)
        draw.text((3, 1), title, fill=_TEXT, font=font)
    return frame


def save_png(path: str, image: Image.Image) -> str:
    """Writes a PNG atomically (temp name + rename); returns the path."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp"
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
