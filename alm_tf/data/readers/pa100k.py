"""PA-100K reader: `annotation.mat` with per-split names and label matrices."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from alm_tf.data.readers._common import (
    DataFormatError,
    Source,
    cell_strings,
    label_rows,
    load_mat,
    mat_variable,
)
from alm_tf.data.schemas import PA100K_ATTRIBUTES

SPLITS = ("train", "val", "test")


def read_pa100k(annotations: str | os.PathLike, *, all_attributes: bool = False) -> Source:
    """Opens PA-100K's `annotation.mat`.

    Args:
        annotations: path of `annotation.mat`.
        all_attributes: PA-100K evaluates all of its 26 attributes, so this
            changes nothing; accepted for a uniform interface.

    Returns:
        A Source with splits `train`, `val`, `test` and the 26 attributes.
        Image paths are the file names (`000001.jpg`), relative to `data/`.
    """
    del all_attributes  # PA-100K has 26 attributes, all evaluated.
    path = os.fspath(annotations)
    mat = load_mat(path)
    names_in_file = cell_strings(mat_variable(mat, "attributes", path), f"{path}: attributes")
    if len(names_in_file) != len(PA100K_ATTRIBUTES):
        raise DataFormatError(
            f"{path}: 'attributes' holds {len(names_in_file)} names, expected "
            f"{len(PA100K_ATTRIBUTES)}"
        )
    if [n.lower() for n in names_in_file] != [n.lower() for n in PA100K_ATTRIBUTES]:
        logging.warning("%s: attribute names differ from the PA-100K schema: %s", path, names_in_file)
    per_split = []
    tables = {}
    for split in SPLITS:
        names = cell_strings(mat_variable(mat, f"{split}_images_name", path), f"{path}: {split}_images_name")
        labels = np.asarray(mat_variable(mat, f"{split}_label", path))
        if labels.ndim != 2 or labels.shape[0] != len(names):
            raise DataFormatError(
                f"{path}: {split}_label has shape {labels.shape}, expected ({len(names)}, "
                f"{len(PA100K_ATTRIBUTES)})"
            )
        tables[split] = (names, labels)
        per_split.append(split)

    def iter_rows():
        for split in per_split:
            names, labels = tables[split]
            yield from label_rows(names, labels, [(split, range(len(names)))], f"{split}_images_name")()

    return Source("pa100k", PA100K_ATTRIBUTES, SPLITS, iter_rows)
