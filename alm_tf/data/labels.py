"""Label values of the records: 0, 1 and UNKNOWN (-1), and RAP's value 2.

The one place that defines them; readers, the converter, the merge, the
loss and the metrics import from here.

- `UNKNOWN` (-1): the attribute is not labelled for this image (a CSV cell
  left empty, RAP's uncertain value 2 under the default policy, an
  attribute a merged data set's source does not annotate). The loss gives
  it no gradient; the metrics do not count it.
- `RAP_UNCERTAIN` (2): what RAP v1 / v2 write for an uncertain gender or an
  unknown value. `UNCERTAIN_POLICIES` say what a reader makes of it:
  `ignore` (default): UNKNOWN, as the official evaluation treats it (the
  label counts neither as positive nor as negative); `zero`: 0 (negative),
  what the paper's training lists hold; `skip`: left as 2, so that the
  converter skips the row as "label value out of set".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UNKNOWN = -1
RAP_UNCERTAIN = 2
LABEL_VALUES = (UNKNOWN, 0, 1)
UNCERTAIN_POLICIES = ("ignore", "zero", "skip")
DEFAULT_UNCERTAIN = "ignore"

__all__ = [
    "DEFAULT_UNCERTAIN",
    "LABEL_VALUES",
    "RAP_UNCERTAIN",
    "UNCERTAIN_POLICIES",
    "UNKNOWN",
    "LabelCounts",
    "apply_uncertain",
    "check_uncertain",
    "uncertain_replacement",
]


def check_uncertain(policy: str) -> str:
    """Returns `policy`, or raises ValueError naming the legal values."""
    if policy not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {', '.join(UNCERTAIN_POLICIES)}. Received: uncertain={policy!r}")
    return policy


def uncertain_replacement(policy: str) -> int:
    """The value RAP's 2 becomes under `policy` (2 itself for `skip`)."""
    return {"ignore": UNKNOWN, "zero": 0, "skip": RAP_UNCERTAIN}[check_uncertain(policy)]


def apply_uncertain(labels: np.ndarray, policy: str) -> np.ndarray:
    """A label matrix with RAP's value 2 replaced as `policy` says."""
    value = uncertain_replacement(policy)
    labels = np.asarray(labels)
    if value == RAP_UNCERTAIN:
        return labels
    if labels.dtype.kind in "ub":  # uint8 data would wrap -1 to 255.
        labels = labels.astype(np.int64)
    return np.where(labels == RAP_UNCERTAIN, value, labels)


class LabelCounts:
    """Per-attribute positives and unknowns of a stream of label rows.

    `positive_ratio` is over the KNOWN labels of each attribute (0.0 for an
    attribute with no known label in the split, so that the list stays
    numeric for the loss weighting, where such an attribute has no term).
    """

    def __init__(self, num_attributes: int):
        self.num_rows = 0
        self.positives = [0] * num_attributes
        self.unknowns = [0] * num_attributes

    def add(self, labels: Sequence[int]) -> None:
        self.num_rows += 1
        for m, value in enumerate(labels):
            if value == UNKNOWN:
                self.unknowns[m] += 1
            else:
                self.positives[m] += value

    def positive_ratio(self) -> list[float]:
        ratios = []
        for positives, unknowns in zip(self.positives, self.unknowns):
            known = self.num_rows - unknowns
            ratios.append(round(positives / known, 6) if known else 0.0)
        return ratios

    def manifest_entries(self) -> dict[str, list]:
        """The manifest's `positive_ratio` and `num_unknown` of a split."""
        return {"positive_ratio": self.positive_ratio(), "num_unknown": list(self.unknowns)}
