"""The old condition words of scoring and sequences, translated to the one language.

Before crm.conditions there were three grammars. Scoring rules stored rows of
(field, operator, value) with `at_least`, `is_not_set` and comma-separated lists;
sequences wrote `{"field"|"contact", "op": "eq"|"gte"|"exists"…, "value"}` and
`{"activity": kind, "where": [...]}`. The data migrations and the YAML import read
them through this module; YAML import also warns with ConditionWordDeprecated,
naming the old word and the new one. Nothing new is ever written in the old words.

Each translator returns (tree, notes): the condition tree and one note per old word
met, such as "operator 'at_least' is now 'gte'". A condition with no equivalent
raises LegacyConditionError, saying what to write instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

#: Old scoring operators → new (text fields keep equals, contains, starts_with…).
SCORING_OPERATORS = {
    "equals": "equals",
    "not_equals": "not_equals",
    "contains": "contains",
    "not_contains": "not_contains",
    "starts_with": "starts_with",
    "ends_with": "ends_with",
    "in": "in",
    "not_in": "not_in",
    "at_least": "gte",
    "at_most": "lte",
    "is_set": "is_set",
    "is_not_set": "is_empty",
}
#: Old sequence operators ("op") → new ("operator").
SEQUENCE_OPERATORS = {
    "eq": "equals",
    "ne": "not_equals",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "contains": "contains",
    "in": "in",
    "not_in": "not_in",
    "exists": "is_set",  # "exists": false is "is_empty"
}
#: Contact fields both old grammars named the same way as the new one (text compared).
TEXT_FIELDS = frozenset(
    {
        "email",
        "first_name",
        "last_name",
        "job_title",
        "language",
        "time_zone",
        "entry_point",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "email_domain",
    }
)
#: Contact fields whose values are keys, compared exactly: "is any of" / "is none of".
CHOICE_FIELDS = frozenset({"lifecycle_stage", "source", "country"})
COMPANY_FIELDS = frozenset({"name", "domain", "industry", "size", "country"})
NUMBER_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})


class LegacyConditionError(ValueError):
    """An old condition that the one language cannot say the same way."""


class ConditionWordDeprecated(FutureWarning):
    """A config file used an old condition word; FutureWarning, so people see it."""


def warn_deprecated(where: str, notes: Iterable[str]) -> None:
    """Warn once per old word met in a config file (shown by `manage.py import_config`)."""
    for note in dict.fromkeys(notes):
        warnings.warn(
            f"{where}: {note} (one condition language: docs/segments.md).",
            ConditionWordDeprecated,
            stacklevel=3,
        )


def group(conditions: list[dict], match: str = "all") -> dict:
    return {"match": match, "conditions": conditions}


# --- Scoring rules --------------------------------------------------------------------------


def scoring_rows_to_tree(
    rows: Iterable[tuple[str, str, str]], *, category: str
) -> tuple[dict, list[str]]:
    """(field, operator, value) rows of a rule (all must pass) → one "all of" group."""
    conditions, notes = [], []
    for field, operator, value in rows:
        condition, more = scoring_row_to_condition(field, operator, value, category=category)
        conditions.append(condition)
        notes += more
    if conditions:
        notes.append("a list of {field, operator, value} is now a group: {match: all, conditions}")
    return group(conditions), notes


def scoring_row_to_condition(
    field: str, operator: str, value: str, *, category: str
) -> tuple[dict, list[str]]:
    """One old scoring condition: engagement rules test the activity, fit rules the contact."""
    field, value = (field or "").strip(), value or ""
    if operator not in SCORING_OPERATORS:
        raise LegacyConditionError(
            f"{operator!r} is not a scoring operator: use one of {', '.join(SCORING_OPERATORS)}."
        )
    new = SCORING_OPERATORS[operator]
    notes = [f"operator {operator!r} is now {new!r}"] if new != operator else []
    if new in ("in", "not_in"):
        typed: Any = [part.strip() for part in value.split(",") if part.strip()]
        notes.append("a comma-separated value is now a list")
    elif new in ("gte", "lte"):
        typed = _number(value, operator)
    elif new in ("is_set", "is_empty"):
        typed = None
    else:
        typed = value.strip()
    if category == "engagement":
        notes.append(f"field {field!r} is now field 'property' with key {field!r}")
        return _property(field, new, typed), notes
    condition, more = _contact_condition(field, new, typed, source=f"field {field!r}")
    return condition, notes + more


# --- Sequences ------------------------------------------------------------------------------


def sequence_where_to_tree(conditions: Any) -> tuple[dict, list[str]]:
    """A trigger's (or an activity condition's) property list → an activity-mode group."""
    if _is_tree(conditions):
        return conditions, []
    parts, notes = [], []
    for condition in conditions or []:
        part, more = _sequence_property(condition)
        parts.append(part)
        notes += more
    if parts:
        notes.append("a list of {field, op, value} is now a group: {match: all, conditions}")
    return group(parts), notes


def sequence_activities_to_tree(conditions: Any) -> tuple[dict, list[str]]:
    """Goals or exits (any of {activity, where}) → one activity-mode "any of" group."""
    if _is_tree(conditions):
        return conditions, []
    parts, notes = [], []
    for condition in conditions or []:
        part, more = sequence_activity_to_tree(condition)
        parts.append(part)
        notes += more
    return group(parts, "any"), notes


def sequence_activity_to_tree(condition: Any) -> tuple[dict, list[str]]:
    """{"activity": kind, "where": [...]} → all of (kind is any of [kind], where…)."""
    if _is_tree(condition) or not condition:
        return condition or group([]), []
    if not isinstance(condition, Mapping) or not isinstance(condition.get("activity"), str):
        raise LegacyConditionError("an activity condition needs an activity kind.")
    where, notes = sequence_where_to_tree(condition.get("where") or [])
    kind = {"field": "kind", "operator": "in", "value": [condition["activity"]]}
    notes.append("{activity: KIND} is now {field: kind, operator: in, value: [KIND]}")
    return group([kind, *where["conditions"]]), notes


def sequence_contacts_to_tree(conditions: Any) -> tuple[dict, list[str]]:
    """An audience's (or a block's) contact conditions, all of them → a contact-mode group."""
    if _is_tree(conditions):
        return conditions, []
    parts, notes = [], []
    for condition in conditions or []:
        part, more = sequence_contact_to_condition(condition)
        parts.append(part)
        notes += more
    return group(parts), notes


def sequence_contact_to_condition(condition: Any) -> tuple[dict, list[str]]:
    """{"contact": path, "op": op, "value": v} → one contact-mode condition (or group)."""
    if _is_tree(condition) or (isinstance(condition, Mapping) and "field" in condition):
        return dict(condition), []
    if not isinstance(condition, Mapping) or not isinstance(condition.get("contact"), str):
        raise LegacyConditionError("a contact condition needs a contact field.")
    operator, value, notes = _sequence_operator(condition)
    notes.append(f"'contact: {condition['contact']}' is now 'field'")
    if condition["contact"] == "tags":
        return _tags(operator, value), notes
    if condition["contact"] == "lead_score":
        return _lead_score(operator, value), notes
    part, more = _contact_condition(
        condition["contact"], operator, value, source=f"contact {condition['contact']!r}"
    )
    return part, notes + more


def _sequence_property(condition: Any) -> tuple[dict, list[str]]:
    if isinstance(condition, Mapping) and condition.get("field") == "property":
        return dict(condition), []  # already new
    if not isinstance(condition, Mapping) or not isinstance(condition.get("field"), str):
        raise LegacyConditionError("a property condition needs a field.")
    operator, value, notes = _sequence_operator(condition)
    notes.append(f"field {condition['field']!r} is now field 'property' with key")
    return _property(condition["field"], operator, value), notes


def _sequence_operator(condition: Mapping) -> tuple[str, Any, list[str]]:
    old = condition.get("op", "eq")
    if old not in SEQUENCE_OPERATORS:
        raise LegacyConditionError(
            f"{old!r} is not a condition op: use one of {', '.join(SEQUENCE_OPERATORS)}."
        )
    value = condition.get("value")
    new = SEQUENCE_OPERATORS[old]
    if old == "exists":
        present = value if value is not None else True
        new = "is_set" if present else "is_empty"
        value = None
    elif new in NUMBER_OPERATORS:
        value = _number(value, old)
    elif new in ("in", "not_in"):
        value = [_text(item) for item in (value if isinstance(value, list) else [value])]
    else:
        value = _text(value)
    notes = [f"'op: {old}' is now 'operator: {new}'"]
    return new, value, notes


# --- Fields ---------------------------------------------------------------------------------


def _property(key: str, operator: str, value: Any) -> dict:
    if not key:
        raise LegacyConditionError("name the property to test.")
    condition = {"field": "property", "key": key, "operator": operator}
    if value is not None:
        condition["value"] = value
    return condition


def _contact_condition(
    path: str, operator: str, value: Any, *, source: str
) -> tuple[dict, list[str]]:
    if path.startswith("properties.") and len(path) > len("properties."):
        key = path.removeprefix("properties.")
        if "." in key:
            raise LegacyConditionError(
                f"{source}: contact conditions test top-level properties only, not {key!r}."
            )
        return _property(key, operator, value), [f"{source} is now field 'property' with key"]
    if path.startswith("company."):
        name = path.removeprefix("company.")
        if name not in COMPANY_FIELDS:
            raise LegacyConditionError(
                f"{source}: companies have {', '.join(sorted(COMPANY_FIELDS))}, not {name!r}."
            )
        return _text_condition(f"company_{name}", operator, value, source), [
            f"{source} is now field 'company_{name}'"
        ]
    if path in TEXT_FIELDS:
        return _text_condition(path, operator, value, source), []
    if path in CHOICE_FIELDS:
        return _choice_condition(path, operator, value, source), []
    raise LegacyConditionError(f"{source} is not a contact field conditions can test.")


def _text_condition(field: str, operator: str, value: Any, source: str) -> dict:
    if operator in NUMBER_OPERATORS:
        raise LegacyConditionError(f"{source}: text cannot be compared as a number.")
    return _leaf(field, operator, value)


def _choice_condition(field: str, operator: str, value: Any, source: str) -> dict:
    """Keys (stage, source, country) are compared exactly: is any of / is none of."""
    upper = field == "country"

    def keys(values: list[str]) -> list[str]:
        return [item.upper() if upper else item.lower() for item in values]

    if operator in ("equals", "in"):
        return _leaf(field, "in", keys(value if isinstance(value, list) else [value]))
    if operator in ("not_equals", "not_in"):
        return _leaf(field, "not_in", keys(value if isinstance(value, list) else [value]))
    if operator in ("is_set", "is_empty"):
        if field == "country":
            return _leaf(field, operator, None)
        return _leaf(field, "not_in" if operator == "is_set" else "in", [""])
    raise LegacyConditionError(
        f"{source}: a {field.replace('_', ' ')} is a key; compare it with "
        "'is any of' (in) or 'is none of' (not_in)."
    )


def _tags(operator: str, value: Any) -> dict:
    names = value if isinstance(value, list) else [value]
    if operator in ("contains", "equals", "in"):
        return _leaf("tags", "has_any", names)
    if operator in ("not_equals", "not_in"):
        return _leaf("tags", "has_none", names)
    raise LegacyConditionError("tags: use has_any, has_all or has_none.")


def _lead_score(operator: str, value: Any) -> dict:
    if operator in ("gte", "lte"):
        return _leaf("lead_score", operator, value)
    if operator == "gt":
        return _leaf("lead_score", "gte", math.floor(value) + 1)
    if operator == "lt":
        return _leaf("lead_score", "lte", math.ceil(value) - 1)
    if operator in ("equals", "not_equals"):
        number = _number(value, operator)
        same = _leaf("lead_score", "between", [number, number])
        return same if operator == "equals" else group([same], "none")
    raise LegacyConditionError("lead_score: compare it as a number (gte, lte, between).")


def _leaf(field: str, operator: str, value: Any) -> dict:
    condition = {"field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    return condition


def _number(value: Any, operator: str) -> int | float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise LegacyConditionError(f"{operator!r} needs a number, not {value!r}.") from None
    if not math.isfinite(number):
        raise LegacyConditionError(f"{operator!r} needs a number, not {value!r}.")
    return int(number) if number.is_integer() else number


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _is_tree(value: Any) -> bool:
    return isinstance(value, Mapping) and "match" in value
