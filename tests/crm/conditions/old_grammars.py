"""The two retired condition evaluators, kept verbatim as the reference the new words must match.

scoring/conditions.py and sequences/conditions.py before the one condition language
(git history has them whole); only the evaluation parts, with ScoringCondition rows
replaced by (field, operator, value) tuples. test_old_words.py checks that each old
condition, translated by crm.conditions.legacy, matches exactly the same data.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

MISSING = object()

# --- scoring/conditions.py ------------------------------------------------------------------


def scoring_condition_passes(operator: str, expected: str, value: Any) -> bool:
    if operator == "is_set":
        return value not in (MISSING, None, "")
    if operator == "is_not_set":
        return value in (MISSING, None, "")
    if value is MISSING or value is None:
        return operator in ("not_equals", "not_contains", "not_in")
    if operator in ("at_least", "at_most"):
        number, bound = _decimal(value), _decimal(expected)
        if number is None or bound is None:
            return False
        return number >= bound if operator == "at_least" else number <= bound
    text, wanted = _scoring_text(value), expected.strip().lower()
    if operator in ("in", "not_in"):
        listed = {part.strip().lower() for part in expected.split(",") if part.strip()}
        return (text in listed) == (operator == "in")
    return {
        "equals": text == wanted,
        "not_equals": text != wanted,
        "contains": wanted in text,
        "not_contains": wanted not in text,
        "starts_with": text.startswith(wanted),
        "ends_with": text.endswith(wanted),
    }[operator]


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _scoring_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def dotted_get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        data = data[part]
    return data


def scoring_contact_value(contact, field: str) -> Any:
    if field.startswith("properties."):
        return dotted_get(contact.properties, field.removeprefix("properties."))
    if field.startswith("company."):
        company = contact.company
        if company is None:
            return MISSING
        return getattr(company, field.removeprefix("company."), MISSING)
    if field == "email_domain":
        return contact.email.rpartition("@")[2]
    if field == "lifecycle_stage":
        return contact.lifecycle_stage_id
    return getattr(contact, field, MISSING)


# --- sequences/conditions.py ----------------------------------------------------------------


def sequence_value_passes(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual not in (MISSING, None, "")) == bool(expected if expected is not None else 1)
    if actual is MISSING or actual is None:
        return op in ("ne", "not_in")
    if op in ("gt", "gte", "lt", "lte"):
        number, bound = _sequence_number(actual), _sequence_number(expected)
        if number is None or bound is None:
            return False
        return {
            "gt": number > bound,
            "gte": number >= bound,
            "lt": number < bound,
            "lte": number <= bound,
        }[op]
    if op in ("in", "not_in"):
        listed = {_seq_text(item) for item in (expected or [])}
        return (_seq_text(actual) in listed) == (op == "in")
    if op == "contains":
        if isinstance(actual, list):
            return _seq_text(expected) in {_seq_text(item) for item in actual}
        return _seq_text(expected) in _seq_text(actual)
    equal = _seq_text(actual) == _seq_text(expected)
    return equal if op == "eq" else not equal


def sequence_activity_matches(condition: Mapping, kind: str, properties: Mapping) -> bool:
    return condition.get("activity") == kind and all(
        sequence_value_passes(c.get("op", "eq"), dotted_get(properties, c["field"]), c.get("value"))
        for c in condition.get("where", [])
    )


def sequence_contact_matches(condition: Mapping, facts: Mapping) -> bool:
    return sequence_value_passes(
        condition.get("op", "eq"), dotted_get(facts, condition["contact"]), condition.get("value")
    )


def _seq_text(value: Any) -> str:
    return str(value).strip().lower()


def _sequence_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
