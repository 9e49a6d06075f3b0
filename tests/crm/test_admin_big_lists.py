"""Big admin lists: capped or estimated counts, indexed filters and search, query budgets.

Timings belong in the measurements of docs/admin.md ("Big lists"); these tests pin
the shape of the SQL that makes the pages fast: no exact COUNT over the table, no
SELECT DISTINCT for a filter's choices, no OR of LIKEs across a join, and a number
of queries that does not grow with the rows.
"""

import datetime
import re

import pytest
from django.contrib import admin
from django.contrib.admin.filters import AllValuesFieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.core.paginator import EmptyPage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.admin import search
from crm.admin.pagination import BigListPaginator, table_row_estimate
from crm.admin.search import looks_like_email
from crm.models import Activity, ConsentTopic, Contact, Suppression
from crm.services import consent_grant, consent_withdraw
from scoring.models import Handoff
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ConsentEntryFactory,
    ContactFactory,
    HandoffFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    UserFactory,
)

CONTACTS = reverse("admin:crm_contact_changelist")
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's planner statistics and indexes"
)


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def small_cap(monkeypatch):
    """A cap of 5 rows, so a handful of rows shows what a million would."""
    monkeypatch.setattr(BigListPaginator, "cap", 5)


def _listed(response) -> set[str]:
    return {contact.email for contact in response.context["cl"].result_list}


def _sql(client, url: str, params: dict | None = None) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return response, [query["sql"] for query in queries.captured_queries]


# --- Counting ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_filtered_list_counts_at_most_the_cap_and_says_so(admin_client_, small_cap):
    ContactFactory.create_batch(7, country="DE")

    response, sql = _sql(admin_client_, CONTACTS, {"country": "DE"})

    assert "5+ contacts" in response.text
    counts = [query for query in sql if "COUNT(" in query.upper()]
    assert counts, "the list still says how many rows there are"
    assert all("LIMIT 6" in query for query in counts), "no COUNT over every matching row"


@pytest.mark.django_db
def test_a_small_list_shows_its_exact_count(admin_client_):
    ContactFactory.create_batch(3)

    response = admin_client_.get(CONTACTS)

    assert "3 contacts" in response.text
    assert response.context["cl"].paginator.count_is_exact


@pytest.mark.django_db
def test_select_all_names_the_capped_count_not_a_number_that_looks_exact(admin_client_, small_cap):
    ContactFactory.create_batch(7)

    response = admin_client_.get(CONTACTS)

    assert "Select all 5+ contacts" in response.text
    assert response.context["selection_note_all"] == "All 5+ selected"


@pytest.mark.django_db
def test_a_page_past_the_capped_count_shows_the_rows_that_exist(admin_client_, monkeypatch):
    monkeypatch.setattr(BigListPaginator, "cap", 2)
    ContactFactory.create_batch(6)
    admin = _contact_admin()
    monkeypatch.setattr(admin, "list_per_page", 2)

    response = admin_client_.get(CONTACTS, {"p": "3"})

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2


@pytest.mark.django_db
def test_a_page_number_below_one_is_still_refused(small_cap):
    ContactFactory.create_batch(7)
    paginator = BigListPaginator(Contact.objects.order_by("pk"), 2)
    assert paginator.count == 6 and not paginator.count_is_exact

    with pytest.raises(EmptyPage):
        paginator.page(0)


def _contact_admin():
    return admin.site._registry[Contact]


@pytest.mark.django_db
def test_there_is_no_estimate_on_sqlite():
    if connection.vendor == "postgresql":
        pytest.skip("a SQLite check: PostgreSQL's estimate has its own test below")

    assert table_row_estimate(Contact.objects.all()) is None


@postgres_only
@pytest.mark.django_db
def test_an_unfiltered_list_on_postgresql_shows_the_planners_estimate(admin_client_, small_cap):
    ContactFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact")

    response, sql = _sql(admin_client_, CONTACTS)

    assert "about 12 contacts" in response.text
    assert not any("COUNT(" in query.upper() for query in sql), "the estimate needs no count"


# --- Filters -------------------------------------------------------------------------------

CONTACT_FILTERS = [
    {},
    {"country": "DE"},
    {"country": "-"},
    {"consent": "newsletter:granted"},
    {"consent": "newsletter:withdrawn"},
    {"consent": "newsletter:never"},
    {"suppressed": "yes"},
    {"segment": "anything"},
    {"source__exact": "form"},
    {"lifecycle_stage__key__exact": "new_lead"},
    {"o": "7"},
    {"q": "ann@example.com"},
    {"q": "ann"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("params", CONTACT_FILTERS, ids=str)
def test_no_contact_list_view_runs_select_distinct(admin_client_, params):
    ContactFactory(email="ann@example.com", country="DE", company=CompanyFactory())

    _, sql = _sql(admin_client_, CONTACTS, params)

    assert not any("DISTINCT" in query.upper() for query in sql)


def _big_list_admins():
    return [
        model_admin
        for model_admin in admin.site._registry.values()
        if getattr(model_admin, "paginator", None) is BigListPaginator
    ]


def test_no_big_list_filters_by_every_distinct_value_of_a_column():
    # Django lists a plain text column's choices with SELECT DISTINCT over the whole table.
    for model_admin in _big_list_admins():
        for list_filter in model_admin.list_filter:
            if isinstance(list_filter, tuple):
                assert list_filter[1] is not AllValuesFieldListFilter, model_admin
            if not isinstance(list_filter, str):
                continue
            field = get_fields_from_path(model_admin.model, list_filter)[-1]
            assert field.is_relation or field.choices or _not_text(field), (
                f"{model_admin} filters by every distinct {list_filter}: a DISTINCT scan"
            )


def _not_text(field) -> bool:
    return field.get_internal_type() not in ("CharField", "SlugField", "TextField", "EmailField")


def test_every_big_log_like_list_uses_the_big_list_paginator():
    labels = {model_admin.model._meta.label for model_admin in _big_list_admins()}

    assert {
        "crm.Contact",
        "crm.Activity",
        "crm.ConsentEntry",
        "crm.Suppression",
        "crm.LifecycleStageChange",
        "scoring.ScoreChange",
        "scoring.Handoff",
        "sequences.OutboundMessage",
        "sequences.EspEvent",
        "sequences.Enrollment",
        "sequences.EnrollmentEvent",
    } <= labels


@pytest.mark.django_db
def test_the_country_filter_offers_the_iso_list_collapsed(admin_client_):
    ContactFactory(country="DE", email="de@example.com")
    ContactFactory(country="", email="unknown@example.com")

    listing = admin_client_.get(CONTACTS)
    germans = admin_client_.get(CONTACTS, {"country": "DE"})
    unknown = admin_client_.get(CONTACTS, {"country": "-"})

    assert "Germany" in listing.text and "Zimbabwe" in listing.text
    assert '<details data-filter-title="country">' in listing.text, "closed until used"
    assert _listed(germans) == {"de@example.com"}
    assert _listed(unknown) == {"unknown@example.com"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("granted", {"yes@example.com", "regranted@example.com", "tie-granted@example.com"}),
        ("withdrawn", {"no@example.com"}),
        ("never", {"unasked@example.com", "other-topic@example.com"}),
    ],
)
def test_the_consent_filter_follows_the_latest_entry_ties_broken_by_id(
    admin_client_, state, expected
):
    newsletter = ConsentTopic.objects.get(key="newsletter")
    offers = ConsentTopic.objects.get(key="offers")
    yes, no, regranted = (
        ContactFactory(email=f"{name}@example.com") for name in ("yes", "no", "regranted")
    )
    ContactFactory(email="unasked@example.com")
    consent_grant(contact=yes, topic=newsletter, method="form", source="test")
    consent_grant(contact=no, topic=newsletter, method="form", source="test")
    consent_withdraw(contact=no, topic=newsletter, method="one_click", source="test")
    consent_withdraw(contact=regranted, topic=newsletter, method="one_click", source="test")
    consent_grant(contact=regranted, topic=newsletter, method="form", source="test")
    consent_grant(
        contact=ContactFactory(email="other-topic@example.com"),
        topic=offers,
        method="form",
        source="test",
    )
    # Two entries at the same instant: the later row (higher id) is the current one.
    tie = ContactFactory(email="tie-granted@example.com")
    instant = timezone.now() - datetime.timedelta(days=1)
    ConsentEntryFactory(contact=tie, topic=newsletter, is_granted=False, occurred_at=instant)
    ConsentEntryFactory(contact=tie, topic=newsletter, is_granted=True, occurred_at=instant)

    response = admin_client_.get(CONTACTS, {"consent": f"newsletter:{state}"})

    assert _listed(response) == expected


# --- Search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "expected"),
    [("ann@example.com", True), (" Ann@Example.COM ", True), ("@example.com", False)]
    + [("ann", False), ("ann example.com", False), ("a@b", False)],
)
def test_what_looks_like_an_email(term, expected):
    assert looks_like_email(term) is expected


@pytest.fixture
def people(db):
    acme = CompanyFactory(name="Acme Rockets")
    return {
        "ann": ContactFactory(email="ann@example.com", first_name="Ann", last_name="Lee"),
        "joann": ContactFactory(email="joann@example.com", first_name="Jo", last_name="Anning"),
        "bob": ContactFactory(
            email="bob@other.example", first_name="Bob", last_name="Stone", company=acme
        ),
        "ext": ContactFactory(
            email="ext@other.example", first_name="Eve", last_name="Xu", external_id="CRM-42"
        ),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ann@example.com", {"ann@example.com"}),
        ("ANN@example.com", {"ann@example.com"}),
        ("nn", set()),  # two letters match the start of a name only
        ("an", {"ann@example.com", "joann@example.com"}),  # Ann, Anning
        ("ann", {"ann@example.com", "joann@example.com"}),
        ("rocket", {"bob@other.example"}),  # company name
        ("other.example", {"bob@other.example", "ext@other.example"}),
        ("bob stone", {"bob@other.example"}),
        ("bob lee", set()),  # every word must match
        ("CRM-42", {"ext@other.example"}),
        ('"Acme Rockets"', {"bob@other.example"}),
    ],
)
def test_contact_search(admin_client_, people, term, expected):
    response = admin_client_.get(CONTACTS, {"q": term})

    assert _listed(response) == expected


@pytest.mark.django_db
def test_contact_search_ors_no_condition_across_the_company_join(admin_client_, people):
    _, sql = _sql(admin_client_, CONTACTS, {"q": "rocket"})

    searches = [query for query in sql if "crm_contact" in query and "LIKE" in query]
    assert searches
    for query in searches:
        # SQLite: "crm_company"."name" LIKE; PostgreSQL: UPPER("crm_company"."name"::text) LIKE
        assert not re.search(r'"crm_company"\."name"(::text\))? LIKE', query), (
            "the company is searched on its own, not across the join"
        )


@pytest.mark.django_db
def test_a_word_naming_very_many_companies_searches_them_by_union(
    admin_client_, people, monkeypatch
):
    monkeypatch.setattr(search, "COMPANY_LIMIT", 0)

    response, sql = _sql(admin_client_, CONTACTS, {"q": "rocket"})

    assert _listed(response) == {"bob@other.example"}
    assert any("UNION" in query for query in sql)


@pytest.mark.django_db
def test_an_email_search_is_one_exact_lookup(admin_client_, people):
    _, sql = _sql(admin_client_, CONTACTS, {"q": "ann@example.com"})

    searches = [query for query in sql if "ann@example.com" in query]
    assert searches
    assert not any("LIKE" in query for query in searches)


@postgres_only
@pytest.mark.django_db
def test_the_search_indexes_exist_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        names = {row[0] for row in cursor.fetchall()}

    assert names == {
        "contact_email_trgm",
        "contact_first_name_trgm",
        "contact_last_name_trgm",
        "company_name_trgm",
    }


@pytest.mark.django_db
def test_the_activity_search_finds_a_contacts_rows_by_email_and_kinds_exactly(admin_client_):
    ann = ContactFactory(email="ann@example.com")
    ActivityFactory(contact=ann, kind="page_viewed")
    ActivityFactory(contact=ContactFactory(email="joann@example.com"), kind="email_opened")
    url = reverse("admin:crm_activity_changelist")

    by_email = admin_client_.get(url, {"q": "ann@example.com"}).context["cl"].result_list
    by_kind = admin_client_.get(url, {"q": "email_opened"}).context["cl"].result_list
    partial = admin_client_.get(url, {"q": "email"}).context["cl"].result_list

    assert [activity.contact for activity in by_email] == [ann]
    assert [activity.kind for activity in by_kind] == ["email_opened"]
    assert list(partial) == []


@pytest.mark.django_db
def test_the_suppression_search_matches_the_normalised_address(admin_client_):
    Suppression.objects.create(email="gone@example.com", email_hash="x", reason="manual")

    response = admin_client_.get(
        reverse("admin:crm_suppression_changelist"), {"q": " Gone@Example.com "}
    )

    assert [row.email for row in response.context["cl"].result_list] == ["gone@example.com"]


@pytest.mark.django_db
def test_a_send_ledger_search_for_text_that_is_no_uuid_is_no_error(admin_client_):
    response = admin_client_.get(
        reverse("admin:sequences_outboundmessage_changelist"), {"q": "not-a-uuid"}
    )

    assert response.status_code == 200


@pytest.mark.django_db
def test_the_handoff_queue_searches_like_the_contact_list(admin_client_, people):
    HandoffFactory(contact=people["bob"])
    HandoffFactory(contact=people["ann"])

    response = admin_client_.get(
        reverse("admin:scoring_handoff_changelist"), {"q": "rocket", "queue": "all"}
    )

    assert [handoff.contact for handoff in response.context["cl"].result_list] == [people["bob"]]


# --- Query budgets: the same number of queries for 3 rows as for 30 ----------------------


def _query_count(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return len(queries.captured_queries)


def _contacts(count: int, owner) -> None:
    newsletter = ConsentTopic.objects.get(key="newsletter")
    for _ in range(count):
        contact = ContactFactory(country="DE", owner=owner, company=CompanyFactory(name="Ann Co"))
        consent_grant(contact=contact, topic=newsletter, method="form", source="test")
        ActivityFactory(contact=contact, kind="page_viewed")
        HandoffFactory(contact=contact)


PAGES = [
    ("admin:crm_contact_changelist", {}),
    ("admin:crm_contact_changelist", {"q": "ann"}),
    ("admin:crm_contact_changelist", {"q": "someone@example.com"}),
    ("admin:crm_contact_changelist", {"country": "DE"}),
    ("admin:crm_contact_changelist", {"consent": "newsletter:granted"}),
    ("admin:crm_contact_changelist", {"consent": "newsletter:never"}),
    ("admin:crm_contact_changelist", {"suppressed": "no"}),
    ("admin:crm_contact_changelist", {"segment": "none"}),
    ("admin:crm_contact_changelist", {"source__exact": "form"}),
    ("admin:crm_contact_changelist", {"o": "-7"}),
    ("admin:crm_activity_changelist", {}),
    ("admin:crm_activity_changelist", {"kind": "page_viewed"}),
    ("admin:crm_activity_changelist", {"q": "someone@example.com"}),
    ("admin:crm_consententry_changelist", {}),
    ("admin:crm_consententry_changelist", {"q": "someone@example.com"}),
    ("admin:crm_suppression_changelist", {}),
    ("admin:crm_lifecyclestagechange_changelist", {}),
    ("admin:scoring_scorechange_changelist", {}),
    ("admin:scoring_handoff_changelist", {}),
    ("admin:scoring_handoff_changelist", {"queue": "all", "q": "ann"}),
    ("admin:sequences_outboundmessage_changelist", {}),
    ("admin:sequences_espevent_changelist", {}),
    ("admin:sequences_enrollment_changelist", {}),
]
#: The most queries any of these pages may run (session, user, count, page, filters...).
PAGE_BUDGET = 12


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "params"), PAGES, ids=lambda value: str(value))
def test_each_admin_list_runs_the_same_queries_for_3_rows_as_for_30(
    admin_client_, name, params, django_assert_max_num_queries
):
    owner = UserFactory()
    url = reverse(name)
    _contacts(3, owner)
    few = _query_count(admin_client_, url, params)
    _contacts(27, owner)

    with django_assert_max_num_queries(PAGE_BUDGET):
        many = _query_count(admin_client_, url, params)

    assert many == few


@pytest.mark.django_db
def test_the_contact_page_runs_the_same_queries_whatever_the_history(
    admin_client_, django_assert_max_num_queries
):
    contact = ContactFactory(company=CompanyFactory(), owner=UserFactory())
    url = reverse("admin:crm_contact_change", args=[contact.pk])
    ActivityFactory.create_batch(3, contact=contact)
    few = _query_count(admin_client_, url, {})
    ActivityFactory.create_batch(60, contact=contact)
    HandoffFactory(contact=contact)

    with django_assert_max_num_queries(30):
        many = _query_count(admin_client_, url, {})

    assert many <= few + 1  # at most the handoff's own panel row


@pytest.mark.django_db
def test_the_segment_filter_names_the_segment_by_id_not_by_a_join(admin_client_):
    segment = SegmentFactory(key="vip")
    member, _gone, _outsider = ContactFactory(), ContactFactory(), ContactFactory()
    SegmentMembershipFactory(segment=segment, contact=member)
    SegmentMembershipFactory(segment=segment, contact=_gone, exited_at=timezone.now())

    response, sql = _sql(admin_client_, CONTACTS, {"segment": "vip"})

    assert list(response.context["cl"].result_list) == [member]
    listing = [q for q in sql if 'FROM "crm_contact"' in q and "crm_segmentmembership" in q]
    assert listing, "the membership condition is missing"
    # A constant segment id lets PostgreSQL's statistics size the segment; a join to the
    # segment table by key hid it, and small segments read every membership (1.7 s at 1M).
    assert all('JOIN "crm_segment"' not in q for q in listing)
    assert all(f'"segment_id" = {segment.pk}' in q for q in listing)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "name", "columns"),
    [
        ("crm_contact", "contact_source_idx", ["source", "id"]),
        ("scoring_handoff", "handoff_open_queue_idx", ["sla_due_at", "id"]),
        ("scoring_handoff", "handoff_sla_clock_idx", ["sla_due_at"]),
    ],
)
def test_the_filter_and_queue_indexes_exist(table, name, columns):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)

    assert constraints[name]["columns"] == columns


@pytest.mark.django_db
def test_the_contact_page_reads_score_reasons_and_the_stage_once(admin_client_):
    contact = ContactFactory(owner=UserFactory(), company=CompanyFactory())

    _, sql = _sql(admin_client_, reverse("admin:crm_contact_change", args=[contact.pk]))

    # The header's top reasons are the panel's first three: one query serves both.
    assert len([q for q in sql if 'AS "rule__key"' in q]) == 1
    # The stage and owner come with the contact (the header shows them), not on their own.
    assert not [q for q in sql if re.search(r'FROM "crm_lifecyclestage" WHERE .*"key" =', q)]


@pytest.mark.django_db
def test_the_contact_timeline_reads_one_page_and_counts_nothing(admin_client_):
    contact = ContactFactory()
    ActivityFactory.create_batch(30, contact=contact)

    response, sql = _sql(admin_client_, reverse("admin:crm_contact_change", args=[contact.pk]))

    activity_reads = [q for q in sql if 'FROM "crm_activity"' in q]
    assert not [q for q in activity_reads if "COUNT(" in q.upper()]
    # A page and one row more, which says whether there is an older page.
    assert len(activity_reads) == 1 and "LIMIT 26" in activity_reads[0]
    timeline = response.context["contact_page"]["timeline"]
    assert len(timeline["rows"]) == 25 and "timeline_page=2" in timeline["next_url"]


@pytest.mark.django_db
def test_the_last_timeline_page_offers_no_older_page(admin_client_):
    contact = ContactFactory()
    ActivityFactory.create_batch(25, contact=contact)
    url = reverse("admin:crm_contact_change", args=[contact.pk])

    first = admin_client_.get(url).context["contact_page"]["timeline"]
    past_the_end = admin_client_.get(url, {"timeline_page": "9"}).context["contact_page"]
    nonsense = admin_client_.get(url, {"timeline_page": "x"}).context["contact_page"]

    assert len(first["rows"]) == 25 and first["next_url"] == "" and first["previous_url"] == ""
    assert past_the_end["timeline"]["rows"] == [] and past_the_end["timeline"]["previous_url"]
    assert nonsense["timeline"]["number"] == 1


@pytest.mark.django_db
def test_the_handoff_queue_lists_open_handoffs_by_sla(admin_client_):
    late = HandoffFactory(sla_due_at=timezone.now())
    early = HandoffFactory(sla_due_at=timezone.now() - datetime.timedelta(hours=1))
    HandoffFactory(status=Handoff.Status.ACCEPTED)

    response = admin_client_.get(reverse("admin:scoring_handoff_changelist"))

    assert list(response.context["cl"].result_list) == [early, late]


def test_activity_is_still_listed_newest_recorded_first():
    assert admin.site._registry[Activity].ordering == ("-pk",)


@pytest.mark.django_db
def test_a_searched_list_counts_at_most_1001_rows(admin_client_):
    ContactFactory(last_name="Dubois")

    _, sql = _sql(admin_client_, CONTACTS, {"q": "dubois"})

    # A capped count costs in proportion to the cap: at 10,000 a common name searched
    # over 1M contacts read 120,000 rows for the count alone.
    counts = [q for q in sql if "COUNT(" in q.upper() and 'FROM "crm_contact"' in q]
    assert counts and all("LIMIT 1001" in q for q in counts)


@pytest.mark.django_db
def test_the_big_lists_row_checkbox_is_djangos_html_without_the_widget_template():
    contact = ContactFactory(first_name="Ann", last_name="<Lee>")
    contact_admin = admin.site._registry[Contact]

    fast = contact_admin.action_checkbox(contact)
    django = admin.ModelAdmin.action_checkbox(contact_admin, contact)

    assert str(fast) == str(django)
