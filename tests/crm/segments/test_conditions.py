"""Every condition type, compiled to SQL and run on the test database (SQLite or PostgreSQL)."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact, DealStage
from crm.segment_selectors import segment_contacts
from crm.segments.compiler import SegmentCompileError, compile_definition
from crm.services import consent_grant, consent_withdraw
from tests.crm.segments.conftest import cond, emails, everyone, group
from tests.factories import (
    ActivityFactory,
    ConsentTopicFactory,
    ContactFactory,
    DealFactory,
    DealStageFactory,
    SegmentFactory,
    SuppressionFactory,
    TagFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def person(name: str, **fields) -> Contact:
    return ContactFactory(email=f"{name}@example.com", **fields)


def names(found: set[str]) -> set[str]:
    return {email.split("@")[0] for email in found}


def matching(*conditions, match="all") -> set[str]:
    return names(emails(group(*conditions, match=match)))


# --- Contact fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("in", {"lead", "opportunity"}), ("not_in", {"customer"})],
)
def test_lifecycle_stage(operator, expected):
    person("lead", lifecycle_stage_id="new_lead")
    person("opportunity", lifecycle_stage_id="opportunity")
    person("customer", lifecycle_stage_id="new_customer")

    found = matching(cond("lifecycle_stage", operator, ["new_lead", "opportunity"]))

    assert found == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("in", ["DE", "AT"], {"berlin", "vienna"}),
        ("not_in", ["DE"], {"vienna", "nowhere"}),
        ("is_empty", None, {"nowhere"}),
        ("is_set", None, {"berlin", "vienna"}),
    ],
)
def test_country(operator, value, expected):
    person("berlin", country="DE")
    person("vienna", country="AT")
    person("nowhere", country="")

    assert matching(cond("country", operator, value)) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("in", ["ann"], {"anns"}),
        ("not_in", ["ann"], {"bobs", "nobodys"}),
        ("is_empty", None, {"nobodys"}),
        ("is_set", None, {"anns", "bobs"}),
    ],
)
def test_owner(operator, value, expected):
    person("anns", owner=UserFactory(username="ann"))
    person("bobs", owner=UserFactory(username="bob"))
    person("nobodys", owner=None)

    assert matching(cond("owner", operator, value)) == expected


def test_source_includes_unknown_as_a_choice():
    person("form", source="form")
    person("unknown", source="")
    person("api", source="api")

    assert matching(cond("source", "in", ["form", ""])) == {"form", "unknown"}
    assert matching(cond("source", "not_in", ["form", ""])) == {"api"}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("equals", "Pricing Guide", {"guide"}),
        ("not_equals", "pricing guide", {"webinar", "blank"}),
        ("contains", "GUIDE", {"guide"}),
        ("not_contains", "guide", {"webinar", "blank"}),
        ("starts_with", "web", {"webinar"}),
        ("ends_with", "2026", {"webinar"}),
        ("is_empty", None, {"blank"}),
        ("is_set", None, {"guide", "webinar"}),
    ],
)
def test_text_fields_ignore_case(operator, value, expected):
    person("guide", entry_point="pricing guide")
    person("webinar", entry_point="Webinar June 2026")
    person("blank", entry_point="")

    assert matching(cond("entry_point", operator, value)) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("has_any", ["vip", "partner"], {"vip", "both", "partner_only"}),
        ("has_all", ["vip", "partner"], {"both"}),
        ("has_none", ["vip"], {"partner_only", "untagged"}),
    ],
)
def test_tags(operator, value, expected):
    vip, partner = TagFactory(name="vip"), TagFactory(name="partner")
    person("vip").tags.add(vip)
    person("both").tags.add(vip, partner)
    person("partner_only").tags.add(partner)
    person("untagged")

    assert matching(cond("tags", operator, value)) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gte", 50, {"hot", "warm"}),
        ("lte", 49, {"cold"}),
        ("between", [10, 60], {"warm"}),
    ],
)
def test_lead_score_ranges(operator, value, expected):
    person("hot", lead_score=80)
    person("warm", lead_score=50)
    person("cold", lead_score=-5)

    assert matching(cond("lead_score", operator, value)) == expected


# --- Dates, absolute and relative (frozen clock) --------------------------------------------


@pytest.fixture
def engaged(frozen_now):
    now = frozen_now.now
    person("today", last_engaged_at=now - datetime.timedelta(hours=1))
    person("last_month", last_engaged_at=now - datetime.timedelta(days=29))
    person("long_ago", last_engaged_at=now - datetime.timedelta(days=200))
    person("never", last_engaged_at=None)
    return frozen_now


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("in_last_days", 30, {"today", "last_month"}),
        ("more_than_days_ago", 30, {"long_ago"}),
        ("before", "2026-05-20", {"long_ago", "last_month"}),
        ("before", "2026-05-19", {"long_ago"}),
        ("on_or_after", "2026-06-17", {"today"}),
        ("is_empty", None, {"never"}),
        ("is_set", None, {"today", "last_month", "long_ago"}),
    ],
)
def test_last_engaged(engaged, operator, value, expected):
    assert matching(cond("last_engaged_at", operator, value)) == expected


def test_relative_dates_follow_the_clock(engaged):
    in_last_30_days = cond("last_engaged_at", "in_last_days", 30)
    assert matching(in_last_30_days) == {"today", "last_month"}

    engaged.move(days=2)

    assert matching(in_last_30_days) == {"today"}


def test_none_of_a_date_condition_includes_contacts_without_the_date(engaged):
    assert matching(cond("last_engaged_at", "in_last_days", 30), match="none") == {
        "long_ago",
        "never",
    }


def test_created_at_relative(frozen_now):
    person("new")
    frozen_now.move(days=10)
    person("newer")

    assert matching(cond("created_at", "in_last_days", 5)) == {"newer"}
    assert matching(cond("created_at", "more_than_days_ago", 5)) == {"new"}


# --- Custom properties ----------------------------------------------------------------------


@pytest.fixture
def properties(db):
    person("pro", properties={"plan": "Pro", "seats": 12, "renews_on": "2026-07-30"})
    person("free", properties={"plan": "free", "seats": "3", "renews_on": "soon"})
    person("flagged", properties={"plan": None, "beta": True, "seats": "many"})
    person("empty", properties={"plan": ""})
    person("missing", properties={})


@pytest.mark.parametrize(
    ("key", "operator", "value", "expected"),
    [
        ("plan", "equals", "pro", {"pro"}),
        ("plan", "not_equals", "pro", {"free", "flagged", "empty", "missing"}),
        ("plan", "contains", "RE", {"free"}),
        ("plan", "not_contains", "re", {"pro", "flagged", "empty", "missing"}),
        ("plan", "starts_with", "p", {"pro"}),
        ("plan", "ends_with", "ee", {"free"}),
        ("plan", "is_set", None, {"pro", "free"}),
        ("plan", "is_empty", None, {"flagged", "empty", "missing"}),
        ("beta", "equals", "true", {"flagged"}),
        ("seats", "gt", 3, {"pro"}),
        ("seats", "gte", 3, {"pro", "free"}),
        ("seats", "lt", 12, {"free"}),
        ("seats", "lte", 12.5, {"pro", "free"}),
        ("renews_on", "date_before", "2026-08-01", {"pro"}),
        ("renews_on", "date_on_or_after", "2026-08-01", set()),
    ],
)
def test_custom_properties(properties, key, operator, value, expected):
    assert matching(cond("property", operator, value, key=key)) == expected


@pytest.mark.parametrize(
    ("operator", "days", "expected"),
    [
        ("date_in_next_days", 60, {"soon", "today"}),
        ("date_in_next_days", 10, {"today"}),
        ("date_in_last_days", 30, {"recent", "today"}),
        ("anniversary_in_next_days", 30, {"birthday", "today"}),
    ],
)
def test_date_properties_relative_to_today(frozen_now, operator, days, expected):
    person("today", properties={"day": "2026-06-17"})
    person("soon", properties={"day": "2026-08-10T09:00:00Z"})
    person("recent", properties={"day": "2026-06-01"})
    person("birthday", properties={"day": "1990-07-04"})
    person("not_a_date", properties={"day": "next week"})
    person("number", properties={"day": 20260620})

    assert matching(cond("property", operator, days, key="day")) == expected


def test_anniversaries_wrap_around_new_year(frozen_now):
    frozen_now.move(days=190)  # 2026-12-24
    person("new_year", properties={"birthday": "1985-01-03"})
    person("christmas", properties={"birthday": "1985-12-25"})
    person("summer", properties={"birthday": "1985-07-01"})

    found = matching(cond("property", "anniversary_in_next_days", 14, key="birthday"))

    assert found == {"new_year", "christmas"}


def test_a_property_named_like_a_lookup_is_just_a_property():
    person("tricky", properties={"contains": "x", "exact": "y"})

    assert matching(cond("property", "equals", "x", key="contains")) == {"tricky"}


# --- Consent and suppression ----------------------------------------------------------------


def test_consent_is_the_latest_ledger_entry():
    topic = ConsentTopicFactory(key="newsletter")
    granted, withdrawn, never = person("granted"), person("withdrawn"), person("never")
    consent_grant(contact=granted, topic=topic, method="form", source="test")
    consent_grant(contact=withdrawn, topic=topic, method="form", source="test")
    consent_withdraw(contact=withdrawn, topic=topic, method="form", source="test")

    assert matching(cond("consent", "granted", topic="newsletter")) == {"granted"}
    assert matching(cond("consent", "not_granted", topic="newsletter")) == {"withdrawn", "never"}
    assert never.pk


def test_suppressed_counts_only_suppressions_in_force(frozen_now):
    person("bounced")
    person("expired")
    person("fine")
    SuppressionFactory(email="bounced@example.com")
    SuppressionFactory(
        email="expired@example.com",
        reason="soft_bounce",
        expires_at=frozen_now.now - datetime.timedelta(days=1),
    )

    assert matching(cond("suppressed", "is")) == {"bounced"}
    assert matching(cond("suppressed", "is_not")) == {"expired", "fine"}


# --- Behaviour ------------------------------------------------------------------------------


@pytest.fixture
def visits(frozen_now):
    now = frozen_now.now
    twice, once, old, other = person("twice"), person("once"), person("old"), person("other")
    for days_ago in (1, 3):
        ActivityFactory(contact=twice, occurred_at=now - datetime.timedelta(days=days_ago))
    ActivityFactory(contact=once, occurred_at=now - datetime.timedelta(days=2))
    for days_ago in (40, 41):
        ActivityFactory(contact=old, occurred_at=now - datetime.timedelta(days=days_ago))
    ActivityFactory(contact=other, kind="email_opened", occurred_at=now)
    ActivityFactory(
        contact=once,
        properties={"path": "/pricing"},
        occurred_at=now - datetime.timedelta(days=1),
    )
    return frozen_now


@pytest.mark.parametrize(
    ("operator", "params", "expected"),
    [
        ("at_least", {"count": 2, "days": 7}, {"twice", "once"}),
        ("at_least", {"count": 3, "days": 7}, set()),
        ("at_least", {"count": 1, "days": 7}, {"twice", "once"}),
        ("at_least", {"count": 2}, {"twice", "once", "old"}),
        ("none", {"days": 30}, {"old", "other"}),
        ("none", {}, {"other"}),
    ],
)
def test_did_something(visits, operator, params, expected):
    assert matching(cond("activity", operator, kind="page_viewed", **params)) == expected


def test_did_something_where_a_property_matches(visits):
    pricing = [{"key": "path", "operator": "contains", "value": "pricing"}]

    found = matching(cond("activity", "at_least", kind="page_viewed", count=1, where=pricing))

    assert found == {"once"}


# --- Deals and purchases --------------------------------------------------------------------


@pytest.fixture
def deals(frozen_now):
    now = frozen_now.now
    won = DealStageFactory(key="closed-won", outcome=DealStage.Outcome.WON, win_probability=100)
    proposal = DealStageFactory(key="proposal-stage", win_probability=50)
    big, small, open_, buyer = person("big"), person("small"), person("open"), person("buyer")
    DealFactory(contact=big, stage=won, amount=Decimal("900.50"), closed_at=now)
    DealFactory(contact=big, stage=won, amount=200, closed_at=now - datetime.timedelta(days=400))
    DealFactory(contact=small, stage=won, amount=99, closed_at=now - datetime.timedelta(days=100))
    DealFactory(contact=open_, stage=proposal)
    ActivityFactory(
        contact=buyer, kind="order_placed", occurred_at=now - datetime.timedelta(days=20)
    )
    person("nothing")
    return frozen_now


def test_open_deal(deals):
    assert matching(cond("open_deal", "any_stage")) == {"open"}
    assert matching(cond("open_deal", "in_stage", ["proposal-stage"])) == {"open"}
    assert matching(cond("open_deal", "in_stage", ["qualification"])) == set()


def test_won_deals_total(deals):
    assert matching(cond("won_deals_total", "gte", 1000)) == {"big"}
    assert matching(cond("won_deals_total", "lte", 99)) == {"small", "open", "buyer", "nothing"}


def test_a_won_total_of_at_least_zero_is_everyone_even_negated(deals):
    everybody = {"big", "small", "open", "buyer", "nothing"}

    assert matching(cond("won_deals_total", "gte", 0)) == everybody
    assert matching(cond("won_deals_total", "gte", 0), match="none") == set()


def test_days_since_last_purchase_counts_orders_and_won_deals(deals):
    assert matching(cond("days_since_purchase", "in_last_days", 30)) == {"big", "buyer"}
    assert matching(cond("days_since_purchase", "more_than_days_ago", 30)) == {"small"}


# --- Groups, NOT and other segments ---------------------------------------------------------


def test_nested_groups_and_not():
    person("hot_lead", lifecycle_stage_id="new_lead", lead_score=80, country="DE")
    person("cold_lead", lifecycle_stage_id="new_lead", lead_score=5, country="DE")
    person("hot_at", lifecycle_stage_id="opportunity", lead_score=90, country="AT")
    person("customer", lifecycle_stage_id="new_customer", lead_score=90, country="DE")

    definition = group(
        group(
            cond("lifecycle_stage", "in", ["new_lead", "opportunity"]),
            cond("lead_score", "gte", 50),
            match="all",
        ),
        cond("country", "in", ["DE"]),
        match="any",
    )
    not_customers = group(
        definition, group(cond("lifecycle_stage", "in", ["new_customer"]), match="none")
    )

    assert names(emails(definition)) == {"hot_lead", "cold_lead", "hot_at", "customer"}
    assert names(emails(not_customers)) == {"hot_lead", "cold_lead", "hot_at"}


def test_none_of_excludes_every_listed_condition():
    person("de", country="DE")
    person("vip_at", country="AT", lead_score=100)
    person("plain_at", country="AT")

    found = matching(cond("country", "in", ["DE"]), cond("lead_score", "gte", 100), match="none")

    assert found == {"plain_at"}


def test_in_and_not_in_another_segment_uses_its_definition():
    SegmentFactory(key="leads", definition=group(cond("lifecycle_stage", "in", ["new_lead"])))
    SegmentFactory(
        key="german-leads",
        definition=group(cond("segment", "in", "leads"), cond("country", "in", ["DE"])),
    )
    person("german_lead", lifecycle_stage_id="new_lead", country="DE")
    person("austrian_lead", lifecycle_stage_id="new_lead", country="AT")
    person("german_customer", lifecycle_stage_id="new_customer", country="DE")

    assert matching(cond("segment", "in", "german-leads")) == {"german_lead"}
    assert matching(cond("segment", "not_in", "german-leads")) == {
        "austrian_lead",
        "german_customer",
    }


def test_a_circle_stored_in_the_database_is_refused_when_compiling():
    SegmentFactory(key="a", definition=group(cond("segment", "in", "b")))
    SegmentFactory(key="b", definition=group(cond("segment", "in", "a")))

    with pytest.raises(SegmentCompileError, match="a → b → a"):
        compile_definition(group(cond("segment", "in", "a")))


def test_everyone_matches_all_of_nothing_and_nobody_any_of_nothing():
    person("someone")

    assert emails(group()) == everyone()
    assert emails(group(match="any")) == set()


# --- One query, whatever the number of contacts ---------------------------------------------

EVERYTHING = group(
    cond("lifecycle_stage", "in", ["new_lead", "engaged_lead"]),
    group(
        cond("tags", "has_all", ["vip", "partner"]),
        cond("property", "gte", 10, key="seats"),
        cond("property", "date_in_next_days", 60, key="renews_on"),
        cond("activity", "at_least", kind="page_viewed", count=2, days=7),
        cond("activity", "none", kind="email_opened", days=90),
        cond("consent", "granted", topic="newsletter"),
        cond("suppressed", "is_not"),
        cond("open_deal", "any_stage"),
        cond("won_deals_total", "gte", 100),
        cond("days_since_purchase", "more_than_days_ago", 30),
        cond("segment", "in", "leads"),
        match="any",
    ),
    group(cond("owner", "in", ["ann"]), match="none"),
)


def _count_queries(contacts: int) -> int:
    for index in range(contacts):
        contact = ContactFactory(properties={"seats": index})
        ActivityFactory(contact=contact)
    with CaptureQueriesContext(connection) as captured:
        segment_contacts(definition=EVERYTHING).count()
    return len(captured)


def test_counting_a_segment_takes_the_same_queries_for_any_number_of_contacts():
    ConsentTopicFactory(key="newsletter")
    SegmentFactory(key="leads")

    few = _count_queries(3)
    many = _count_queries(40)

    # The count itself, plus loading topic and segment keys once.
    assert few == many == 3
