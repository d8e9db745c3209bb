"""Reader of the paper code's label lists: `path l1 l2 ... lM` per line."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from alm_tf.data.labels import DEFAULT_UNCERTAIN, RAP_UNCERTAIN, uncertain_replacement
from alm_tf.data.readers._common import DataFormatError, Row, Source, require_file
from alm_tf.data.schemas import get_schema

# The schema whose lists can hold RAP's value 2 (the uncertain policy applies
# to it only; a 2 in a PA-100K or PETA list stays out of set).
_RAP_SCHEMA = "rap"


def read_alm_list(
    lists: Mapping[str, str | os.PathLike], *, schema: str, uncertain: str = DEFAULT_UNCERTAIN
) -> Source:
    """Opens one label list per split.

    Args:
        lists: split name -> list file, in the order to read them.
        schema: `pa100k`, `rap` or `peta`: the attribute names of the columns.
        uncertain: with the `rap` schema, what RAP's value 2 becomes (see
            `labels.UNCERTAIN_POLICIES`; default `ignore`: unknown, -1). The
            paper code's RAP test list gives Female the value 2 in 27 rows.

    Returns:
        A Source; each line's first whitespace-separated token is the image
        path (paths with spaces are not supported, as in the paper's code),
        the rest are the labels (a trailing space is fine).
    """
    if not lists:
        raise DataFormatError("alm_list needs at least one SPLIT=PATH entry")
    attributes = get_schema(schema).attributes
    replacement = uncertain_replacement(uncertain)
    replace = {str(RAP_UNCERTAIN): str(replacement)} if schema == _RAP_SCHEMA else {}
    paths = {split: os.fspath(p) for split, p in lists.items()}
    for split, p in paths.items():
        require_file(p, f"label list for split {split!r}")

    def iter_rows() -> Iterator[Row]:
        for split, p in paths.items():
            with open(p, encoding="utf-8") as f:
                for line_no, line in enumerate(f, 1):
                    tokens = line.split()
                    if not tokens:
                        continue
                    labels = tuple(replace.get(t, t) for t in tokens[1:])
                    yield Row(tokens[0], labels, split, f"{os.path.basename(p)}:{line_no}")

    return Source(schema, attributes, tuple(paths), iter_rows)
