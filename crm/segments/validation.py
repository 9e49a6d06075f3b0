"""Check a segment definition and explain every problem in words a marketer understands.

Conditions are numbered like an outline ("2.1" is the first condition inside the
second item of the top group), the same numbers the builder shows.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from crm.models import ConsentTopic, Contact, DealStage, LifecycleStage, Segment
from crm.segments.catalog import (
    ACTIVITY_MODE,
    CONTACT_MODE,
    GROUP_MATCHES,
    MAX_CONDITIONS,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_VALUES,
    MODES,
    PATH_KEY_PATTERN,
    PROPERTY_KEY_PATTERN,
    SEGMENT_ACTIVITY_KINDS,
    WHERE_OPERATORS,
    Field,
    Kind,
    Operator,
)

MAX_TEXT_LENGTH = 500
MAX_WHERE = 10
MAX_COUNT = 1000
ACTIVITY_KIND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
GROUP_KEYS = frozenset({"match", "conditions"})
CONDITION_KEYS = frozenset({"field", "operator", "value"})


@dataclass(frozen=True)
class DefinitionProblem:
    """One problem: where it is (an outline number, "" for the whole segment) and what."""

    position: str
    message: str
    #: Group messages name their group themselves ("Group 2 is empty…").
    is_group: bool = False

    def __str__(self) -> str:
        if not self.position or self.is_group:
            return self.message
        return f"Condition {self.position}: {self.message}"

    def as_json(self) -> dict:
        return {"position": self.position, "message": self.message, "text": str(self)}


@dataclass(frozen=True)
class References:
    """The keys a definition may name, loaded once per validation."""

    lifecycle_stages: frozenset[str]
    topics: frozenset[str]
    open_deal_stages: frozenset[str]
    owners: frozenset[str]
    #: Every segment's definition by key, for segment conditions and cycle checks.
    segments: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, *, extra_segments: Mapping[str, Any] | None = None) -> References:
        """Read the keys from the database; `extra_segments` (key → definition) win."""
        segments = dict(Segment.objects.values_list("key", "definition"))
        segments.update(extra_segments or {})
        return cls(
            lifecycle_stages=frozenset(LifecycleStage.objects.values_list("key", flat=True)),
            topics=frozenset(ConsentTopic.objects.values_list("key", flat=True)),
            open_deal_stages=frozenset(
                DealStage.objects.filter(outcome=DealStage.Outcome.OPEN).values_list(
                    "key", flat=True
                )
            ),
            owners=frozenset(
                get_user_model().objects.filter(is_staff=True).values_list("username", flat=True)
            ),
            segments=segments,
        )

    @classmethod
    def none(cls) -> References:
        """No keys at all: enough for activity conditions, which name no stored rows."""
        empty: frozenset[str] = frozenset()
        return cls(empty, empty, empty, empty)

    def options(self, name: str) -> frozenset[str] | None:
        return {
            "lifecycle_stages": self.lifecycle_stages,
            "owners": self.owners,
            "sources": frozenset(Contact.Source.values),
            "deal_stages": self.open_deal_stages,
            "segments": frozenset(self.segments),
        }.get(name)


# --- Public entry points --------------------------------------------------------------------


def definition_problems(
    definition: Any,
    *,
    references: References,
    segment_key: str = "",
    mode: str = CONTACT_MODE,
    allow_empty: bool = False,
) -> list[DefinitionProblem]:
    """Every problem with the definition; an empty list means it can be saved.

    `mode` picks the fields (crm.segments.catalog.MODES); `allow_empty` accepts an
    empty top group, which means "no conditions" where conditions are optional.
    """
    if allow_empty and _is_empty_group(definition):
        return []
    checker = _Checker(references, mode)
    checker.group(definition, position="", depth=1)
    if checker.condition_count > MAX_CONDITIONS:
        checker.add("", f"{checker.whole} can have at most {MAX_CONDITIONS} conditions.")
    if segment_key and not checker.problems:
        cycle = segment_cycle(segment_key, definition, references.segments)
        if cycle:
            checker.add("", cycle_message(cycle))
    return checker.problems


def definition_validate(
    definition: Any,
    *,
    segment_key: str = "",
    references: References | None = None,
    mode: str = CONTACT_MODE,
    allow_empty: bool = False,
    field_name: str = "definition",
) -> None:
    """Raise a ValidationError listing every problem, or return if the definition is sound."""
    if references is None:
        references = References.load() if mode == CONTACT_MODE else References.none()
    problems = definition_problems(
        definition,
        references=references,
        segment_key=segment_key,
        mode=mode,
        allow_empty=allow_empty,
    )
    if problems:
        raise ValidationError({field_name: [str(problem) for problem in problems]})


def _is_empty_group(definition: Any) -> bool:
    return (
        definition in (None, {}, [])
        or isinstance(definition, dict)
        and set(definition) <= GROUP_KEYS
        and definition.get("match") in GROUP_MATCHES
        and not definition.get("conditions")
    )


def segment_references(definition: Any) -> set[str]:
    """The keys of the segments a definition's segment conditions name."""
    found: set[str] = set()
    for condition in iter_conditions(definition):
        if condition.get("field") == "segment" and isinstance(condition.get("value"), str):
            found.add(condition["value"])
    return found


def iter_conditions(node: Any) -> Iterable[dict]:
    """Every condition (not group) in the tree, depth first; malformed parts are skipped."""
    if not isinstance(node, dict):
        return
    if "match" in node:
        for child in node.get("conditions") or []:
            yield from iter_conditions(child)
    else:
        yield node


def segment_cycle(key: str, definition: Any, definitions: Mapping[str, Any]) -> list[str]:
    """The chain of keys that leads from `key` back to itself, or [] when there is none."""
    graph = {name: segment_references(value) for name, value in definitions.items()}
    graph[key] = segment_references(definition)
    path: list[str] = [key]
    visiting: set[str] = set()

    def walk(current: str) -> bool:
        for nxt in sorted(graph.get(current, ())):
            if nxt == key:
                path.append(nxt)
                return True
            if nxt in visiting:
                continue
            visiting.add(nxt)
            path.append(nxt)
            if walk(nxt):
                return True
            path.pop()
        return False

    return path if walk(key) else []


def cycle_message(cycle: list[str]) -> str:
    if len(cycle) == 2:
        return f"Segment {cycle[0]} cannot contain itself."
    chain = " → ".join(cycle)
    return f"Segments cannot contain each other in a circle: {chain}."


# --- The checker ----------------------------------------------------------------------------


class _Checker:
    def __init__(self, references: References, mode: str = CONTACT_MODE):
        self.references = references
        self.mode = mode
        self.fields = MODES[mode]
        self.whole = "A segment" if mode == CONTACT_MODE else "A set of conditions"
        self.problems: list[DefinitionProblem] = []
        self.condition_count = 0

    def add(self, position: str, message: str, *, is_group: bool = False) -> None:
        self.problems.append(DefinitionProblem(position, message, is_group))

    def group(self, node: Any, *, position: str, depth: int) -> None:
        top = "The segment" if self.mode == CONTACT_MODE else "The conditions"
        where = f"Group {position}" if position else top
        add = partial(self.add, position, is_group=True)
        if not isinstance(node, dict) or "match" not in node:
            add(f"{where} must be a group of conditions.")
            return
        for name in sorted(set(node) - GROUP_KEYS):
            add(f"{where} has an unknown setting {name!r}.")
        if node["match"] not in GROUP_MATCHES:
            add(f"{where} must match all, any or none of its conditions.")
        if depth > MAX_DEPTH:
            add(f"Groups can be nested at most {MAX_DEPTH} deep.")
            return
        children = node.get("conditions")
        if not isinstance(children, list) or not children:
            add(f"{where} is empty: add a condition or remove the group.")
            return
        for index, child in enumerate(children, start=1):
            child_position = f"{position}.{index}" if position else str(index)
            if isinstance(child, dict) and "match" in child:
                self.group(child, position=child_position, depth=depth + 1)
            else:
                self.condition_count += 1
                self.condition(child, position=child_position)

    def condition(self, node: Any, *, position: str) -> None:
        if not isinstance(node, dict):
            self.add(position, "must be a condition or a group.")
            return
        spec = self.fields.get(node.get("field"))
        if spec is None:
            self.add(position, "choose what to filter on.")
            return
        problems = self._condition_problems(spec, node)
        for message in problems:
            self.add(position, f"{spec.label}: {message}")

    def _condition_problems(self, spec: Field, node: dict) -> list[str]:
        problems = [
            f"unknown setting {name!r}."
            for name in sorted(set(node) - CONDITION_KEYS - set(spec.params))
        ]
        operator = spec.operator(node.get("operator"))
        if operator is None:
            return [*problems, "choose how to compare."]
        problems += self._params(spec, node)
        problems += _value_problems(spec, operator, node, self.references)
        return problems

    def _params(self, spec: Field, node: dict) -> list[str]:
        if spec.key == "property":
            return _property_key_problems(node.get("key"), nested=self.mode == ACTIVITY_MODE)
        if spec.key == "consent":
            topic = node.get("topic")
            if not topic:
                return ["choose a topic."]
            if topic not in self.references.topics:
                return [f"there is no consent topic {topic!r}."]
        if spec.key == "activity":
            return _activity_problems(node, self.references)
        return []


def _property_key_problems(key: Any, *, nested: bool = False) -> list[str]:
    if not isinstance(key, str) or not key.strip():
        return ["enter the property's name."]
    pattern = PATH_KEY_PATTERN if nested else PROPERTY_KEY_PATTERN
    if not re.match(pattern, key) or "__" in key:
        dots = ", '.' between nested names" if nested else ""
        return [
            f"{key!r} is not a property name: use letters, digits, '_' and '-'{dots} "
            "(at most 100 characters)."
        ]
    return []


def _activity_problems(node: dict, references: References) -> list[str]:
    kind = node.get("kind")
    problems = []
    if not isinstance(kind, str) or not kind:
        problems.append("choose an activity such as page_viewed.")
    elif not ACTIVITY_KIND_PATTERN.match(kind):
        problems.append(f"{kind!r} is not an activity name such as page_viewed.")
    elif kind in SEGMENT_ACTIVITY_KINDS:
        problems.append("use a Segment condition instead of segment activities.")
    where = node.get("where", [])
    if not isinstance(where, list):
        return [*problems, "the property conditions must be a list."]
    if len(where) > MAX_WHERE:
        problems.append(f"use at most {MAX_WHERE} property conditions.")
    for index, item in enumerate(where, start=1):
        problems += [f"property condition {index}: {text}" for text in _where_problems(item)]
    return problems


def _where_problems(item: Any) -> list[str]:
    if not isinstance(item, dict):
        return ["must be a property condition."]
    problems = [
        f"unknown setting {name!r}." for name in sorted(set(item) - {"key", "operator", "value"})
    ]
    problems += _property_key_problems(item.get("key"))
    operator = next((op for op in WHERE_OPERATORS if op.key == item.get("operator")), None)
    if operator is None:
        return [*problems, "choose how to compare."]
    return problems + _kind_problems(operator.kind, item.get("value"), noun="value")


def _value_problems(spec: Field, operator: Operator, node: dict, references: References):
    value = node.get("value")
    if operator.kind in (Kind.COUNT_IN_DAYS, Kind.IN_DAYS):
        return _count_and_days_problems(operator, node)
    problems = _kind_problems(operator.kind, value, noun=spec.value_noun)
    if problems:
        return problems
    if operator.kind in (Kind.CHOICES, Kind.CHOICE) and spec.options:
        return _unknown_options(spec, value, references)
    if spec.key == "country" and operator.kind == Kind.TEXTS:
        wrong = [code for code in value if not COUNTRY_PATTERN.match(code)]
        if wrong:
            return [f"use two-letter country codes in capitals, such as DE (not {wrong[0]!r})."]
    if spec.key == "kind" and operator.kind == Kind.TEXTS:
        wrong = [kind for kind in value if not ACTIVITY_KIND_PATTERN.match(kind)]
        if wrong:
            return [f"{wrong[0]!r} is not an activity name such as page_viewed."]
    return []


def _unknown_options(spec: Field, value: Any, references: References) -> list[str]:
    known = references.options(spec.options)
    if known is None:
        return []
    values = value if isinstance(value, list) else [value]
    unknown = [item for item in values if item not in known]
    if not unknown:
        return []
    if spec.key == "open_deal":
        return [f"there is no open deal stage {unknown[0]!r}."]
    return [f"there is no {spec.value_noun} {unknown[0]!r}."]


def _count_and_days_problems(operator: Operator, node: dict) -> list[str]:
    problems = []
    if "value" in node and node["value"] is not None:
        problems.append("use count and days, not value.")
    if operator.kind == Kind.COUNT_IN_DAYS:
        count = node.get("count")
        if not _is_int(count) or not 1 <= count <= MAX_COUNT:
            problems.append(f"enter how many times, a whole number from 1 to {MAX_COUNT}.")
    elif node.get("count") is not None:
        problems.append("a count does not apply to 'did not do'.")
    days = node.get("days")
    if days is not None and (not _is_int(days) or not 1 <= days <= MAX_DAYS):
        problems.append(f"the days must be a whole number from 1 to {MAX_DAYS}, or empty.")
    return problems


def _kind_problems(kind: str, value: Any, *, noun: str) -> list[str]:
    """Check a value against its kind; return what is wrong, in words."""
    if kind == Kind.NONE:
        return [] if value in (None, "") else ["this comparison takes no value."]
    if kind == Kind.TEXT:
        if not isinstance(value, str) or not value.strip():
            return ["enter a value."]
        return [] if len(value) <= MAX_TEXT_LENGTH else ["the value is too long."]
    if kind in (Kind.TEXTS, Kind.CHOICES):
        # A choice may be "" (a contact's unknown source); typed text may not.
        return _list_problems(value, noun, allow_empty=kind == Kind.CHOICES)
    if kind == Kind.CHOICE:
        return [] if isinstance(value, str) and value else [f"choose a {noun}."]
    if kind == Kind.NUMBER:
        return [] if _is_number(value) else ["enter a number."]
    if kind == Kind.RANGE:
        return _range_problems(value)
    if kind == Kind.DATE:
        return [] if _is_date(value) else ["enter a date as YYYY-MM-DD."]
    if kind == Kind.DAYS:
        if _is_int(value) and 1 <= value <= MAX_DAYS:
            return []
        return [f"enter a number of days from 1 to {MAX_DAYS}."]
    return ["this comparison is not supported."]


def _list_problems(value: Any, noun: str, *, allow_empty: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"choose at least one {noun}."]
    if len(value) > MAX_VALUES:
        return [f"choose at most {MAX_VALUES} values."]
    if not all(isinstance(item, str) and (allow_empty or item.strip()) for item in value):
        return ["every value must be text that is not empty."]
    return []


def _range_problems(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) != 2 or not all(map(_is_number, value)):
        return ["enter the lowest and the highest number."]
    if value[0] > value[1]:
        return ["the lowest number must not be above the highest."]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True
