"""Reader of our own CSV format: `image`, optional `split`, one column per attribute."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator

from alm_tf.data.labels import UNKNOWN
from alm_tf.data.readers._common import KNOWN_SPLITS, DataFormatError, Row, Source, require_file

IMAGE_COLUMN = "image"
SPLIT_COLUMN = "split"
# Split given to every row of a file without a `split` column.
DEFAULT_SPLIT = "train"


def _header(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        try:
            header = next(csv.reader(f))
        except StopIteration:
            raise DataFormatError(f"{path}: the file is empty") from None
    return [h.strip() for h in header]


def read_csv(annotations: str | os.PathLike) -> Source:
    """Opens a CSV annotation file (what `alm-synth` writes).

    Args:
        annotations: the CSV path. Header: `image`, optionally `split`, then
            the attribute names; values 0/1, and -1 or an empty cell for
            an unknown label; image paths relative to the images folder.

    Returns:
        A Source whose splits are those of the `split` column (train,
        trainval, val, test first, then others in order of appearance,
        which `alm-convert` refuses unless `--splits` names them; `train`
        when there is no such column). An empty label cell is read as
        UNKNOWN (-1); an empty split cell raises DataFormatError.
    """
    path = os.fspath(annotations)
    require_file(path, "CSV annotation file")
    header = _header(path)
    if IMAGE_COLUMN not in header:
        raise DataFormatError(f"{path}: the header has no {IMAGE_COLUMN!r} column: {header}")
    image_col = header.index(IMAGE_COLUMN)
    split_col = header.index(SPLIT_COLUMN) if SPLIT_COLUMN in header else None
    attr_cols = [i for i, h in enumerate(header) if i not in (image_col, split_col)]
    attributes = tuple(header[i] for i in attr_cols)
    if any(not a for a in attributes):
        raise DataFormatError(f"{path}: the header has an empty column name")

    def iter_rows() -> Iterator[Row]:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for values in reader:
                line = f"{os.path.basename(path)}:{reader.line_num}"
                if not values or all(not v.strip() for v in values):
                    continue
                image = values[image_col].strip() if image_col < len(values) else ""
                split = DEFAULT_SPLIT
                if split_col is not None and split_col < len(values):
                    split = values[split_col].strip()
                if len(values) != len(header):
                    # Wrong number of fields: hand every extra value on, so the
                    # converter reports the label count.
                    rest = [v for i, v in enumerate(values) if i not in (image_col, split_col)]
                    yield Row(image, tuple(rest), split, line)
                    continue
                labels = tuple(values[i].strip() or str(UNKNOWN) for i in attr_cols)
                yield Row(image, labels, split, line)

    return Source("csv", attributes, _splits(path, split_col), iter_rows)


def _splits(path: str, split_col: int | None) -> tuple[str, ...]:
    if split_col is None:
        return (DEFAULT_SPLIT,)
    seen: dict[str, None] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            if split_col >= len(values):  # a short row: the converter reports its label count
                continue
            split = values[split_col].strip()
            if not split:
                raise DataFormatError(f"{path}:{reader.line_num}: the split column is empty")
            seen.setdefault(split, None)
    canonical = [s for s in KNOWN_SPLITS if s in seen]
    return tuple(canonical + [s for s in seen if s not in canonical])
