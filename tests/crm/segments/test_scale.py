"""What keeps segments fast at 1M contacts: the SQL shapes, the snapshot, the preview's time box.

The figures are in docs/performance.md; these tests hold the shapes and query counts.
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import crm.segment_selectors as selectors
from crm.models import Activity, Contact, SegmentMembership
from crm.segment_selectors import segment_contacts, segment_count, segment_preview
from crm.segments.compiler import CompileContext, compile_definition
from crm.services import consent_grant
from crm.services import segments as segments_service
from crm.services.segments import segment_evaluate, segment_memberships_refresh
from tests.crm.segments.conftest import cond, group
from tests.factories import ActivityFactory, ConsentTopicFactory, ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="statement_timeout and TABLESAMPLE are PostgreSQL's"
)

#: The bench's nested shape: consent, not suppressed, any of (stage, a download), none of a deal.
NESTED = group(
    cond("consent", "granted", topic="newsletter"),
    cond("suppressed", "is_not"),
    group(
        cond("lifecycle_stage", "in", ["engaged_lead"]),
        cond("activity", "at_least", kind="content_downloaded", count=1, days=90),
        match="any",
    ),
    group(cond("open_deal", "any_stage"), match="none"),
)


def _sql(definition, *, whole_table: bool) -> str:
    condition = compile_definition(definition, context=CompileContext(whole_table=whole_table))
    return str(Contact.objects.filter(condition).query)


def test_inside_any_of_a_whole_table_query_reads_who_did_it_once():
    ConsentTopicFactory(key="newsletter")

    # Counting everyone: the set of downloaders is read once (PostgreSQL hashes it)…
    assert "IN (SELECT DISTINCT" in _sql(NESTED, whole_table=True)
    # …checking a few contacts (a refresh): each one is probed.
    assert "IN (SELECT DISTINCT" not in _sql(NESTED, whole_table=False)
    # Outside an "any of", EXISTS becomes a semi-join either way.
    alone = group(cond("activity", "at_least", kind="content_downloaded", count=1, days=90))
    assert "IN (SELECT DISTINCT" not in _sql(alone, whole_table=True)


def test_both_forms_select_the_same_people():
    topic = ConsentTopicFactory(key="newsletter")
    downloader, engaged, neither, withdrawn_downloader = ContactFactory.create_batch(4)
    Contact.objects.filter(pk=engaged.pk).update(lifecycle_stage_id="engaged_lead")
    for contact in (downloader, engaged, neither):
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    for contact in (downloader, withdrawn_downloader):
        ActivityFactory(contact=contact, kind="content_downloaded")
    none_of = group(
        group(
            cond("activity", "at_least", kind="content_downloaded", count=1, days=90),
            cond("lifecycle_stage", "in", ["engaged_lead"]),
            match="any",
        ),
        match="none",
    )

    for definition, expected in ((NESTED, {downloader, engaged}), (none_of, {neither})):
        for whole_table in (True, False):
            condition = compile_definition(
                definition, context=CompileContext(whole_table=whole_table)
            )
            found = set(Contact.objects.filter(condition))
            assert found == expected, (definition, whole_table)


def test_a_segment_count_costs_the_same_queries_whatever_the_size():
    topic = ConsentTopicFactory(key="newsletter")

    def queries_for(size: int) -> int:
        for contact in ContactFactory.create_batch(size, lifecycle_stage_id="engaged_lead"):
            consent_grant(contact=contact, topic=topic, method="form", source="test")
        with CaptureQueriesContext(connection) as captured:
            count = segment_count(definition=NESTED)
        assert count == Contact.objects.filter(lifecycle_stage_id="engaged_lead").count()
        return len(captured)

    small = queries_for(2)
    assert small == queries_for(20)
    # The COUNT, the topic lookup, and on PostgreSQL setting work_mem and enable_hashagg
    # (plus, inside a test's transaction, the savepoint pair and putting them back).
    assert small <= 6


#: "At least 3 page views in 30 days", the bench shape that missed its budget at 1M.
AT_LEAST = group(cond("activity", "at_least", kind="page_viewed", count=3, days=30))


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", (name,))
        return cursor.fetchone()[0]


@pytest.fixture
def statistics_put_back(db):
    """ANALYZE writes pg_class.reltuples in place, so the test's rollback keeps it: the
    admin's list estimates would then see 400 contacts in later tests' empty tables.
    Analyse again once the test's rows are gone."""
    yield
    Activity.objects.all().delete()
    Contact.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_activity")
        cursor.execute("ANALYZE crm_contact")


@postgresql_only
def test_a_whole_table_read_groups_by_sorting_not_hashing(statistics_put_back):
    # Enough rows, and statistics, for PostgreSQL to group the whole table at once
    # rather than probe each contact: then it would hash them, unless told not to.
    contacts = ContactFactory.create_batch(400)
    Activity.objects.bulk_create(
        Activity(contact=contact, kind="page_viewed", occurred_at=timezone.now(), source="test")
        for contact in contacts
        for _ in range(contact.pk % 4)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_activity")
        cursor.execute("ANALYZE crm_contact")

    with selectors.segment_query_settings(whole_table=True):
        plan = segment_contacts(definition=AT_LEAST).explain()
        count = segment_contacts(definition=AT_LEAST).count()

    # Hashing ~386,000 groups of 880,000 rows at 1M cost twice the CPU of sorting them,
    # and was repeated in every parallel worker (docs/performance.md, Segments at 1M).
    assert "HashAggregate" not in plan
    assert "GroupAggregate" in plan
    assert count == sum(1 for contact in contacts if contact.pk % 4 == 3)


@postgresql_only
def test_the_no_hashing_setting_stays_inside_whole_table_reads():
    outside = (_setting("enable_hashagg"), _setting("work_mem"))
    with selectors.segment_query_settings(whole_table=True):
        assert (_setting("enable_hashagg"), _setting("work_mem")) == ("off", "64MB")
    # An evaluation's range runs the receivers of what it records in its transaction:
    # they keep PostgreSQL's choice.
    with selectors.segment_query_settings(whole_table=False):
        assert (_setting("enable_hashagg"), _setting("work_mem")) == ("on", "64MB")
    # Inside an outer transaction (this test's), both are put back on the way out.
    assert (_setting("enable_hashagg"), _setting("work_mem")) == outside
    assert outside[0] == "on"


@postgresql_only
def test_the_preview_and_the_evaluation_snapshot_read_without_hashing(monkeypatch):
    seen = []
    preview_exactly = selectors._preview_exactly

    def spy(*args):
        seen.append(_setting("enable_hashagg"))
        return preview_exactly(*args)

    monkeypatch.setattr(selectors, "_preview_exactly", spy)
    ActivityFactory.create_batch(3, contact=ContactFactory(), kind="page_viewed")
    segment_preview(definition=AT_LEAST)
    segment = SegmentFactory(key="viewers", definition=AT_LEAST)
    with CaptureQueriesContext(connection) as captured:
        segment_evaluate(segment=segment)

    assert seen == ["off"]
    sql = [query["sql"] for query in captured]
    snapshot = next(i for i, query in enumerate(sql) if query.startswith("INSERT INTO segment_"))
    settings = [i for i, query in enumerate(sql) if "enable_hashagg" in query]
    # Set for the snapshot's INSERT, and put back after it (the test runs inside a
    # transaction); the ranges that follow keep PostgreSQL's choice.
    assert len(settings) == 2
    assert settings[0] < snapshot < settings[1]


def test_an_evaluation_keeps_a_member_a_refresh_entered_after_its_snapshot(monkeypatch):
    late = ContactFactory(lifecycle_stage_id="new_lead")
    segment = SegmentFactory(
        key="engaged", definition=group(cond("lifecycle_stage", "in", ["engaged_lead"]))
    )
    started = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
    evaluate_range = segments_service._evaluate_range

    def refresh_first(*args, **kwargs):
        # Between the snapshot and this range, the contact qualifies and a refresh
        # (with its own, later clock) records the entry.
        Contact.objects.filter(pk=late.pk).update(lifecycle_stage_id="engaged_lead")
        segment_memberships_refresh(
            contact_ids=[late.pk], now=started + datetime.timedelta(seconds=5)
        )
        return evaluate_range(*args, **kwargs)

    monkeypatch.setattr(segments_service, "_evaluate_range", refresh_first)

    evaluation = segment_evaluate(segment=segment, now=started)

    # The snapshot (taken before) did not have them; the fresher refresh wins.
    membership = SegmentMembership.objects.get(segment=segment, contact=late)
    assert membership.exited_at is None
    assert evaluation.exited == 0
    assert evaluation.member_count == 1


def test_an_evaluation_leaves_no_snapshot_table_behind():
    ContactFactory.create_batch(3, lifecycle_stage_id="engaged_lead")
    segment = SegmentFactory(
        key="engaged", definition=group(cond("lifecycle_stage", "in", ["engaged_lead"]))
    )

    segment_evaluate(segment=segment)

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'segment_matching_%%'"
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM sqlite_temp_master WHERE name LIKE 'segment_matching_%'"
            )
        assert cursor.fetchone()[0] == 0


# --- The preview ----------------------------------------------------------------------------


def _slow(*args):
    """A preview step that outlives any statement timeout."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(5)")


@postgresql_only
def test_a_preview_too_slow_to_count_exactly_is_estimated_from_a_sample(monkeypatch):
    topic = ConsentTopicFactory(key="newsletter")
    for contact in ContactFactory.create_batch(6, lifecycle_stage_id="engaged_lead"):
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    ContactFactory.create_batch(3, lifecycle_stage_id="new_lead")
    monkeypatch.setattr(selectors, "_preview_exactly", _slow)

    preview = segment_preview(definition=NESTED, topic=topic)

    # A table this small is sampled whole (100%), so the estimate is the count.
    assert preview.estimated
    assert preview.sampled_percent == 100.0
    assert (preview.count, preview.sendable_count) == (6, 6)
    assert len(preview.sample) == 6
    assert list(preview.sample) == sorted(preview.sample, key=lambda c: -c.pk)


@postgresql_only
def test_a_preview_that_cannot_even_sample_says_so(monkeypatch):
    monkeypatch.setattr(selectors, "_preview_exactly", _slow)
    monkeypatch.setattr(selectors, "_preview_estimated", _slow)
    monkeypatch.setattr(selectors, "PREVIEW_ESTIMATE_MILLISECONDS", 50)

    preview = segment_preview(definition=group(cond("country", "in", ["DE"])))

    assert preview.is_valid
    assert preview.count is None


@postgresql_only
def test_an_estimated_preview_costs_the_same_queries_whatever_the_size(monkeypatch):
    topic = ConsentTopicFactory(key="newsletter")
    monkeypatch.setattr(selectors, "_preview_exactly", _slow)

    def queries_for(size: int) -> int:
        for contact in ContactFactory.create_batch(size, lifecycle_stage_id="engaged_lead"):
            consent_grant(contact=contact, topic=topic, method="form", source="test")
        with CaptureQueriesContext(connection) as captured:
            preview = segment_preview(definition=NESTED, topic=topic)
        assert preview.estimated
        return len(captured)

    assert queries_for(2) == queries_for(25)


def test_the_preview_is_exact_when_counting_is_quick():
    ContactFactory.create_batch(3, country="DE")

    preview = segment_preview(definition=group(cond("country", "in", ["DE"])))

    assert (preview.count, preview.estimated, len(preview.sample)) == (3, False, 3)


def test_the_preview_answer_says_whether_it_is_estimated(admin_client):
    ContactFactory(country="DE")

    response = admin_client.post(
        "/admin/crm/segment/preview/",
        {"definition": group(cond("country", "in", ["DE"]))},
        content_type="application/json",
    )

    data = response.json()
    assert (data["count"], data["estimated"], data["sampled_percent"]) == (1, False, None)


def test_segment_contacts_reads_the_whole_table_unless_told_otherwise():
    definition = group(
        group(
            cond("activity", "at_least", kind="content_downloaded", count=1, days=90),
            cond("country", "in", ["DE"]),
            match="any",
        )
    )

    assert "IN (SELECT DISTINCT" in str(segment_contacts(definition=definition).query)
    few = segment_contacts(definition=definition, context=CompileContext())
    assert "IN (SELECT DISTINCT" not in str(few.query)
