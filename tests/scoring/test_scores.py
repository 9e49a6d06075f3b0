"""Scoring activities: rules, conditions, caps, machine opens, re-delivery, fit, the budget."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Activity, Contact
from crm.services import ActivityInput, activity_record, activity_record_batch, contact_update
from scoring.models import ScoreChange
from scoring.services import fit_scores_refresh, scores_apply, scoring_side_effects
from tests.factories import CompanyFactory, ContactFactory, HandoffRuleFactory
from tests.scoring.conftest import engagement_rule, fit_rule, record, score_of

pytestmark = pytest.mark.django_db

PRICING = [("path", "contains", "/pricing")]


def test_matching_activity_adds_the_rules_points_and_a_ledger_row(contact):
    rule = engagement_rule("pricing", points=25, conditions=PRICING)

    [activity] = record(contact, path="/pricing/teams")

    assert score_of(contact) == 25
    change = ScoreChange.objects.get()
    assert (change.rule, change.activity, change.points, change.part) == (
        rule,
        activity,
        25,
        "engagement",
    )


def test_activity_failing_a_condition_scores_nothing(contact):
    engagement_rule("pricing", points=25, conditions=PRICING)

    record(contact, path="/blog/hello")

    assert score_of(contact) == 0
    assert not ScoreChange.objects.exists()


@pytest.mark.parametrize(
    ("operator", "value", "properties", "matches"),
    [
        ("equals", "Pricing", {"page": "pricing"}, True),
        ("starts_with", "/docs", {"page": "/docs/api"}, True),
        ("in", "de, at", {"page": "AT"}, True),
        ("not_in", "de, at", {"page": "FR"}, True),
        ("at_least", "100", {"page": 99.5}, False),
        ("at_most", "100", {"page": "99"}, True),
        ("is_set", "", {}, False),
        ("not_contains", "/careers", {}, True),
    ],
)
def test_condition_operators(contact, operator, value, properties, matches):
    engagement_rule("rule", points=5, conditions=[("page", operator, value)])

    record(contact, **properties)

    assert score_of(contact) == (5 if matches else 0)


def test_nested_property_paths_are_followed(contact):
    engagement_rule("spring", points=5, conditions=[("utm.campaign", "equals", "spring")])

    record(contact, utm={"campaign": "Spring"})

    assert score_of(contact) == 5


def test_negative_points_lower_the_score(contact):
    engagement_rule("pricing", points=20, conditions=PRICING)
    engagement_rule("careers", points=-15, conditions=[("path", "contains", "/careers")])

    record(contact, path="/pricing")
    record(contact, path="/careers/backend")

    assert score_of(contact) == 5


def test_cap_holds_a_rule_to_its_points_per_period(contact, clock):
    engagement_rule("opens", points=5, kind="email_opened", cap_points=15, cap_period_days=7)

    record(contact, kind="email_opened", times=40)

    assert score_of(contact) == 15
    # Every match is recorded, the capped ones at 0 points, so the score is explained.
    assert ScoreChange.objects.filter(reason="capped", points=0).count() == 37


def test_cap_counts_earlier_batches_and_frees_up_after_the_period(contact, clock):
    engagement_rule("opens", points=5, kind="email_opened", cap_points=15, cap_period_days=7)
    record(contact, kind="email_opened", times=2)

    record(contact, kind="email_opened", times=2)
    capped_score = score_of(contact)
    clock.advance(days=8)
    record(contact, kind="email_opened")

    assert capped_score == 15
    assert score_of(contact) == 20


def test_cap_limits_negative_points_too(contact):
    engagement_rule("bounce", points=-10, kind="email_bounced", cap_points=15)

    record(contact, kind="email_bounced", times=3)

    assert score_of(contact) == -15


def test_machine_opens_never_score(contact):
    engagement_rule("opens", points=5, kind="email_opened")

    record(contact, kind="email_opened", is_machine_open=True)
    record(contact, kind="email_opened", is_machine_open=False)

    assert score_of(contact) == 5


def test_kindless_rule_matches_engagement_but_not_bookkeeping(contact):
    engagement_rule("any", points=1, kind="")

    record(contact, kind="page_viewed")
    record(contact, kind="email_delivered")

    assert score_of(contact) == 1


def test_same_activity_delivered_twice_scores_once(contact):
    engagement_rule("pricing", points=25, conditions=PRICING)

    first = activity_record(
        kind="page_viewed",
        source="web",
        contact=contact,
        properties={"path": "/pricing"},
        idempotency_key="evt-1",
    )
    replay = activity_record(
        kind="page_viewed",
        source="web",
        contact=contact,
        properties={"path": "/pricing"},
        idempotency_key="evt-1",
    )
    rescored = scores_apply(activities=[first])

    assert replay is None
    assert rescored.changes == ()
    assert score_of(contact) == 25
    assert ScoreChange.objects.count() == 1


def test_anonymous_activities_do_not_score(db):
    engagement_rule("pricing", points=25, conditions=PRICING)

    activity_record(
        kind="page_viewed", source="web", anonymous_id="anon-1", properties={"path": "/pricing"}
    )

    assert not ScoreChange.objects.exists()


def test_re_engagement_counts_only_after_a_long_silence(clock):
    engagement_rule("back", points=30, kind="", min_silence_days=60)
    quiet = ContactFactory()
    Contact.objects.filter(pk=quiet.pk).update(created_at=clock.now.replace(year=2024))
    Activity.objects.create(
        contact=quiet, kind="page_viewed", source="test", occurred_at=clock.now.replace(year=2024)
    )

    record(quiet, times=3)
    first_visit_score = score_of(quiet)
    clock.advance(days=1)
    record(quiet)

    assert first_visit_score == 30
    assert score_of(quiet) == 30


def test_a_new_contact_is_not_re_engaging(contact):
    engagement_rule("back", points=30, kind="", min_silence_days=60)

    record(contact)

    assert score_of(contact) == 0


# --- Fit -------------------------------------------------------------------------------------


def test_fit_rules_score_contact_and_company_fields(db):
    fit_rule("title", 15, [("job_title", "contains", "head of")])
    fit_rule("size", 10, [("company.size", "in", "51-200, 201-1000")])
    fit_rule("country", 5, [("country", "in", "DE, AT, CH")])
    company = CompanyFactory(size="51-200")
    person = ContactFactory(job_title="Head of Marketing", company=company, country="FR")

    record(person, kind="form_submitted")

    assert score_of(person) == 25
    assert set(ScoreChange.objects.values_list("part", flat=True)) == {"fit"}


def test_fit_points_are_held_once_and_given_back_when_no_longer_matching(db):
    fit_rule("title", 15, [("job_title", "contains", "head of")])
    person = ContactFactory(job_title="Head of Sales")
    record(person)
    record(person)
    held = score_of(person)

    contact_update(contact=person, job_title="Intern")
    fit_scores_refresh(contact_ids=[person.pk])

    assert held == 15
    assert score_of(person) == 0
    assert list(ScoreChange.objects.order_by("pk").values_list("points", flat=True)) == [15, -15]


def test_deactivating_a_fit_rule_gives_its_points_back_on_refresh(db):
    rule = fit_rule("title", 15, [("job_title", "contains", "head of")])
    person = ContactFactory(job_title="Head of Sales")
    record(person)

    rule.is_active = False
    rule.save()
    fit_scores_refresh(contact_ids=[person.pk])

    assert score_of(person) == 0


# --- Query budget ----------------------------------------------------------------------------


def _statements(queries) -> list[str]:
    """The batch's statements, with each bulk insert counted once.

    SQLite caps a statement at 999 parameters, so Django splits one bulk_create into
    several INSERTs there; on PostgreSQL it is one statement whatever the batch size.
    """
    statements = []
    for query in queries:
        sql = query["sql"]
        if statements and sql.startswith("INSERT") and statements[-1] == sql.split(" (")[0]:
            continue
        statements.append(sql.split(" (")[0] if sql.startswith("INSERT") else sql)
    return statements


def _scoring_queries(activities) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        scores_apply(activities=activities)
    return _statements(captured.captured_queries)


def _batch(size: int) -> list[Activity]:
    contacts = [ContactFactory(job_title="Head of IT") for _ in range(min(size, 50))]
    return _record_without_scoring(contacts, size)


def _record_without_scoring(contacts, size: int) -> list[Activity]:
    items = [
        ActivityInput(
            kind="page_viewed",
            source="test",
            contact_id=contacts[index % len(contacts)].pk,
            properties={"path": "/pricing" if index % 2 else "/blog"},
        )
        for index in range(size)
    ]
    with scoring_side_effects():  # record without scoring, to measure scoring alone
        return activity_record_batch(items=items).created


#: Rules, their conditions, contacts, contacts who objected to marketing, already-scored
#: pairs, cap usage, fit points held, the ledger insert, the score update, handoff rules,
#: their signal rules, fresh scores, existing handoffs, recent signals. Opening a handoff
#: costs more, per handoff (it is rare).
SCORING_BATCH_BUDGET = 14


def test_scoring_a_batch_costs_the_same_queries_for_10_or_500_activities(db):
    engagement_rule("pricing", points=5, conditions=PRICING, cap_points=50)
    engagement_rule("any-page", points=1)
    fit_rule("title", 10, [("job_title", "contains", "head of")])
    demo = engagement_rule("demo", points=0, kind="demo_requested")
    # Everyone passes the threshold, so every handoff check runs; nobody asked for a demo,
    # so nobody is handed off (opening a handoff costs its own queries, per handoff).
    HandoffRuleFactory(score_threshold=1).signal_rules.add(demo)
    small, large = _batch(10), _batch(500)

    small_queries = _scoring_queries(small)
    large_queries = _scoring_queries(large)

    assert len(small_queries) == len(large_queries)
    assert len(large_queries) <= SCORING_BATCH_BUDGET, "\n".join(q[:120] for q in large_queries)


def test_scoring_reads_only_the_contact_columns_its_fit_rules_name(db):
    engagement_rule("pricing", points=5, conditions=PRICING)
    fit_rule("title", 10, [("job_title", "contains", "head of")])
    fit_rule("size", 10, [("company.size", "in", "51-200")])
    activities = _batch(20)

    contact_reads = [
        sql
        for sql in _scoring_queries(activities)
        if sql.startswith('SELECT "crm_contact"') and "job_title" in sql
    ]

    # Full instances with company and both owners were ~12% of an ingest request.
    assert len(contact_reads) == 1
    read = contact_reads[0].split(" FROM ")[0]
    assert '"job_title"' in read and '"crm_company"."size"' in read
    assert '"auth_user"' not in read and '"properties"' not in read and '"last_name"' not in read


def test_without_rules_scoring_a_batch_costs_one_query(contact, django_assert_num_queries):
    activities = _record_without_scoring([contact], size=20)

    with django_assert_num_queries(1):
        scores_apply(activities=activities)


def test_segment_entries_never_load_or_refit_their_contacts(django_assert_max_num_queries):
    engagement_rule("any-engagement", points=1, kind="")  # kind-less: engagement only
    fit_rule("cto", points=15, conditions=[("job_title", "contains", "CTO")])
    contacts = ContactFactory.create_batch(20, job_title="CTO")
    entries = [
        Activity.objects.create(
            kind="segment_entered", source="segments", contact=contact, occurred_at=timezone.now()
        )
        for contact in contacts
    ]

    # The rule book (rules, conditions) and nothing else: a segment's first evaluation
    # announces 50,000 entries per range, and loading and re-fitting them all was most
    # of its time.
    with django_assert_max_num_queries(2):
        result = scores_apply(activities=entries)

    assert result.changes == ()
    assert not ScoreChange.objects.exists()


def test_a_rule_that_names_segment_entered_still_scores_it(contact):
    engagement_rule("joined-vip", points=10, kind="segment_entered")

    record(contact, kind="segment_entered", segment="vip")

    assert score_of(contact) == 10
