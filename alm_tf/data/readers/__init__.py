"""Annotation readers, one per source layout (the layouts: `alm_tf/data/README.md`, "Sources").

Each reader returns a `Source`: the data set's attribute names in the
official order (the evaluated subset by default, all attributes on request)
and a re-iterable stream of `Row`s (image path, raw labels, split). Rows are
validated by the converter, not here, so that bad rows are counted and
reported rather than raised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from alm_tf.data.labels import DEFAULT_UNCERTAIN, check_uncertain
from alm_tf.data.readers._common import UNCERTAIN_POLICIES, DataFormatError, Row, Source
from alm_tf.data.readers.alm_list import read_alm_list
from alm_tf.data.readers.csv_file import read_csv
from alm_tf.data.readers.pa100k import read_pa100k
from alm_tf.data.readers.peta import read_peta
from alm_tf.data.readers.rap import read_rap
from alm_tf.data.readers.rapv2 import read_rapv2

FORMATS = ("pa100k", "rap", "rapv2", "peta", "alm_list", "csv")

__all__ = [
    "FORMATS",
    "UNCERTAIN_POLICIES",
    "DataFormatError",
    "Row",
    "Source",
    "open_source",
    "read_alm_list",
    "read_csv",
    "read_pa100k",
    "read_peta",
    "read_rap",
    "read_rapv2",
]


def open_source(
    format: str,
    annotations: str | os.PathLike | Mapping[str, str | os.PathLike],
    *,
    schema: str | None = None,
    partition: int = 0,
    all_attributes: bool = False,
    uncertain: str = DEFAULT_UNCERTAIN,
) -> Source:
    """Opens annotations of the given format.

    Args:
        format: one of FORMATS.
        annotations: the annotation file (or PETA folder); for `alm_list` a
            mapping split name -> list file.
        schema: attribute schema of an `alm_list` (`pa100k`, `rap`, `peta`).
        partition: split number (0-4) for `rap`, `rapv2` and PETA's `.mat`.
        all_attributes: every attribute of the source, not only the
            evaluated ones.
        uncertain: policy for RAP's value 2 (`rap`, `rapv2`, and `alm_list`
            with the `rap` schema): one of `labels.UNCERTAIN_POLICIES`.

    Returns:
        The opened Source.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: format={format!r}")
    check_uncertain(uncertain)
    if format == "alm_list":
        if not isinstance(annotations, Mapping):
            raise ValueError("alm_list annotations must map split names to list files")
        if schema is None:
            raise ValueError("alm_list needs a schema (pa100k, rap or peta)")
        return read_alm_list(annotations, schema=schema, uncertain=uncertain)
    if isinstance(annotations, Mapping):
        raise ValueError(f"format {format!r} takes one annotation path, not SPLIT=PATH entries")
    if format == "pa100k":
        return read_pa100k(annotations, all_attributes=all_attributes)
    if format == "rap":
        return read_rap(annotations, partition=partition, all_attributes=all_attributes, uncertain=uncertain)
    if format == "rapv2":
        return read_rapv2(annotations, partition=partition, all_attributes=all_attributes, uncertain=uncertain)
    if format == "peta":
        return read_peta(annotations, partition=partition, all_attributes=all_attributes)
    return read_csv(annotations)
