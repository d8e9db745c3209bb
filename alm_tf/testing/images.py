"""Small encoded images of random pixels, for tests and benchmarks."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def image_bytes(h: int = 8, w: int = 6, fmt: str = "PNG", mode: str = "RGB", seed: int = 0) -> bytes:
    """An h x w image of random pixels (`seed`), encoded as `fmt` in `mode`."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format=fmt)
    return buf.getvalue()
