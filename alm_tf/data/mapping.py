"""Attribute mapping files: how each source data set's labels give a target's.

A mapping file is JSON:

    {
      "description": "...",                      (optional)
      "attributes": ["Female", "AgeOver60", ...], (the target attributes, in order)
      "sources": {                                (one section per source data set)
        "rap": {
          "Female": "Female",                     (a source attribute)
          "LongSleeve": {"not": "ShortSleeve"},   (inverted)
          "Skirt&Dress": {"any": ["Skirt", "ShortSkirt", "Dress"]},
          "Front": null                           (unknown; so is a target left out)
        }
      },
      "notes": {"rap": {"Front": "why"}}          (optional, free text)
    }

A rule is a source attribute name, `{"not": rule}` or `{"any": [rule, ...]}`
(nested freely). Values: a name gives the source label (-1, 0 or 1);
`not` gives 1 - v, unknown staying unknown; `any` gives 1 when a part is
1, 0 when every part is 0, else unknown. Rules name SOURCE attributes only,
never other targets, so a mapping cannot refer to itself: there are no
cycles to resolve. Merging a data set with itself (directly or through an
earlier merge) is the cycle a merge can meet; `alm_tf.data.merge` refuses
it.

Refused, with one line naming the bad value: a key that appears twice in
one object (a duplicate target), a target that is not in `attributes`, a
rule of another shape, and (when bound to a data set) a source attribute
that data set does not have, or a section that maps nothing.

Shipped mappings (package data, `alm_tf/data/mappings/<name>.json`) are
named by their file stem (`builtin_mappings()`); the reasoning behind each
of their entries is in their `notes`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, Union

from alm_tf.data.labels import UNKNOWN

MAPPINGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mappings")
_EXTENSION = ".json"
_TOP_KEYS = ("description", "attributes", "sources", "notes")
NOT, ANY = "not", "any"

# A parsed rule: ("attr", name), ("not", rule), ("any", (rule, ...)); None = unknown.
Rule = Union[tuple, None]

__all__ = [
    "MAPPINGS_DIR",
    "Mapping",
    "MappingError",
    "builtin_mappings",
    "load_mapping",
    "resolve_mapping",
    "rule_attributes",
    "rule_to_json",
]


class MappingError(ValueError):
    """A mapping file that cannot be used (the message names the bad value)."""


class _Object(dict):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _no_duplicates(obj: Any, where: str, what: str = "key") -> None:
    duplicates = getattr(obj, "duplicates", None)
    if duplicates:
        raise MappingError(f"{where} names {what} {duplicates[0]!r} twice")


def builtin_mappings() -> tuple[str, ...]:
    """Names of the mappings shipped with the package."""
    if not os.path.isdir(MAPPINGS_DIR):
        return ()
    return tuple(sorted(n[: -len(_EXTENSION)] for n in os.listdir(MAPPINGS_DIR) if n.endswith(_EXTENSION)))


def resolve_mapping(name_or_path: str) -> str:
    """The path of a mapping file given as a path or a shipped mapping's name."""
    if os.path.isfile(name_or_path):
        return name_or_path
    if name_or_path in builtin_mappings():
        return os.path.join(MAPPINGS_DIR, name_or_path + _EXTENSION)
    raise MappingError(
        f"mapping not found: {name_or_path!r} is neither a file nor a shipped mapping "
        f"({', '.join(builtin_mappings()) or 'none'})"
    )


def _parse_rule(value: Any, where: str) -> Rule:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise MappingError(f"{where}: empty source attribute name")
        return ("attr", value)
    if isinstance(value, dict):
        _no_duplicates(value, where)
        if len(value) == 1 and NOT in value:
            inner = _parse_rule(value[NOT], f"{where}.{NOT}")
            if inner is None:
                raise MappingError(f"{where}: {{'not': null}} is not a rule (leave the target out for unknown)")
            return (NOT, inner)
        if len(value) == 1 and ANY in value and isinstance(value[ANY], list) and value[ANY]:
            parts = tuple(_parse_rule(v, f"{where}.{ANY}[{i}]") for i, v in enumerate(value[ANY]))
            if any(p is None for p in parts):
                raise MappingError(f"{where}: null inside 'any' is not a rule")
            return (ANY, parts)
    raise MappingError(
        f"{where}: {json.dumps(value)} is not a rule (a source attribute name, "
        f'{{"not": rule}}, {{"any": [rule, ...]}} or null)'
    )


def rule_attributes(rule: Rule) -> tuple[str, ...]:
    """The source attributes a rule reads, in order of appearance."""
    if rule is None:
        return ()
    if rule[0] == "attr":
        return (rule[1],)
    if rule[0] == NOT:
        return rule_attributes(rule[1])
    return tuple(a for part in rule[1] for a in rule_attributes(part))


def rule_to_json(rule: Rule) -> Any:
    """A rule back in the file's notation (for the merged manifest)."""
    if rule is None or rule[0] == "attr":
        return None if rule is None else rule[1]
    if rule[0] == NOT:
        return {NOT: rule_to_json(rule[1])}
    return {ANY: [rule_to_json(p) for p in rule[1]]}


def _compile(rule: Rule, index: dict[str, int]) -> Callable[[Sequence[int]], int]:
    """A function from a source label vector to the rule's value."""
    if rule is None:
        return lambda labels: UNKNOWN
    if rule[0] == "attr":
        m = index[rule[1]]
        return lambda labels: labels[m]
    if rule[0] == NOT:
        inner = _compile(rule[1], index)

        def negated(labels: Sequence[int]) -> int:
            v = inner(labels)
            return UNKNOWN if v == UNKNOWN else 1 - v

        return negated
    parts = [_compile(p, index) for p in rule[1]]

    def any_of(labels: Sequence[int]) -> int:
        values = [part(labels) for part in parts]
        if 1 in values:
            return 1
        return 0 if all(v == 0 for v in values) else UNKNOWN

    return any_of


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A validated mapping file.

    Args:
        name: the file's stem.
        path: the file's absolute path.
        sha256: hash of the file's bytes (provenance).
        attributes: the target attributes, in order.
        sources: section name -> {target: rule} (targets left out: unknown).
        description: the file's description, if any.
    """

    name: str
    path: str
    sha256: str
    attributes: tuple[str, ...]
    sources: dict[str, dict[str, Rule]]
    description: str = ""

    def bind(self, section: str, source_attributes: Sequence[str], where: str) -> Callable[[Sequence[int]], list[int]]:
        """The function from one source record's labels to the target labels.

        Args:
            section: the mapping section of this source.
            source_attributes: the source data set's attribute names, in
                record order.
            where: how to name the data set in errors (e.g. `rap (records/rap)`).

        Raises:
            MappingError: no such section, a rule naming an attribute the data
                set does not have, or a section that maps no target.
        """
        if section not in self.sources:
            raise MappingError(
                f"mapping {self.name} has no section {section!r} for data set {where} "
                f"(sections: {', '.join(self.sources)})"
            )
        index = {name: m for m, name in enumerate(source_attributes)}
        rules = self.sources[section]
        for target, rule in rules.items():
            for attribute in rule_attributes(rule):
                if attribute not in index:
                    raise MappingError(
                        f"mapping {self.name}, section {section!r}, target {target!r}: attribute "
                        f"{attribute!r} does not exist in data set {where}"
                    )
        if all(rules.get(t) is None for t in self.attributes):
            raise MappingError(f"mapping {self.name}, section {section!r} maps no attribute of data set {where}")
        functions = [_compile(rules.get(t), index) for t in self.attributes]
        return lambda labels: [f(labels) for f in functions]

    def known_targets(self, section: str) -> tuple[str, ...]:
        """The targets a section maps (the others are unknown for that source)."""
        rules = self.sources[section]
        return tuple(t for t in self.attributes if rules.get(t) is not None)


def load_mapping(name_or_path: str) -> Mapping:
    """Reads and validates a mapping file (a path or a shipped mapping's name).

    Raises:
        MappingError: the file is missing, not JSON, or not a valid mapping.
    """
    path = os.path.abspath(resolve_mapping(name_or_path))
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_object_pairs)
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(f"cannot read mapping {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise MappingError(f"mapping {path} is not valid JSON: {e}") from None
    where = f"mapping {os.path.basename(path)}"
    if not isinstance(data, dict):
        raise MappingError(f"{where}: expected a JSON object at the top")
    _no_duplicates(data, where)
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(_TOP_KEYS)})")
    attributes = data.get("attributes")
    if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) and a for a in attributes):
        raise MappingError(f"{where}: 'attributes' must be a non-empty list of attribute names")
    seen: set[str] = set()
    for a in attributes:
        if a in seen:
            raise MappingError(f"{where}: 'attributes' names target {a!r} twice")
        seen.add(a)
    sections = data.get("sources")
    if not isinstance(sections, dict) or not sections:
        raise MappingError(f"{where}: 'sources' must map data set names to their rules")
    _no_duplicates(sections, f"{where} 'sources'", "data set")
    sources: dict[str, dict[str, Rule]] = {}
    for section, rules in sections.items():
        swhere = f"{where}, section {section!r}"
        if not isinstance(rules, dict):
            raise MappingError(f"{swhere}: expected an object of target: rule")
        _no_duplicates(rules, swhere, "target")
        for target in rules:
            if target not in seen:
                raise MappingError(f"{swhere}: target attribute {target!r} does not exist in 'attributes'")
        sources[section] = {t: _parse_rule(r, f"{swhere}, target {t!r}") for t, r in rules.items()}
    notes = data.get("notes", {})
    if not isinstance(notes, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in notes.values()
    ):
        raise MappingError(f"{where}: 'notes' must map data set names to {{target: text}}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise MappingError(f"{where}: 'description' must be text")
    stem = os.path.splitext(os.path.basename(path))[0]
    return Mapping(stem, path, hashlib.sha256(raw).hexdigest(), tuple(attributes), sources, description)
