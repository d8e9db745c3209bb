"""RAP v1 reader: struct `RAP_annotation` with `label`, `imagesname`, `partion`."""

from __future__ import annotations

import os

import numpy as np

from alm_tf.data.labels import DEFAULT_UNCERTAIN
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
from alm_tf.data.schemas import RAP_ATTRIBUTES

SPLITS = ("trainval", "test")


def _partition_indices(split_struct, size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(trainval, test) 0-based indices of one element of `partion`."""
    names = getattr(getattr(split_struct, "dtype", None), "names", None)
    if names is None and isinstance(split_struct, np.ndarray) and split_struct.dtype == object:
        inner = split_struct.flat[0] if split_struct.size == 1 else split_struct
        names = getattr(inner.dtype, "names", None)
        if names is None and inner.size == 2:  # A cell {trainval, test}.
            a, b = cell_elements(inner)
            return index_vector(a, size, where), index_vector(b, size, where)
    if names is None:
        raise DataFormatError(f"{where}: expected a struct with trainval_index and test_index")
    trainval = struct_field(split_struct, "trainval_index", where)
    test = struct_field(split_struct, "test_index", where)
    return index_vector(trainval, size, f"{where}.trainval_index"), index_vector(
        test, size, f"{where}.test_index"
    )


def read_rap(
    annotations: str | os.PathLike,
    *,
    partition: int = 0,
    all_attributes: bool = False,
    uncertain: str = DEFAULT_UNCERTAIN,
) -> Source:
    """Opens RAP v1's `RAP_annotation.mat`.

    Args:
        annotations: path of `RAP_annotation.mat`.
        partition: which of the 5 random splits of `partion` (0-4).
        all_attributes: all 92 label columns instead of the 51 evaluated.
        uncertain: policy for the value 2 (see `labels.UNCERTAIN_POLICIES`;
            default `ignore`: unknown).

    Returns:
        A Source with splits `trainval`, `test`; image paths are the
        `imagesname` entries, relative to `RAP_dataset/`.
    """
    path = os.fspath(annotations)
    ann = mat_variable(load_mat(path), "RAP_annotation", path)
    where = f"{path}: RAP_annotation"
    labels = np.asarray(struct_field(ann, "label", where))
    names = cell_strings(struct_field(ann, "imagesname", where), f"{where}.imagesname")
    parts = cell_elements(struct_field(ann, "partion", where))
    num_eval = len(RAP_ATTRIBUTES)
    if labels.ndim != 2 or labels.shape[0] != len(names) or labels.shape[1] < num_eval:
        raise DataFormatError(
            f"{where}.label has shape {labels.shape}, expected ({len(names)}, >= {num_eval})"
        )
    if all_attributes:
        eng = cell_strings(struct_field(ann, "attribute_eng", where), f"{where}.attribute_eng")
        if len(eng) != labels.shape[1]:
            raise DataFormatError(
                f"{where}.attribute_eng holds {len(eng)} names for {labels.shape[1]} label columns"
            )
        attributes = RAP_ATTRIBUTES + tuple(eng[num_eval:])
    else:
        attributes = RAP_ATTRIBUTES
        labels = labels[:, :num_eval]
    labels = apply_uncertain(labels, uncertain)
    check_partition(partition, len(parts), f"{where}.partion")
    trainval, test = _partition_indices(parts[partition], len(names), f"{where}.partion[{partition + 1}]")
    return Source(
        "rap",
        attributes,
        SPLITS,
        label_rows(names, labels, [("trainval", trainval), ("test", test)], "imagesname"),
    )
