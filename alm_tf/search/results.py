"""Writing a search's results: CSV, JSON or the HTML page, by the file's extension.

CSV and JSON hold CONTRACT.md's result columns (`layout.RESULT_COLUMNS`)
then the readable answers; JSON is a list of objects, one per result, in
rank order. Files are written under a temporary name and renamed, so a
failure leaves no half-written file.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import pandas as pd

from alm_tf.search import layout, page
from alm_tf.search.layout import SearchError

__all__ = ["output_format", "write_results"]


def output_format(path: str) -> str:
    """`html`, `csv` or `json` from the path's extension; SearchError otherwise."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in layout.OUTPUT_FORMATS:
        raise SearchError(f"output must end in .{', .'.join(layout.OUTPUT_FORMATS)}. Received: {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SearchError(f"the output's folder does not exist: {folder!r}")
    if os.path.isdir(path):
        raise SearchError(f"the output is a folder: {path!r}")
    return ext


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


def write_results(frame: pd.DataFrame, path: str, term_keys: tuple[str, ...] = (),
                  filters: Optional[str] = None) -> str:
    """Writes `frame` (from `Index.search`) to `path`; returns the format written."""
    fmt = output_format(path)
    tmp = path + ".tmp"
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, lineterminator="\n")
        elif fmt == "json":
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(_records(frame), f, indent=1)
                f.write("\n")
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(page.render(frame, term_keys, filters))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return fmt
