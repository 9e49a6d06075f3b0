"""A scoring rule's conditions, in the one condition language (crm.conditions).

Engagement rules test the activity (activity mode: `property` with a key such as
`path` or `utm.campaign`); fit rules test who the person is (contact mode, limited
to the contact row, its company and properties, so a batch of contacts is scored
without a query per contact). This module only picks the mode and the fields;
crm.conditions.evaluator evaluates, crm.segments.validation explains problems.
"""

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from crm.conditions import evaluator
from crm.segments.catalog import ACTIVITY_MODE, CONTACT_MODE, ROW_FIELDS
from crm.segments.validation import References, definition_problems, iter_conditions

#: Fit rules test what the contact row says; owner and tags would cost a query each.
FIT_FIELDS = ROW_FIELDS - {"owner", "tags"}


def rule_mode(category: str) -> str:
    """The condition mode of a rule category: engagement tests the activity."""
    return ACTIVITY_MODE if category == "engagement" else CONTACT_MODE


def activity_matches(conditions: Any, properties: Mapping | None, kind: str = "") -> bool:
    """Does the activity (its properties, and kind when the tree tests it) meet the tree?"""
    return evaluator.activity_matches(conditions, kind=kind, properties=properties)


def contact_matches(conditions: Any, contact) -> bool:
    """Does the contact (with its company loaded) meet the fit rule's tree?"""
    return evaluator.contact_matches(conditions, contact)


def condition_problems(conditions: Any, category: str) -> list[str]:
    """What is wrong with a rule's conditions for its category, as sentences."""
    if evaluator.definition_is_empty(conditions):
        return []
    mode = rule_mode(category)
    problems = [
        str(problem)
        for problem in definition_problems(
            conditions,
            references=References.load() if mode == CONTACT_MODE else References.none(),
            mode=mode,
        )
    ]
    if problems or mode == ACTIVITY_MODE:
        return problems
    outside = sorted(
        {
            str(condition.get("field"))
            for condition in iter_conditions(conditions)
            if condition.get("field") not in FIT_FIELDS
        }
    )
    if outside:
        problems.append(
            f"Fit rules test who the person is: {', '.join(outside)} cannot be used here "
            "(use a segment, or an engagement rule for what they do)."
        )
    return problems


def condition_validate(conditions: Any, category: str) -> None:
    """Raise ValidationError naming the problems with a rule's conditions, if any."""
    problems = condition_problems(conditions, category)
    if problems:
        raise ValidationError({"conditions": problems})
