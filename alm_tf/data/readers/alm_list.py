"""Reader of the paper code's label lists: `path l1 l2 ... lM` per line."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from alm_tf.data.readers._common import DataFormatError, Row, Source
from alm_tf.data.schemas import get_schema


def read_alm_list(lists: Mapping[str, str | os.PathLike], *, schema: str) -> Source:
    """Opens one label list per split.

    Args:
        lists: split name -> list file, in the order to read them.
        schema: `pa100k`, `rap` or `peta`: the attribute names of the columns.

    Returns:
        A Source; each line's first whitespace-separated token is the image
        path (paths with spaces are not supported, as in the paper's code),
        the rest are the labels (a trailing space is fine).
    """
    if not lists:
        raise DataFormatError("alm_list needs at least one SPLIT=PATH entry")
    attributes = get_schema(schema).attributes
    paths = {split: os.fspath(p) for split, p in lists.items()}
    for split, p in paths.items():
        if not os.path.isfile(p):
            raise DataFormatError(f"label list for split {split!r} not found: {p}")

    def iter_rows() -> Iterator[Row]:
        for split, p in paths.items():
            with open(p, encoding="utf-8") as f:
                for line_no, line in enumerate(f, 1):
                    tokens = line.split()
                    if not tokens:
                        continue
                    yield Row(tokens[0], tuple(tokens[1:]), split, f"{os.path.basename(p)}:{line_no}")

    return Source(schema, attributes, tuple(paths), iter_rows)
