"""RAP v2 reader: struct `RAP_annotation` with `selected_attribute` and `partition_attribute`."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from alm_tf.data.labels import DEFAULT_UNCERTAIN
from alm_tf.data.schemas import RAPV2_ATTRIBUTES
from alm_tf.data.readers._common import (
    DataFormatError,
    Source,
    apply_uncertain,
    cell_elements,
    cell_strings,
    check_partition,
    index_vector,
    label_rows,
    load_mat,
    mat_variable,
    struct_field,
)

SPLITS = ("train", "val", "test")


def read_rapv2(
    annotations: str | os.PathLike,
    *,
    partition: int = 0,
    all_attributes: bool = False,
    uncertain: str = DEFAULT_UNCERTAIN,
) -> Source:
    """Opens RAP v2's `RAP_annotation.mat`.

    Args:
        annotations: path of `RAP_annotation.mat`.
        partition: which of the 5 splits of `partition_attribute` (0-4).
        all_attributes: all 152 columns of `data` instead of the 54 of
            `selected_attribute`.
        uncertain: policy for the value 2 (see `labels.UNCERTAIN_POLICIES`;
            default `ignore`: unknown).

    Returns:
        A Source with splits `train`, `val`, `test`; attribute names from
        the file's `attribute` field; image paths are the `name` entries.
    """
    path = os.fspath(annotations)
    ann = mat_variable(load_mat(path), "RAP_annotation", path)
    where = f"{path}: RAP_annotation"
    names = cell_strings(struct_field(ann, "name", where), f"{where}.name")
    data = np.asarray(struct_field(ann, "data", where))
    attribute = cell_strings(struct_field(ann, "attribute", where), f"{where}.attribute")
    if data.ndim != 2 or data.shape != (len(names), len(attribute)):
        raise DataFormatError(
            f"{where}.data has shape {data.shape}, expected ({len(names)}, {len(attribute)})"
        )
    if all_attributes:
        columns = np.arange(len(attribute))
    else:
        columns = index_vector(
            struct_field(ann, "selected_attribute", where), len(attribute), f"{where}.selected_attribute"
        )
    labels = apply_uncertain(data[:, columns], uncertain)
    attributes = tuple(attribute[c] for c in columns)
    if not all_attributes and attributes != RAPV2_ATTRIBUTES:
        logging.warning("%s: the selected attribute names differ from RAP v2's published ones "
                        "(mapping files name those): %s", path, attributes)
    parts = cell_elements(struct_field(ann, "partition_attribute", where))
    check_partition(partition, len(parts), f"{where}.partition_attribute")
    pwhere = f"{where}.partition_attribute[{partition + 1}]"
    splits = [
        (s, index_vector(struct_field(parts[partition], f"{s}_index", pwhere), len(names), f"{pwhere}.{s}_index"))
        for s in SPLITS
    ]
    return Source("rapv2", attributes, SPLITS, label_rows(names, labels, splits, "name"))
