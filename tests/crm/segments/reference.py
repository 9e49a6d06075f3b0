"""A plain-Python evaluator of segment definitions: the meaning the SQL compiler must match.

Slow (it looks at one contact at a time) and obvious on purpose; the property-based test
compares it with the compiled query over a small, varied data set.
"""

import datetime
import re
from decimal import Decimal
from typing import Any

from django.utils import timezone

from crm.models import Activity, ConsentEntry, ConsentTopic, Contact, DealStage, Suppression
from crm.segments.compiler import DATE_PATTERN, NUMBER_PATTERN
from crm.selectors import suppression_active_q


def matches(definition: dict, contact: Contact, now: datetime.datetime) -> bool:
    if "match" in definition:
        results = [matches(child, contact, now) for child in definition["conditions"]]
        if definition["match"] == "all":
            return all(results)
        if definition["match"] == "any":
            return any(results)
        return not any(results)
    return CONDITIONS[definition["field"]](definition, contact, now)


def _days_ago(now: datetime.datetime, days: int) -> datetime.datetime:
    return now - datetime.timedelta(days=days)


def _choice(column):
    def evaluate(node, contact, now):
        value = getattr(contact, column)
        operator = node["operator"]
        if operator == "in":
            return value in node["value"]
        if operator == "not_in":
            return value not in node["value"]
        return (value == "") == (operator == "is_empty")

    return evaluate


def _text(column):
    def evaluate(node, contact, now):
        value = getattr(contact, column).lower()
        operator = node["operator"]
        if operator in ("is_empty", "is_set"):
            return (value == "") == (operator == "is_empty")
        return _text_matches(operator, value, node["value"])

    return evaluate


def _text_matches(operator: str, text: str | None, expected: str) -> bool:
    positive = operator.removeprefix("not_")
    expected = expected.strip().lower()
    if text is None:
        found = False
    else:
        text = text.lower()
        found = {
            "equals": text == expected,
            "contains": expected in text,
            "starts_with": text.startswith(expected),
            "ends_with": text.endswith(expected),
        }[positive]
    return not found if operator.startswith("not_") else found


def _tags(node, contact, now):
    names = set(contact.tags.values_list("name", flat=True))
    wanted = {name.strip() for name in node["value"]}
    if node["operator"] == "has_all":
        return wanted <= names
    has_any = bool(wanted & names)
    return has_any if node["operator"] == "has_any" else not has_any


def _lead_score(node, contact, now):
    value, operator = node["value"], node["operator"]
    if operator == "between":
        return value[0] <= contact.lead_score <= value[1]
    return contact.lead_score >= value if operator == "gte" else contact.lead_score <= value


def _date(column):
    def evaluate(node, contact, now):
        value = getattr(contact, column)
        operator = node["operator"]
        if operator in ("is_empty", "is_set"):
            return (value is None) == (operator == "is_empty")
        if value is None:
            return False
        if operator == "in_last_days":
            return value >= _days_ago(now, node["value"])
        if operator == "more_than_days_ago":
            return value < _days_ago(now, node["value"])
        day = datetime.date.fromisoformat(node["value"])
        start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
        return value < start if operator == "before" else value >= start

    return evaluate


def json_text(properties: dict, key: str) -> str | None:
    value = properties.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def property_matches(properties: dict, node: dict, now: datetime.datetime) -> bool:
    text = json_text(properties, node["key"])
    operator, value = node["operator"], node.get("value")
    if operator in ("is_set", "is_empty"):
        is_set = bool(text)
        return is_set if operator == "is_set" else not is_set
    if operator.removeprefix("not_") in ("equals", "contains", "starts_with", "ends_with"):
        return _text_matches(operator, text, value)
    if operator in ("gt", "gte", "lt", "lte"):
        if text is None or not re.fullmatch(NUMBER_PATTERN, text):
            return False
        number = float(text)
        return {
            "gt": number > value,
            "gte": number >= value,
            "lt": number < value,
            "lte": number <= value,
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
    if value >= 365:
        return True
    month_day = text[5:10]
    start = today.strftime("%m-%d")
    end = (today + datetime.timedelta(days=value)).strftime("%m-%d")
    if start <= end:
        return start <= month_day <= end
    return month_day >= start or month_day <= end


def _property(node, contact, now):
    return property_matches(contact.properties, node, now)


def _consent(node, contact, now):
    topic = ConsentTopic.objects.get(key=node["topic"])
    # From the ledger itself, not the projection the compiler reads: the latest entry.
    entries = sorted(
        ConsentEntry.objects.filter(contact=contact, topic=topic),
        key=lambda entry: (entry.occurred_at, entry.pk),
    )
    granted = bool(entries) and entries[-1].is_granted
    return granted if node["operator"] == "granted" else not granted


def _suppressed(node, contact, now):
    suppressed = Suppression.objects.filter(suppression_active_q(), email=contact.email).exists()
    return suppressed if node["operator"] == "is" else not suppressed


def _activity(node, contact, now):
    done = [
        activity
        for activity in Activity.objects.filter(contact=contact, kind=node["kind"])
        if (not node.get("days") or activity.occurred_at >= _days_ago(now, node["days"]))
        and all(property_matches(activity.properties, where, now) for where in node["where"])
    ]
    if node["operator"] == "none":
        return not done
    return len(done) >= node["count"]


def _open_deal(node, contact, now):
    deals = contact.deals.filter(stage__outcome=DealStage.Outcome.OPEN)
    if node["operator"] == "in_stage":
        deals = deals.filter(stage__key__in=node["value"])
    return deals.exists()


def _won_deals_total(node, contact, now):
    total = sum(
        (deal.amount for deal in contact.deals.filter(stage__outcome=DealStage.Outcome.WON)),
        Decimal(0),
    )
    limit = Decimal(str(node["value"]))
    return total >= limit if node["operator"] == "gte" else total <= limit


def _purchases(contact) -> list[datetime.datetime]:
    orders = Activity.objects.filter(contact=contact, kind="order_placed")
    wins = contact.deals.filter(stage__outcome=DealStage.Outcome.WON, closed_at__isnull=False)
    return [order.occurred_at for order in orders] + [deal.closed_at for deal in wins]


def _days_since_purchase(node, contact, now):
    purchases = _purchases(contact)
    since = _days_ago(now, node["value"])
    recent = any(at >= since for at in purchases)
    if node["operator"] == "in_last_days":
        return recent
    return bool(purchases) and not recent


CONDITIONS = {
    "lifecycle_stage": _choice("lifecycle_stage_id"),
    "country": _choice("country"),
    "entry_point": _text("entry_point"),
    "tags": _tags,
    "lead_score": _lead_score,
    "last_engaged_at": _date("last_engaged_at"),
    "property": _property,
    "consent": _consent,
    "suppressed": _suppressed,
    "activity": _activity,
    "open_deal": _open_deal,
    "won_deals_total": _won_deals_total,
    "days_since_purchase": _days_since_purchase,
}
