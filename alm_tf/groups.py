"""Readable answers: attribute groups and per-request thresholds.

A model answers M independent probabilities. Its `AttributeGroups` turn
them into answers a person reads, the same way in the Python API
(`LoadedModel.answers`), alm-predict (CSV columns and JSON lines) and the
serving client:

  {"gender": "female", "age": "18-60", "orientation": "back",
   "carrying": ["backpack"], "boots": false, ...}

- `exclusive` group: the value of its most probable attribute (argmax;
  thresholds are not used, so there is always one answer);
- `binary` group: values[0] when its attribute is above its threshold,
  else values[1];
- `multi` group: the values of its attributes above their thresholds, a
  list in the group's order (maybe empty);
- an attribute in no group: `name: true/false` by its threshold.

"Above its threshold" is the `labels` the model answers (probability >
threshold), or the labels of per-request thresholds (`relabel`): one float,
one per attribute, or a name -> value map (other attributes keep the
model's decision). So thresholds always act the same as re-thresholding
the returned probabilities.

Where a model's groups come from (first found): groups declared for its
training data (a `groups` field in manifest.json, or `groups.json` beside
it: `for_data`), recorded by the trainer in config.json and inside every
.keras file, and by alm-export in the SavedModel (`assets/groups.json`, the
`groups` output of `metadata`); else the known groups of its attribute
list (`infer`: PA-100K, RAP v1/v2, PETA, alm-synth's; a merge writes
PA-100K's attributes and so gets PA-100K's groups); else none: every
attribute is answered on its own.

The JSON description (`AttributeGroups.description()`, what ships with
models, and the format of a groups file):

  {"format_version": 1, "source": "pa100k" | "declared" | "none" | ...,
   "attributes": [M names],
   "groups": [{"name", "kind", "attributes": [...], "values": [...]}, ...],
   "ungrouped": [names in no group], "rules": {kind: how it answers}}

A groups file needs only `groups` (and may carry `attributes`, checked).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from alm_tf.data.schemas import ATTRIBUTE_GROUPS, COLOUR_GROUPS, Group

FORMAT_VERSION = 1
#: A groups file beside a data set's manifest.json (your own data).
GROUPS_FILE = "groups.json"
#: The manifest field with declared groups.
MANIFEST_KEY = "groups"
#: Where groups of no known list and no declaration come from.
NO_GROUPS = "none"
DECLARED = "declared"
#: How each kind answers (shipped in every description).
RULES = {
    "exclusive": "the value of the attribute with the highest probability (argmax; thresholds unused)",
    "binary": "values[0] if the attribute's probability > its threshold, else values[1]",
    "multi": "the values of the attributes whose probability > their threshold, in order (a list)",
    "ungrouped": "attribute name: true if its probability > its threshold, else false",
}
#: How a `multi` answer is written in one CSV cell.
MULTI_SEPARATOR = ";"

ThresholdSpec = Union[None, float, Sequence[float], Mapping[str, float]]

__all__ = [
    "AttributeGroups",
    "GroupsError",
    "GROUPS_FILE",
    "MULTI_SEPARATOR",
    "RULES",
    "for_data",
    "from_description",
    "infer",
    "parse_threshold_values",
    "read_groups_file",
    "relabel",
    "request_thresholds",
]


class GroupsError(ValueError):
    """Groups or thresholds that do not fit; the message is one line naming the value."""


@dataclasses.dataclass(frozen=True)
class AttributeGroups:
    """The groups of one model's attribute list, and how to answer with them.

    Args:
        attributes: the model's M attribute names, in output order.
        groups: `Group`s over those names; each attribute in at most one.
        source: where they come from (`pa100k`, `declared`, `none`, ...).
    """

    attributes: tuple[str, ...]
    groups: tuple[Group, ...] = ()
    source: str = NO_GROUPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "groups", tuple(self.groups))
        index = {a: m for m, a in enumerate(self.attributes)}
        seen: dict[str, str] = {}
        taken = set(self.attributes) | {f"{a}_prob" for a in self.attributes}
        names: set[str] = set()
        for group in self.groups:
            if group.name in names:
                raise GroupsError(f"two groups are called {group.name!r}")
            if group.name in taken:
                raise GroupsError(f"group name {group.name!r} is also an attribute (or its column)")
            names.add(group.name)
            for attribute in group.attributes:
                if attribute not in index:
                    raise GroupsError(f"group {group.name!r} names attribute {attribute!r}, which the "
                                      "model does not have")
                if attribute in seen:
                    raise GroupsError(f"attribute {attribute!r} is in groups {seen[attribute]!r} and "
                                      f"{group.name!r}")
                seen[attribute] = group.name
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_members", tuple(
            np.asarray([index[a] for a in g.attributes], np.int64) for g in self.groups))
        object.__setattr__(self, "_ungrouped", tuple(m for m, a in enumerate(self.attributes)
                                                     if a not in seen))

    # ------------------------------------------------------------ structure

    @property
    def ungrouped(self) -> tuple[str, ...]:
        """Attributes in no group (answered on their own)."""
        return tuple(self.attributes[m] for m in self._ungrouped)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of an answer, in order: group names, then ungrouped attributes."""
        return tuple(g.name for g in self.groups) + self.ungrouped

    @property
    def csv_columns(self) -> tuple[str, ...]:
        """Answer columns of the CSV files: one per group (an ungrouped
        attribute's answer is its label column)."""
        return tuple(g.name for g in self.groups)

    def key_of(self, name: str) -> str:
        """The answer key that holds a group or attribute name (its group's, if any)."""
        for group in self.groups:
            if name == group.name or name in group.attributes:
                return group.name
        if name in self._index:
            return name
        raise GroupsError(f"{name!r} is neither a group nor an attribute of the model "
                          f"(groups: {', '.join(self.csv_columns) or 'none'})")

    def attribute_indices(self, key: str) -> tuple[int, ...]:
        """The attribute indices an answer key depends on."""
        for group, members in zip(self.groups, self._members):
            if group.name == key:
                return tuple(int(m) for m in members)
        if key in self._index:
            return (self._index[key],)
        raise GroupsError(f"{key!r} is not an answer key of the model")

    # -------------------------------------------------------------- answers

    def answer(self, probabilities: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
        """One readable answer from (M,) probabilities and (M,) 0/1 labels."""
        probabilities = np.asarray(probabilities, np.float64)
        labels = np.asarray(labels)
        if probabilities.shape != (len(self.attributes),) or labels.shape != probabilities.shape:
            raise GroupsError(f"expected {len(self.attributes)} probabilities and labels. Received: "
                              f"{probabilities.shape}, {labels.shape}")
        out: dict[str, Any] = {}
        for group, members in zip(self.groups, self._members):
            if group.kind == "exclusive":
                out[group.name] = group.values[int(np.argmax(probabilities[members]))]
            elif group.kind == "binary":
                out[group.name] = group.values[0] if labels[members[0]] else group.values[1]
            else:
                out[group.name] = [v for v, m in zip(group.values, members) if labels[m]]
        for m in self._ungrouped:
            out[self.attributes[m]] = bool(labels[m])
        return out

    def answers(self, probabilities: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
        """Answers of (N, M) probabilities and labels, one per row."""
        probabilities, labels = np.asarray(probabilities), np.asarray(labels)
        return [self.answer(p, y) for p, y in zip(probabilities, labels)]

    @staticmethod
    def cell(value: Any) -> str:
        """One answer value as a CSV cell (a list joined with MULTI_SEPARATOR)."""
        if isinstance(value, (list, tuple)):
            return MULTI_SEPARATOR.join(str(v) for v in value)
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)

    def csv_values(self, answer: Mapping[str, Any]) -> list[str]:
        """The `csv_columns` cells of one answer."""
        return [self.cell(answer[name]) for name in self.csv_columns]

    # ---------------------------------------------------------- description

    def description(self) -> dict:
        """The JSON-able description (module docstring) that ships with models."""
        return {
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "attributes": list(self.attributes),
            "groups": [{"name": g.name, "kind": g.kind, "attributes": list(g.attributes),
                        "values": list(g.values)} for g in self.groups],
            "ungrouped": list(self.ungrouped),
            "rules": dict(RULES),
        }

    def to_json(self) -> str:
        return json.dumps(self.description(), indent=2, sort_keys=True)


def from_description(payload: Any, attributes: Sequence[str], origin: str = "groups",
                     source: Optional[str] = None) -> AttributeGroups:
    """AttributeGroups from a description or a groups file's content.

    Raises:
        GroupsError: one line naming `origin` and the bad value.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("groups"), list):
        raise GroupsError(f"{origin}: expected a JSON object with a 'groups' list")
    version = payload.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise GroupsError(f"{origin}: format_version must be {FORMAT_VERSION}. Received: {version!r}")
    described = payload.get("attributes")
    if described is not None and list(described) != list(attributes):
        raise GroupsError(f"{origin} describes other attributes than the model's")
    groups = []
    for k, item in enumerate(payload["groups"]):
        if not isinstance(item, Mapping):
            raise GroupsError(f"{origin}: group {k} is not a JSON object")
        unknown = sorted(set(item) - {"name", "kind", "attributes", "values"})
        if unknown:
            raise GroupsError(f"{origin}: group {k} has unknown key {unknown[0]!r} (keys: name, kind, "
                              "attributes, values)")
        try:
            groups.append(Group(item.get("name"), item.get("kind"), tuple(item.get("attributes") or ()),
                                tuple(item.get("values") or ())))
        except (TypeError, ValueError) as e:
            raise GroupsError(f"{origin}: {e}") from None
    try:
        return AttributeGroups(tuple(attributes), tuple(groups),
                               source or str(payload.get("source") or DECLARED))
    except GroupsError as e:
        raise GroupsError(f"{origin}: {e}") from None


def read_groups_file(path: str, attributes: Sequence[str]) -> AttributeGroups:
    """A groups file (JSON, see the module docstring) for these attributes."""
    if not os.path.isfile(path):
        raise GroupsError(f"groups file not found: {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except json.JSONDecodeError as e:
        raise GroupsError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    return from_description(payload, attributes, path, source=DECLARED)


def _present_part(group: Group, present: set) -> Optional[Group]:
    """A `multi` group cut to the attributes a list has (None when it has none)."""
    pairs = [(a, v) for a, v in zip(group.attributes, group.values) if a in present]
    if not pairs:
        return None
    return Group(group.name, group.kind, tuple(a for a, _ in pairs), tuple(v for _, v in pairs))


def _colours(dataset: str, attributes: Sequence[str]) -> tuple[Group, ...]:
    """The data set's colour groups (`COLOUR_GROUPS`) cut to the colours `attributes` has."""
    present = set(attributes)
    return tuple(part for part in (_present_part(g, present) for g in COLOUR_GROUPS.get(dataset, ()))
                 if part is not None)


def infer(attributes: Sequence[str], dataset: Optional[str] = None) -> AttributeGroups:
    """The known groups of an attribute list (none when it is not known).

    The list whose names equal `attributes` gives its groups (a known list
    followed only by its clothing colours, `COLOUR_GROUPS`: its groups and
    the colours'); failing that, the groups of `dataset` (a manifest's `dataset`: `pa100k`,
    `rap`, ...) whose attributes are all in `attributes` (a conversion
    with --all_attributes), and its clothing colours (`COLOUR_GROUPS`:
    `upper_color`, `lower_color`) with the colours the list has.
    """
    attributes = tuple(attributes)
    for name, (known, groups) in ATTRIBUTE_GROUPS.items():
        if tuple(known) == attributes:
            return AttributeGroups(attributes, groups, name)
        colours = _colours(name, attributes[len(known):]) if attributes[:len(known)] == tuple(known) else ()
        if colours and sum(len(c.attributes) for c in colours) == len(attributes) - len(known):
            return AttributeGroups(attributes, groups + colours, name)  # a known list and its colours
    if dataset in ATTRIBUTE_GROUPS:
        present = set(attributes)
        kept = tuple(g for g in ATTRIBUTE_GROUPS[dataset][1] if set(g.attributes) <= present)
        kept += _colours(dataset, attributes)
        if kept:
            return AttributeGroups(attributes, kept, str(dataset))
    return AttributeGroups(attributes, (), NO_GROUPS)


def for_data(manifest: Mapping[str, Any], data_dir: Optional[str] = None) -> AttributeGroups:
    """The groups of a converted data set (what the trainer records).

    Declared groups first: the manifest's `groups` field, else
    `data_dir/groups.json`; else `infer(manifest attributes, dataset)`.
    """
    attributes = tuple(manifest["attributes"])
    declared = manifest.get(MANIFEST_KEY)
    if declared is not None:
        return from_description(declared, attributes, "manifest.json 'groups'", source=DECLARED)
    if data_dir and os.path.isfile(os.path.join(data_dir, GROUPS_FILE)):
        return read_groups_file(os.path.join(data_dir, GROUPS_FILE), attributes)
    return infer(attributes, manifest.get("dataset"))


# -------------------------------------------------------------- thresholds


def parse_threshold_values(values: Sequence[str]) -> ThresholdSpec:
    """Text entries (a flag's list) to a threshold spec.

    `["0.4"]` -> 0.4 for all; `["0.3", "0.6", ...]` -> one per attribute;
    `["Female=0.4", "Hat=0.6"]` -> a map. Empty -> None.
    """
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return None
    named = ["=" in v for v in values]
    if any(named) and not all(named):
        raise GroupsError("thresholds are either all NAME=VALUE or all numbers. Received: "
                          + ",".join(values))

    def number(text: str, what: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise GroupsError(f"threshold {what} is not a number. Received: {text!r}") from None

    if all(named):
        out: dict[str, float] = {}
        for v in values:
            name, _, text = v.rpartition("=")
            name = name.strip()
            if name in out:
                raise GroupsError(f"threshold for {name!r} given twice")
            out[name] = number(text, f"of {name!r}")
        return out
    if len(values) == 1:
        return number(values[0], _EVERY_ATTRIBUTE)
    return [number(v, f"#{k + 1}") for k, v in enumerate(values)]


#: How a threshold message names the one value given for all attributes.
_EVERY_ATTRIBUTE = "for every attribute"


def _check(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise GroupsError(f"threshold {what} must be a number. Received: {value!r}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise GroupsError(f"threshold {what} must lie in [0, 1]. Received: {value}")
    return value


def request_thresholds(spec: ThresholdSpec, attributes: Sequence[str]) -> Optional[np.ndarray]:
    """(M,) float32 thresholds of a request; NaN where the model's own apply.

    None for no spec. Raises GroupsError naming a bad value or name.
    """
    if spec is None:
        return None
    m = len(attributes)
    if isinstance(spec, Mapping):
        index = {a: k for k, a in enumerate(attributes)}
        out = np.full(m, np.nan, np.float32)
        for name, value in spec.items():
            if name not in index:
                raise GroupsError(f"threshold for unknown attribute {name!r} (the model's: "
                                  f"{', '.join(attributes)})")
            out[index[name]] = _check(value, f"of {name!r}")
        return out
    if isinstance(spec, (str, bytes)):
        raise GroupsError(f"thresholds must be a number, a list or a map. Received: {spec!r}")
    if isinstance(spec, Sequence) or isinstance(spec, np.ndarray):
        values = list(np.asarray(spec, dtype=object).reshape(-1)) if isinstance(spec, np.ndarray) else list(spec)
        if len(values) != m:
            raise GroupsError(f"{len(values)} thresholds for {m} attributes")
        return np.asarray([_check(v, f"of {attributes[k]!r}") for k, v in enumerate(values)], np.float32)
    return np.full(m, _check(spec, _EVERY_ATTRIBUTE), np.float32)


def relabel(probabilities: np.ndarray, labels: np.ndarray, spec: ThresholdSpec,
            attributes: Sequence[str]) -> np.ndarray:
    """Labels after per-request thresholds: probability > threshold where the
    request sets one, the model's `labels` elsewhere. int32, the shape of
    `probabilities` ((M,) or (N, M))."""
    labels = np.asarray(labels).astype(np.int32)
    thresholds = request_thresholds(spec, attributes)
    if thresholds is None:
        return labels
    probabilities = np.asarray(probabilities, np.float32)
    chosen = ~np.isnan(thresholds)
    return np.where(chosen, probabilities > np.where(chosen, thresholds, 0.0), labels).astype(np.int32)
