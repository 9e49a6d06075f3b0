"""Evaluating a rule's conditions against an activity's properties or a contact's fields.

Pure functions over plain values, so a batch of activities is matched in Python
after the rules are loaded once.
"""

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from scoring.models import ScoringCondition, ScoringRule

Op = ScoringCondition.Operator

#: Contact fields a fit condition may test (plus `properties.<name>`).
CONTACT_FIELDS = frozenset(
    {
        "job_title",
        "country",
        "language",
        "source",
        "entry_point",
        "lifecycle_stage",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "email_domain",
    }
)
#: Company fields a fit condition may test, written `company.<field>`.
COMPANY_FIELDS = frozenset({"name", "domain", "size", "industry", "country"})
MISSING = object()


def condition_passes(condition: ScoringCondition, value: Any) -> bool:
    """Does `value` (MISSING when absent) pass the condition? Text compares ignoring case."""
    operator = condition.operator
    if operator == Op.IS_SET:
        return value not in (MISSING, None, "")
    if operator == Op.IS_NOT_SET:
        return value in (MISSING, None, "")
    if value is MISSING or value is None:
        # An absent value "does not contain" or "is none of" anything.
        return operator in (Op.NOT_EQUALS, Op.NOT_CONTAINS, Op.NOT_IN)
    if operator in (Op.AT_LEAST, Op.AT_MOST):
        return _compare_numbers(operator, value, condition.value)
    text, expected = _text(value), condition.value.strip().lower()
    if operator in (Op.IN, Op.NOT_IN):
        listed = {part.strip().lower() for part in condition.value.split(",") if part.strip()}
        return (text in listed) == (operator == Op.IN)
    return _compare_text(operator, text, expected)


def _compare_text(operator: str, text: str, expected: str) -> bool:
    if operator == Op.EQUALS:
        return text == expected
    if operator == Op.NOT_EQUALS:
        return text != expected
    if operator == Op.CONTAINS:
        return expected in text
    if operator == Op.NOT_CONTAINS:
        return expected not in text
    if operator == Op.STARTS_WITH:
        return text.startswith(expected)
    if operator == Op.ENDS_WITH:
        return text.endswith(expected)
    return False


def _compare_numbers(operator: str, value: Any, limit: str) -> bool:
    number, bound = _number(value), _number(limit)
    if number is None or bound is None:
        return False
    return number >= bound if operator == Op.AT_LEAST else number <= bound


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def dotted_get(data: Any, path: str) -> Any:
    """Follow `a.b.c` through nested mappings; MISSING when any step is absent."""
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        data = data[part]
    return data


def activity_matches(conditions: Iterable[ScoringCondition], properties: Mapping) -> bool:
    """Do the activity's properties pass every condition?"""
    return all(
        condition_passes(condition, dotted_get(properties, condition.field))
        for condition in conditions
    )


def contact_value(contact, field: str) -> Any:
    """The value a fit condition tests: a contact field, `company.<field>` or `properties.<x>`."""
    if field.startswith("properties."):
        return dotted_get(contact.properties, field.removeprefix("properties."))
    if field.startswith("company."):
        company = contact.company
        if company is None:
            return MISSING
        name = field.removeprefix("company.")
        if name.startswith("properties."):
            return MISSING  # companies have no properties yet
        return getattr(company, name, MISSING)
    if field == "email_domain":
        return contact.email.rpartition("@")[2]
    if field == "lifecycle_stage":
        return contact.lifecycle_stage_id
    return getattr(contact, field, MISSING)


def contact_matches(conditions: Iterable[ScoringCondition], contact) -> bool:
    """Does the contact (with its company loaded) pass every condition?"""
    return all(
        condition_passes(condition, contact_value(contact, condition.field))
        for condition in conditions
    )


def condition_problems(condition: ScoringCondition, category: str) -> list[str]:
    """What is wrong with a condition for a rule of this category, as sentences."""
    problems = []
    field = condition.field.strip()
    if category == ScoringRule.Category.FIT and not _is_fit_field(field):
        problems.append(
            f"{field!r} is not a contact field a fit rule can test; use one of "
            f"{', '.join(sorted(CONTACT_FIELDS))}, company.<{'|'.join(sorted(COMPANY_FIELDS))}> "
            "or properties.<name>."
        )
    if condition.operator in (Op.AT_LEAST, Op.AT_MOST) and _number(condition.value) is None:
        problems.append(f"“{condition.get_operator_display()}” needs a number as its value.")
    needs_value = condition.operator not in (Op.IS_SET, Op.IS_NOT_SET)
    if needs_value and not condition.value.strip():
        problems.append(f"“{condition.get_operator_display()}” needs a value.")
    return problems


def condition_validate(condition: ScoringCondition, category: str) -> None:
    """Raise ValidationError naming the problems with this condition, if any."""
    problems = condition_problems(condition, category)
    if problems:
        raise ValidationError(problems)


def _is_fit_field(field: str) -> bool:
    if field.startswith("properties.") and len(field) > len("properties."):
        return True
    if field.startswith("company."):
        return field.removeprefix("company.") in COMPANY_FIELDS
    return field in CONTACT_FIELDS
