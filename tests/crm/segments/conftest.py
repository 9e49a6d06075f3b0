"""Helpers for segment tests: definitions in one line, a frozen clock, who matches."""

import datetime

import pytest
from django.utils import timezone

from crm.models import Contact
from crm.segment_selectors import segment_contacts

#: A Wednesday at noon UTC; far from month ends so relative dates are easy to read.
FROZEN_NOW = datetime.datetime(2026, 6, 17, 12, 0, tzinfo=datetime.UTC)


def cond(field: str, operator: str, value=None, **params) -> dict:
    condition = {"field": field, "operator": operator, **params}
    if value is not None:
        condition["value"] = value
    return condition


def group(*conditions, match: str = "all") -> dict:
    return {"match": match, "conditions": list(conditions)}


def emails(definition: dict) -> set[str]:
    return set(segment_contacts(definition=definition).values_list("email", flat=True))


def everyone() -> set[str]:
    return set(Contact.objects.values_list("email", flat=True))


@pytest.fixture
def frozen_now(monkeypatch):
    """Stop the clock at FROZEN_NOW; `frozen_now.move(days=...)` moves it."""

    class Clock:
        now = FROZEN_NOW

        def move(self, **delta):
            self.now = self.now + datetime.timedelta(**delta)

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock
