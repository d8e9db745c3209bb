"""Fixture writers for the data tests: tiny images and annotation files in
the real layouts (scipy.io.savemat reproduces MATLAB's nesting)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.io

from alm_tf.testing.images import image_bytes  # noqa: F401  (the data tests import it from here)


def write_image(path: str, h: int = 8, w: int = 6, fmt: str | None = None, mode: str = "RGB", seed: int = 0) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fmt = fmt or {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}.get(os.path.splitext(path)[1].lower(), "PNG")
    with open(path, "wb") as f:
        f.write(image_bytes(h, w, fmt, mode, seed))
    return path


def write_truncated_jpeg(path: str) -> str:
    data = image_bytes(32, 16, "JPEG", seed=5)
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    return path


def cell(strings: Sequence[str], row: bool = False) -> np.ndarray:
    """A MATLAB cell array of strings, (N, 1) or (1, N)."""
    arr = np.empty((1, len(strings)) if row else (len(strings), 1), dtype=object)
    arr.flat[:] = list(strings)
    return arr


def struct_cell(structs: Sequence[dict], row: bool = False) -> np.ndarray:
    """A MATLAB cell array of structs."""
    arr = np.empty((1, len(structs)) if row else (len(structs), 1), dtype=object)
    for k, s in enumerate(structs):
        arr.flat[k] = s
    return arr


def savemat(path: str, variables: dict) -> str:
    scipy.io.savemat(path, variables)
    return path


def write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    return path


def csv_dataset(root: str, n: int = 17, attributes: Sequence[str] = ("a", "b", "c"), split: str = "train", seed: int = 0) -> str:
    """n valid PNG images under root/img and root/ann.csv; returns the csv path."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rel = f"img/{i:03d}.png"
        write_image(os.path.join(root, rel), h=8 + i % 3, w=6, seed=seed * 1000 + i)
        rows.append([rel, split, *rng.integers(0, 2, size=len(attributes)).tolist()])
    return write_csv(os.path.join(root, "ann.csv"), ["image", "split", *attributes], rows)
