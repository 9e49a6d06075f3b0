"""Conditions over activities and contacts, as plain JSON, evaluated in Python.

Three shapes (docs/sequences.md has examples):

- property condition, on an activity's properties:  {"field": "value", "op": "gte", "value": 20}
- activity condition (triggers' goals, exits, waits): {"activity": "order_placed", "where": [...]}
- contact condition (audience, branches, blocks):     {"contact": "lifecycle_stage", "op": "in",
                                                        "value": ["new_lead"]}
"""

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "not_in", "exists")
MISSING = object()


def value_passes(op: str, actual: Any, expected: Any) -> bool:
    """Compare one value; text compares ignoring case, numbers as numbers."""
    if op == "exists":
        return (actual not in (MISSING, None, "")) == bool(expected if expected is not None else 1)
    if actual is MISSING or actual is None:
        return op in ("ne", "not_in")
    if op in ("gt", "gte", "lt", "lte"):
        return _compare_numbers(op, actual, expected)
    if op in ("in", "not_in"):
        listed = {_text(item) for item in (expected or [])}
        return (_text(actual) in listed) == (op == "in")
    if op == "contains":
        if isinstance(actual, list):
            return _text(expected) in {_text(item) for item in actual}
        return _text(expected) in _text(actual)
    equal = _text(actual) == _text(expected)
    return equal if op == "eq" else not equal


def properties_match(conditions: Iterable[Mapping], properties: Mapping) -> bool:
    """Do all property conditions hold for these activity properties?"""
    return all(
        value_passes(c.get("op", "eq"), _dig(properties, c["field"]), c.get("value"))
        for c in conditions
    )


def activity_matches(condition: Mapping, kind: str, properties: Mapping) -> bool:
    """Does an activity of `kind` with `properties` meet the activity condition?"""
    return condition.get("activity") == kind and properties_match(
        condition.get("where", []), properties
    )


def contact_matches(condition: Mapping, facts: Mapping) -> bool:
    """Does the contact, given as plain facts (contact_facts), meet the condition?"""
    return value_passes(
        condition.get("op", "eq"), _dig(facts, condition["contact"]), condition.get("value")
    )


def contact_facts(contact) -> dict:
    """The contact as plain data for conditions; company and tags must be prefetched."""
    company = contact.company
    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "job_title": contact.job_title,
        "country": contact.country,
        "language": contact.language,
        "time_zone": contact.time_zone,
        "lifecycle_stage": contact.lifecycle_stage_id,
        "source": contact.source,
        "entry_point": contact.entry_point,
        "lead_score": contact.lead_score,
        "properties": dict(contact.properties or {}),
        "tags": [tag.name for tag in contact.tags.all()],
        "company": {
            "name": company.name,
            "industry": company.industry,
            "size": company.size,
            "country": company.country,
        }
        if company
        else {},
    }


# --- Validation: every problem as text a marketer can act on --------------------------------


def property_condition_errors(conditions: Any, where: str = "conditions") -> list[str]:
    if not isinstance(conditions, list):
        return [f"{where} must be a list"]
    errors = []
    for index, condition in enumerate(conditions):
        label = f"{where}[{index}]"
        if not isinstance(condition, dict) or not isinstance(condition.get("field"), str):
            errors.append(f"{label} needs a field")
            continue
        errors += _operator_errors(condition, label, {"field", "op", "value"})
    return errors


def activity_condition_errors(conditions: Any, where: str) -> list[str]:
    if not isinstance(conditions, list):
        return [f"{where} must be a list"]
    errors = []
    for index, condition in enumerate(conditions):
        errors += _one_activity_condition_errors(condition, f"{where}[{index}]")
    return errors


def contact_condition_errors(conditions: Any, where: str) -> list[str]:
    if not isinstance(conditions, list):
        return [f"{where} must be a list"]
    errors = []
    for index, condition in enumerate(conditions):
        label = f"{where}[{index}]"
        if not isinstance(condition, dict) or not isinstance(condition.get("contact"), str):
            errors.append(f"{label} needs a contact field, e.g. lifecycle_stage")
            continue
        errors += _operator_errors(condition, label, {"contact", "op", "value"})
    return errors


def _one_activity_condition_errors(condition: Any, label: str) -> list[str]:
    if not isinstance(condition, dict) or not isinstance(condition.get("activity"), str):
        return [f"{label} needs an activity kind, e.g. order_placed"]
    unknown = set(condition) - {"activity", "where", "since"}
    errors = [f"{label}: unknown key {name!r}" for name in sorted(unknown)]
    return errors + property_condition_errors(condition.get("where", []), f"{label}.where")


def _operator_errors(condition: Mapping, label: str, allowed: set[str]) -> list[str]:
    errors = [f"{label}: unknown key {name!r}" for name in sorted(set(condition) - allowed)]
    if condition.get("op", "eq") not in OPERATORS:
        errors.append(f"{label}: op must be one of {', '.join(OPERATORS)}")
    return errors


STEP_TARGET_KEYS = {
    "wait_for_event": ("yes_step", "timeout_step"),
    "branch_if": ("yes_step", "no_step"),
}


def step_config_errors(step_type: str, config: Any) -> list[str]:
    """What is wrong with a step's config for its type (branch targets are checked on review)."""
    if not isinstance(config, dict):
        return ["config must be an object"]
    check = _STEP_CHECKS.get(step_type)
    return check(config) if check else []


def _duration_errors(duration: Any, where: str) -> list[str]:
    if not isinstance(duration, dict) or not duration:
        return [f"{where} needs days, hours and/or minutes"]
    errors = [f"{where}: unknown unit {unit!r}" for unit in duration if unit not in _UNITS]
    bad = [unit for unit in _UNITS if unit in duration and not _is_count(duration[unit])]
    return errors + [f"{where}.{unit} must be a whole number ≥ 0" for unit in bad]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_UNITS = ("days", "hours", "minutes")


def _time_errors(value: Any, where: str) -> list[str]:
    parts = value.split(":") if isinstance(value, str) else []
    valid = len(parts) == 2 and all(part.isdigit() for part in parts)
    if valid and int(parts[0]) < 24 and int(parts[1]) < 60:
        return []
    return [f"{where} must be a time such as 09:00"]


def _check_wait_until_time(config: dict) -> list[str]:
    errors = _time_errors(config.get("time"), "time")
    weekdays = config.get("weekdays", [])
    if not isinstance(weekdays, list) or not all(day in range(7) for day in weekdays):
        errors.append("weekdays must list numbers 0 (Monday) to 6 (Sunday)")
    return errors


def _check_wait_until_date(config: dict) -> list[str]:
    errors = [] if isinstance(config.get("property"), str) else ["property is required"]
    if not isinstance(config.get("offset_days", 0), int):
        errors.append("offset_days must be a whole number (negative: before the date)")
    return errors + _time_errors(config.get("time", "09:00"), "time")


def _check_wait_for_event(config: dict) -> list[str]:
    errors = _one_activity_condition_errors(config.get("event"), "event")
    return errors + _duration_errors(config.get("timeout"), "timeout")


def _check_branch_if(config: dict) -> list[str]:
    condition = config.get("condition")
    if isinstance(condition, dict) and "activity" in condition:
        return _one_activity_condition_errors(condition, "condition")
    return contact_condition_errors([condition], "condition")


def _check_create_task(config: dict) -> list[str]:
    errors = [] if isinstance(config.get("title"), str) else ["title is required"]
    if config.get("assignee", "contact_owner") not in ("contact_owner", "sequence_owner"):
        errors.append("assignee must be contact_owner or sequence_owner")
    return errors


def _check_update_contact(config: dict) -> list[str]:
    allowed = {"lifecycle_stage", "add_tags", "properties"}
    errors = [f"unknown change {name!r}" for name in config if name not in allowed]
    return errors or (
        [] if config else ["say what to change: lifecycle_stage, add_tags, properties"]
    )


def _check_send_email(config: dict) -> list[str]:
    errors = []
    if config.get("on_frequency_cap", "defer") not in ("defer", "skip"):
        errors.append("on_frequency_cap must be defer or skip")
    if "variants" in config:
        errors += _variant_errors(config["variants"])
    if config.get("winner_by", "click") not in ("click", "goal"):
        errors.append("winner_by must be click or goal")
    return errors


def _variant_errors(variants: Any) -> list[str]:
    shape = {"key", "template", "split"}
    if not isinstance(variants, list) or len(variants) < 2:
        return ["variants must list at least two {key, template, split}"]
    if not all(isinstance(v, dict) and set(v) == shape for v in variants):
        return ["each variant needs exactly key, template and split"]
    errors = []
    keys = [v["key"] for v in variants]
    if len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
        errors.append("variant keys must be distinct names")
    splits = [v["split"] for v in variants]
    if not all(_is_count(split) for split in splits) or sum(splits) != 100:
        errors.append("variant splits must be whole percentages adding up to 100")
    return errors


_STEP_CHECKS = {
    "send_email": _check_send_email,
    "wait_duration": lambda config: _duration_errors(config.get("duration"), "duration"),
    "wait_until_time": _check_wait_until_time,
    "wait_until_date": _check_wait_until_date,
    "wait_until_best_time": lambda config: (
        []
        if _is_count(config.get("within_hours")) and 1 <= config["within_hours"] <= 72
        else ["within_hours must be a whole number of hours from 1 to 72"]
    ),
    "wait_for_event": _check_wait_for_event,
    "branch_if": _check_branch_if,
    "create_task": _check_create_task,
    "update_contact": _check_update_contact,
}


# --- Value helpers --------------------------------------------------------------------------


def _dig(data: Mapping, path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _text(value: Any) -> str:
    return str(value).strip().lower()


def _compare_numbers(op: str, actual: Any, expected: Any) -> bool:
    number, bound = _number(actual), _number(expected)
    if number is None or bound is None:
        return False
    return {
        "gt": number > bound,
        "gte": number >= bound,
        "lt": number < bound,
        "lte": number <= bound,
    }[op]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
