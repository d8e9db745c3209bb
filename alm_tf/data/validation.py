"""Checks of what enters the data stage (no TensorFlow: runs in worker processes).

Per-row checks of the converter: a row is kept only if its path stays
inside the images folder, it is not a duplicate, its label count and
values are right, and its image file exists and decodes completely
(Pillow's full decode catches truncated files that a header check misses).

`check_manifest`: a manifest's entries, checked before any record of its
data set is read.
"""

from __future__ import annotations

import dataclasses
import io
import os
import posixpath
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any


from alm_tf.data import fingerprint
from alm_tf.preprocessing import image_input
from alm_tf.data.labels import LABEL_VALUES

# Skip reasons (the manifest and the summary group rows by these).
MISSING_FILE = "missing file"
UNREADABLE_IMAGE = "unreadable image"
WRONG_LABEL_COUNT = "wrong label count"
LABEL_OUT_OF_SET = "label value out of set"
PATH_ESCAPES = "path escapes images_dir"
DUPLICATE_IMAGE = "duplicate image"
REASONS = (MISSING_FILE, UNREADABLE_IMAGE, WRONG_LABEL_COUNT, LABEL_OUT_OF_SET, PATH_ESCAPES, DUPLICATE_IMAGE)

_KEPT_FORMATS = {"JPEG": "jpeg", "PNG": "png"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why a row is skipped: one of REASONS and a detail for the report."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """A fully decoded image: its bytes (as found, or PNG), format and size.

    `encoded` is None when the caller asked not to carry the file's bytes
    (worker processes: the writer re-reads the file, cheaper than sending
    the bytes back, and checks it against `crc32`).
    """

    encoded: bytes | None
    image_format: str
    height: int
    width: int
    crc32: int


def normalize_path(image: str) -> str | Problem:
    """The path as a clean relative POSIX path (used to open the file and to
    find duplicates), or why it is not acceptable."""
    if not image:
        return Problem(MISSING_FILE, "empty image path")
    posix = image.replace("\\", "/")
    if posix.startswith("/") or os.path.isabs(image) or (len(posix) > 1 and posix[1] == ":"):
        return Problem(PATH_ESCAPES, f"absolute path {image!r}")
    norm = posixpath.normpath(posix)
    if norm == ".." or norm.startswith("../"):
        return Problem(PATH_ESCAPES, f"{image!r} leaves the images folder")
    if norm == ".":
        return Problem(MISSING_FILE, f"{image!r} names the images folder itself")
    return norm


_LABEL_STRINGS = {str(v): v for v in LABEL_VALUES}
_ALLOWED = ", ".join(str(v) for v in LABEL_VALUES)


def parse_labels(raw: Sequence[Any], attributes: Sequence[str]) -> tuple[int, ...] | Problem:
    """Raw label values as ints in `labels.LABEL_VALUES` (-1 = unknown, 0, 1),
    or the problem with them."""
    if len(raw) != len(attributes):
        return Problem(WRONG_LABEL_COUNT, f"expected {len(attributes)}, found {len(raw)}")
    out = []
    for name, value in zip(attributes, raw):
        if isinstance(value, str):
            parsed = _LABEL_STRINGS.get(value.strip())
        elif isinstance(value, (bool, int, float)) and value in LABEL_VALUES:
            parsed = int(value)
        else:
            parsed = None
        if parsed is None:
            return Problem(LABEL_OUT_OF_SET, f"{value!r} for {name!r} (allowed: {_ALLOWED})")
        out.append(parsed)
    return tuple(out)


def check_image(images_dir: str, relpath: str, keep_bytes: bool = True,
                max_pixels: int = image_input.DEFAULT_MAX_IMAGE_PIXELS) -> CheckedImage | Problem:
    """Reads and fully decodes one image, its header's size checked first.

    An image of more than `max_pixels` (width x height) is refused before
    decoding. JPEG and PNG bytes are kept as found; the other formats of
    `image_input.FORMATS` (BMP, GIF, WebP) are re-encoded losslessly as
    PNG, since the records hold JPEG or PNG only. With `keep_bytes=False` the bytes of a JPEG or PNG are
    not returned (see `CheckedImage`).
    """
    path = os.path.join(images_dir, relpath)
    if os.path.isdir(path):
        return Problem(UNREADABLE_IMAGE, f"{relpath} is a folder, not an image")
    if not os.path.isfile(path):
        return Problem(MISSING_FILE, relpath)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {e.strerror or e}")
    try:
        with image_input.open_image(data, max_pixels) as img:
            fmt = img.format
            if fmt not in image_input.FORMATS:
                return Problem(UNREADABLE_IMAGE, f"{relpath}: unsupported format {fmt}")
            img.load()  # Full decode: raises on truncated or corrupt data.
            width, height = img.size
            reencoded = fmt not in _KEPT_FORMATS
            if reencoded:
                buf = io.BytesIO()
                img.convert("RGBA" if "A" in img.getbands() else "RGB").save(buf, format="PNG")
                data, fmt = buf.getvalue(), "PNG"
    except Exception as e:  # Pillow raises many types for bad files.
        # Pillow names the in-memory file by its address: dropped, so that the same input gives the same manifest.
        detail = re.sub(r" at 0x[0-9a-fA-F]+", "", str(e))
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {type(e).__name__}: {detail}")
    if width < 1 or height < 1:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: empty image")
    crc = zlib.crc32(data)
    return CheckedImage(data if keep_bytes or reencoded else None, _KEPT_FORMATS[fmt], height, width, crc)


def image_bytes(images_dir: str, relpath: str, checked: CheckedImage) -> bytes | Problem:
    """The bytes to store for a checked image (re-read when not carried)."""
    if checked.encoded is not None:
        return checked.encoded
    try:
        with open(os.path.join(images_dir, relpath), "rb") as f:
            data = f.read()
    except OSError as e:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: {e.strerror or e}")
    if zlib.crc32(data) != checked.crc32:
        return Problem(UNREADABLE_IMAGE, f"{relpath}: changed during the conversion")
    return data


# ------------------------------------------------------------ the manifest

def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shard_problem(name: Any, data_dir: str, real_dir: str) -> str | None:
    """Why a split's shard entry cannot name a file inside `data_dir`, or None."""
    if not isinstance(name, str) or not name:
        return f"{name!r}, not a shard file name"
    norm = normalize_path(name)
    if isinstance(norm, Problem):
        return f"{name!r}, not a path inside the data folder"
    real = os.path.realpath(os.path.join(data_dir, norm))
    if os.path.commonpath([real, real_dir]) != real_dir or real == real_dir:
        return f"{name!r}, which resolves to {real}, outside the data folder"
    return None


def _check_ratios(ratio: Any, entry: Mapping[str, Any], num_attributes: int) -> str | None:
    if ratio is None:
        return None
    if not isinstance(ratio, list) or len(ratio) != num_attributes:
        size = len(ratio) if isinstance(ratio, list) else ratio
        return f"positive_ratio of length {size!r} for {num_attributes} attributes"
    for k, value in enumerate(ratio):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            return f"positive_ratio[{k}] = {value!r} (a ratio in [0, 1] expected)"
    unknown = entry.get("num_unknown")
    if unknown is not None and (not isinstance(unknown, list) or not all(_is_count(v) for v in unknown)):
        return f"num_unknown {unknown!r} (a list of counts >= 0 expected)"
    return None


def _check_split(name: str, entry: Any, num_attributes: int) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    count = entry.get("num_examples")
    if not _is_count(count):
        return f"has num_examples {count!r} (a count >= 0 expected)"
    shards = entry.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, str) and s for s in shards):
        return "has no list of shard file names"
    if not _is_count(entry.get("num_skipped", 0)):
        return f"has num_skipped {entry.get('num_skipped')!r} (a count >= 0 expected)"
    problem = _check_ratios(entry.get("positive_ratio"), entry, num_attributes)
    return f"has {problem}" if problem else None


def check_manifest(manifest: Mapping[str, Any], path: str, data_dir: str) -> None:
    """Checks a manifest before any record is read (`manifest.read_manifest`).

    The attribute list (non-empty, unique names, `num_attributes` its
    length), each split's counts (integers >= 0), ratios (finite, in
    [0, 1], one per attribute) and shards: a path relative to `data_dir`
    that stays inside it once symlinks are resolved, each shard listed
    once in the whole manifest (so in one split); a `fingerprint` entry,
    when there is one, gives every shard a size and a sha256.

    Raises:
        ValueError: one line naming the manifest and the first bad entry.
    """
    attributes = manifest["attributes"]
    if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) and a for a in attributes):
        raise ValueError(f"{path}: 'attributes' must be a non-empty list of names")
    twice = sorted({a for a in attributes if attributes.count(a) > 1})
    if twice:
        raise ValueError(f"{path}: 'attributes' names {twice[0]!r} twice")
    stated = manifest.get("num_attributes", len(attributes))
    if stated != len(attributes):
        raise ValueError(f"{path}: num_attributes is {stated!r} but 'attributes' lists {len(attributes)} names")
    if not isinstance(manifest["splits"], dict):
        raise ValueError(f"{path}: 'splits' must map split names to their entries")
    real_dir = os.path.realpath(data_dir)
    listed: dict[str, str] = {}  # shard (resolved) -> split
    names: dict[str, str] = {}  # shard (resolved) -> its name in the manifest
    for name, entry in manifest["splits"].items():
        problem = _check_split(name, entry, len(attributes))
        if problem:
            raise ValueError(f"{path}: split {name!r} {problem}")
        for shard in entry["shards"]:
            problem = _shard_problem(shard, data_dir, real_dir)
            if problem:
                raise ValueError(f"{path}: split {name!r} lists shard {problem}")
            key = os.path.realpath(os.path.join(data_dir, shard))
            if key in listed:
                where = "twice" if listed[key] == name else f", which split {listed[key]!r} lists too"
                raise ValueError(f"{path}: split {name!r} lists shard {shard!r}{' ' if where == 'twice' else ''}"
                                 f"{where} (each shard belongs to one split, listed once)")
            listed[key] = name
            names[key] = shard
    if fingerprint.KEY in manifest:
        problem = fingerprint.entry_problem(manifest[fingerprint.KEY], names.values())
        if problem:
            raise ValueError(f"{path}: {fingerprint.KEY!r} {problem}")
