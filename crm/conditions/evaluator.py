"""The condition language in Python: one activity, or one contact, without a query.

The SQL compiler (crm.segments.compiler) answers "who matches" for sets; this module
answers "does this one match" where a query per check would be too many (an activity
batch against every trigger, goal, exit and scoring rule; a contact's audience before
each email). Both give the same answers: tests/crm/conditions/test_agreement.py
compares them on random conditions and data with Hypothesis.

Text compares ignoring case; a missing property matches only the negative operators
("is not", "does not contain", "is none of") and "is empty"; numbers and dates in
properties are read from their text, as the compiler does.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from crm.models import Contact
from crm.segments.catalog import ROW_FIELDS
from crm.segments.compiler import DATE_PATTERN, NUMBER_PATTERN, CompileContext, compile_definition

TEXT_OPERATORS = ("equals", "contains", "starts_with", "ends_with")


def definition_is_empty(definition: Any) -> bool:
    """Does the tree hold no condition (None, {}, [] or a group with no conditions)?

    Where conditions are optional (a trigger's, an audience), empty means "no
    restriction", whatever the group's match.
    """
    if not definition:
        return True
    return (
        isinstance(definition, dict) and "match" in definition and not definition.get("conditions")
    )


def activity_matches(
    definition: Any,
    *,
    kind: str,
    properties: Mapping | None,
    now: datetime.datetime | None = None,
) -> bool:
    """Does an activity of `kind` with `properties` meet the activity-mode tree?

    An empty tree matches every activity.
    """
    if definition_is_empty(definition):
        return True
    facts = _ActivityFacts(kind, properties or {}, now or timezone.now())
    return _evaluate(definition, facts.condition)


def contact_matches(definition: Any, contact: Any, *, now: datetime.datetime | None = None) -> bool:
    """Does the contact meet the contact-mode tree? An empty tree matches everyone.

    `contact` is a Contact, or its facts as a mapping keyed by field name (company
    nested: {"company": {"name": …}}, as sequences' contact_facts builds them).
    Conditions on the contact row, its company, tags and properties are checked in
    Python (load company and tags with select_related / prefetch_related to save
    queries); a tree that also tests consent, activities, deals, suppression or other
    segments (or, for facts, something they lack) is answered by the SQL compiler in
    one query for this contact.
    """
    if definition_is_empty(definition):
        return True
    now = now or timezone.now()
    is_facts = isinstance(contact, Mapping)
    if not uses_only_row_fields(definition, facts=contact if is_facts else None):
        pk = contact.get("pk") if is_facts else contact.pk
        if pk is None:
            raise ValueError("These conditions need the contact's pk to query the database.")
        query = compile_definition(definition, context=CompileContext(now=now))
        return Contact.objects.filter(pk=pk).filter(query).exists()
    facts = _MappingFacts(contact, now) if is_facts else _ContactFacts(contact, now)
    return _evaluate(definition, facts.condition)


def uses_only_row_fields(definition: Any, *, facts: Mapping | None = None) -> bool:
    """Can every condition be checked from the contact row (or from these facts) alone?"""
    if isinstance(definition, dict) and "match" in definition:
        return all(
            uses_only_row_fields(child, facts=facts) for child in definition.get("conditions") or []
        )
    if not isinstance(definition, dict) or definition.get("field") not in ROW_FIELDS:
        return False
    return facts is None or _fact_key(definition["field"]) in facts


def _fact_key(field: str) -> str:
    """Where a row field lives in a facts mapping."""
    if field.startswith("company_"):
        return "company"
    return {"email_domain": "email", "property": "properties"}.get(field, field)


# --- The tree -------------------------------------------------------------------------------


def _evaluate(node: dict, condition) -> bool:
    if "match" in node:
        results = (_evaluate(child, condition) for child in node.get("conditions") or [])
        if node["match"] == "all":
            return all(results)
        if node["match"] == "any":
            return any(results)
        return not any(results)
    return condition(node)


# --- Values ---------------------------------------------------------------------------------


def json_text(value: Any) -> str | None:
    """A JSON value as the compiler's JsonText reads it: None for missing or null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dig(data: Any, path: str) -> Any:
    """Follow `a.b.c` through nested mappings; None when any step is missing."""
    for part in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def text_matches(operator: str, text: str | None, expected: Any) -> bool:
    """equals / contains / starts_with / ends_with / in, and their not_ forms, ignoring case."""
    positive = operator.removeprefix("not_")
    if text is None:
        found = False
    elif positive == "in":
        found = text.lower() in {item.strip().lower() for item in expected}
    else:
        text, wanted = text.lower(), expected.strip().lower()
        found = {
            "equals": text == wanted,
            "contains": wanted in text,
            "starts_with": text.startswith(wanted),
            "ends_with": text.endswith(wanted),
        }[positive]
    return not found if operator.startswith("not_") else found


def property_matches(text: str | None, operator: str, value: Any, now: datetime.datetime) -> bool:
    """One comparison of a property's text (None: missing), as crm.segments.compiler.property_q."""
    if operator in ("is_set", "is_empty"):
        return bool(text) == (operator == "is_set")
    if operator.removeprefix("not_") in (*TEXT_OPERATORS, "in"):
        return text_matches(operator, text, value)
    if operator in ("gt", "gte", "lt", "lte"):
        if text is None or not re.fullmatch(NUMBER_PATTERN, text):
            return False
        number, bound = float(text), float(value)
        return {
            "gt": number > bound,
            "gte": number >= bound,
            "lt": number < bound,
            "lte": number <= bound,
        }[operator]
    if text is None or not re.match(DATE_PATTERN, text):
        return False
    return _date_property(text, operator, value, timezone.localdate(now))


def _date_property(text: str, operator: str, value: Any, today: datetime.date) -> bool:
    day = text[:10]
    if operator == "date_before":
        return day < value
    if operator == "date_on_or_after":
        return day >= value
    if operator == "date_in_last_days":
        return (today - datetime.timedelta(days=value)).isoformat() <= day <= today.isoformat()
    if operator == "date_in_next_days":
        return today.isoformat() <= day <= (today + datetime.timedelta(days=value)).isoformat()
    # anniversary_in_next_days: the month and day, any year.
    if value >= 365:
        return True
    month_day = text[5:10]
    start = today.strftime("%m-%d")
    end = (today + datetime.timedelta(days=value)).strftime("%m-%d")
    if start <= end:
        return start <= month_day <= end
    return month_day >= start or month_day <= end


# --- Facts ----------------------------------------------------------------------------------


class _ActivityFacts:
    def __init__(self, kind: str, properties: Mapping, now: datetime.datetime):
        self.kind, self.properties, self.now = kind, properties, now

    def condition(self, node: dict) -> bool:
        operator = node["operator"]
        if node["field"] == "kind":
            return (self.kind in node["value"]) == (operator == "in")
        text = json_text(dig(self.properties, node["key"]))
        return property_matches(text, operator, node.get("value"), self.now)


CHOICE_COLUMNS = {"lifecycle_stage": "lifecycle_stage_id", "country": "country", "source": "source"}
TEXT_COLUMNS = frozenset(
    {
        "entry_point",
        "email",
        "first_name",
        "last_name",
        "time_zone",
        "job_title",
        "language",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    }
)
DATE_COLUMNS = frozenset(
    {"created_at", "updated_at", "last_engaged_at", "lifecycle_stage_changed_at"}
)


class _ContactFacts:
    """Reads a Contact instance (company and tags as loaded)."""

    def __init__(self, contact, now: datetime.datetime):
        self.contact, self.now = contact, now

    def column(self, name: str) -> Any:
        return getattr(self.contact, CHOICE_COLUMNS.get(name, name))

    def company(self, name: str) -> str | None:
        company = self.contact.company
        return getattr(company, name) if company else None

    def owner(self) -> str | None:
        return self.contact.owner.get_username() if self.contact.owner_id else None

    def tags(self) -> set[str]:
        return {tag.name for tag in self.contact.tags.all()}

    def properties(self) -> Mapping:
        return self.contact.properties or {}

    def condition(self, node: dict) -> bool:
        field, operator, value = node["field"], node["operator"], node.get("value")
        if field in CHOICE_COLUMNS:
            return _choice(self.column(field), operator, value)
        if field in TEXT_COLUMNS:
            return _text(self.column(field), operator, value)
        if field == "email_domain":
            email = self.column("email") or ""
            return _text(email[email.find("@") + 1 :], operator, value)
        if field.startswith("company_"):
            return _text(self.company(field.removeprefix("company_")), operator, value)
        if field in DATE_COLUMNS:
            return self._date(self.column(field), operator, value)
        if field == "lead_score":
            return _number(self.column("lead_score"), operator, value)
        if field == "owner":
            username = self.owner()
            if operator in ("is_empty", "is_set"):
                return (username is None) == (operator == "is_empty")
            return (username in value) == (operator == "in")
        if field == "tags":
            names, wanted = self.tags(), {name.strip() for name in value}
            if operator == "has_all":
                return wanted <= names
            return bool(wanted & names) == (operator == "has_any")
        # property
        text = json_text(self.properties().get(node["key"]))
        return property_matches(text, operator, value, self.now)

    def _date(self, at: datetime.datetime | None, operator: str, value: Any) -> bool:
        if operator in ("is_empty", "is_set"):
            return (at is None) == (operator == "is_empty")
        if at is None:
            return False
        if operator == "in_last_days":
            return at >= self.now - datetime.timedelta(days=value)
        if operator == "more_than_days_ago":
            return at < self.now - datetime.timedelta(days=value)
        day = datetime.date.fromisoformat(value)
        start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
        return at < start if operator == "before" else at >= start


class _MappingFacts(_ContactFacts):
    """Reads facts keyed by field name (sequences.conditions.contact_facts)."""

    def column(self, name: str) -> Any:
        return self.contact.get(name)

    def company(self, name: str) -> str | None:
        return (self.contact.get("company") or {}).get(name)

    def owner(self) -> str | None:
        return self.contact.get("owner")

    def tags(self) -> set[str]:
        return set(self.contact.get("tags") or ())

    def properties(self) -> Mapping:
        return self.contact.get("properties") or {}


def _choice(actual: Any, operator: str, value: Any) -> bool:
    if operator in ("in", "not_in"):
        return (actual in value) == (operator == "in")
    return (actual == "") == (operator == "is_empty")


def _text(actual: str | None, operator: str, value: Any) -> bool:
    if operator in ("is_empty", "is_set"):
        return (not actual) == (operator == "is_empty")
    return text_matches(operator, actual, value)


def _number(actual: float, operator: str, value: Any) -> bool:
    if operator == "between":
        return value[0] <= actual <= value[1]
    return actual >= value if operator == "gte" else actual <= value
