"""The query grammar, and what each term means under the model.

A query is terms separated by spaces:

  backpack            an attribute is present (names match case-insensitively)
  -hat                an attribute (or any term) is absent
  female              a readable value of one group (`gender=female`), when
                      no attribute has the name and one group has the value
  gender=female       a group's readable value
  upper_color=red|black   any of several values of one group (OR)
  hat|glasses         any of several attributes (OR)

Each term is an OR of literals `(attribute, present)`: an `exclusive`
group's value is its attribute present, a `binary` group's first value its
attribute present and its second absent, a `multi` group's value its
attribute present. Under the model's independent probabilities a literal
has probability p or 1 - p, an OR of literals 1 - prod(1 - P), a negated
term 1 - P(term); a track's score is the sum of the terms' log
probabilities (the joint log-probability of the query).

`--strict` reads the thresholded answers instead: a literal holds when the
label says so, an exclusive group's value when it is the group's answer.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from alm_tf import groups as groups_lib
from alm_tf.search.layout import SearchError, prob_column, quote

#: A probability is floored here before its logarithm (a p of 0 would score -inf).
MIN_PROBABILITY = 1e-9
OR = "|"
NOT = "-"
IS = "="

__all__ = ["Literal", "Term", "parse_query", "score_sql", "strict_sql"]


@dataclasses.dataclass(frozen=True)
class Literal:
    """An attribute present or absent; `value` of `group` when it came from one."""

    attribute: str
    present: bool
    group: Optional[str] = None
    value: Optional[str] = None
    exclusive: bool = False

    def probability_sql(self) -> str:
        p = f"CAST({quote(prob_column(self.attribute))} AS DOUBLE)"
        return p if self.present else f"(1.0 - {p})"

    def holds_sql(self) -> str:
        if self.exclusive:
            value = self.value.replace("'", "''")
            return f"({quote(self.group)} = '{value}')"
        return f"({quote(self.attribute)} = {1 if self.present else 0})"


@dataclasses.dataclass(frozen=True)
class Term:
    """One query term: an OR of literals, maybe negated; `text` as typed."""

    text: str
    literals: tuple[Literal, ...]
    negated: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The answer keys (group or attribute names) this term reads."""
        return tuple(dict.fromkeys(lit.group or lit.attribute for lit in self.literals))

    def probability_sql(self) -> str:
        if len(self.literals) == 1:
            p = self.literals[0].probability_sql()
        else:
            p = "(1.0 - " + " * ".join(f"(1.0 - {lit.probability_sql()})" for lit in self.literals) + ")"
        return f"(1.0 - {p})" if self.negated else p

    def holds_sql(self) -> str:
        held = "(" + " OR ".join(lit.holds_sql() for lit in self.literals) + ")"
        return f"(NOT {held})" if self.negated else held


def _value_literals(group, value: str) -> list[Literal]:
    exclusive = group.kind == "exclusive"
    if group.kind == "binary":
        return [Literal(group.attributes[0], value == group.values[0], group.name, value)]
    k = group.values.index(value)
    return [Literal(group.attributes[k], True, group.name, value, exclusive)]


def _group_term(groups: groups_lib.AttributeGroups, name: str, values: list[str]) -> list[Literal]:
    by_name = {g.name.lower(): g for g in groups.groups}
    group = by_name.get(name.lower())
    if group is None:
        raise SearchError(f"unknown group {name!r} in the query (the model's groups: "
                          f"{', '.join(g.name for g in groups.groups) or 'none'})")
    literals = []
    for value in values:
        match = [v for v in group.values if v.lower() == value.lower()]
        if not match:
            raise SearchError(f"unknown value {value!r} of group {group.name!r} (its values: "
                              f"{', '.join(group.values)})")
        literals += _value_literals(group, match[0])
    return literals


def _name_literals(groups: groups_lib.AttributeGroups, name: str) -> list[Literal]:
    if name in groups.attributes:
        return [Literal(name, True)]
    folded = [a for a in groups.attributes if a.lower() == name.lower()]
    if len(folded) == 1:
        return [Literal(folded[0], True)]
    owners = [g for g in groups.groups if any(v.lower() == name.lower() for v in g.values)]
    if len(owners) == 1:
        return _group_term(groups, owners[0].name, [name])
    if owners:
        raise SearchError(f"{name!r} is a value of several groups ({', '.join(g.name for g in owners)}): "
                          f"write GROUP={name}")
    raise SearchError(f"unknown attribute {name!r} in the query (not an attribute of the model nor a "
                      "value of its groups)")


def _term(groups: groups_lib.AttributeGroups, text: str) -> Term:
    body, negated = (text[1:], True) if text.startswith(NOT) else (text, False)
    if not body:
        raise SearchError(f"empty term {text!r} in the query")
    if IS in body:
        name, _, values = body.partition(IS)
        parts = values.split(OR)
        if not name or any(not v for v in parts):
            raise SearchError(f"malformed term {text!r} (expected GROUP=VALUE or GROUP=VALUE|VALUE)")
        return Term(text, tuple(_group_term(groups, name, parts)), negated)
    parts = body.split(OR)
    if any(not p for p in parts):
        raise SearchError(f"malformed term {text!r} (empty name around '|')")
    return Term(text, tuple(lit for p in parts for lit in _name_literals(groups, p)), negated)


def parse_query(query: str, groups: groups_lib.AttributeGroups) -> tuple[Term, ...]:
    """The terms of a query (module docstring); SearchError names a bad term."""
    if not isinstance(query, str) or not query.split():
        raise SearchError("the query is empty (name attributes or GROUP=VALUE terms)")
    return tuple(_term(groups, text) for text in query.split())


def score_sql(terms: tuple[Term, ...]) -> str:
    """The joint log-probability of the terms, as a DuckDB expression."""
    return " + ".join(f"ln(greatest({t.probability_sql()}, {MIN_PROBABILITY}))" for t in terms)


def strict_sql(terms: tuple[Term, ...]) -> str:
    """True where the thresholded answers satisfy every term."""
    return " AND ".join(f"coalesce({t.holds_sql()}, false)" for t in terms)
