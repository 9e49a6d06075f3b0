"""Helpers for scoring tests: rules in a line, recording activities, a movable clock."""

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from crm.models import Activity
from crm.services import ActivityInput, activity_record_batch
from tests.factories import (
    ContactFactory,
    HandoffRuleFactory,
    ScoringConditionFactory,
    ScoringRuleFactory,
    UserFactory,
)

START = datetime.datetime(2025, 3, 3, 9, 0, tzinfo=datetime.UTC)


class Clock:
    """A frozen `timezone.now()` that tests move forward by hand."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    frozen = Clock(START)
    with mock.patch.object(timezone, "now", frozen):
        yield frozen


def engagement_rule(
    key="pricing", points=10, kind=Activity.Kind.PAGE_VIEWED, conditions=(), **fields
):
    rule = ScoringRuleFactory(
        key=key, name=fields.pop("name", key.title()), activity_kind=kind, points=points, **fields
    )
    for field, operator, value in conditions:
        ScoringConditionFactory(rule=rule, field=field, operator=operator, value=value)
    return rule


def fit_rule(key, points, conditions):
    rule = ScoringRuleFactory(key=key, category="fit", activity_kind="", points=points)
    for field, operator, value in conditions:
        ScoringConditionFactory(rule=rule, field=field, operator=operator, value=value)
    return rule


def record(contact, kind=Activity.Kind.PAGE_VIEWED, times=1, **properties):
    """Record `times` activities for the contact in one batch, through crm's service."""
    items = [
        ActivityInput(kind=kind, source="test", contact_id=contact.pk, properties=dict(properties))
        for _ in range(times)
    ]
    return activity_record_batch(items=items).created


def score_of(contact) -> int:
    contact.refresh_from_db(fields=["lead_score"])
    return contact.lead_score


@pytest.fixture
def contact(db):
    return ContactFactory()


@pytest.fixture
def seller(db):
    return UserFactory(username="seller-one", groups=["Sales"])


@pytest.fixture
def handoff_rule(db):
    return HandoffRuleFactory(
        key="mql", name="Marketing qualified", score_threshold=50, rearm_margin=10, cooldown_days=0
    )
