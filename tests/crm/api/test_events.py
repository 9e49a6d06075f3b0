import datetime
import math

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import Activity, ConsentEntry, Contact
from crm.services.identity import IDENTIFIED_KIND
from tests.factories import ContactFactory

EVENTS = "/api/v1/events/"


def post(client, body):
    return client.post(EVENTS, body, format="json")


def page_view(**fields):
    return {"type": "page_viewed", "properties": {"path": "/pricing"}, **fields}


@pytest.mark.django_db
def test_one_event_is_recorded_for_a_known_contact(server_client, server_key):
    contact = ContactFactory(email="ada@example.com")

    response = post(server_client, page_view(email="ADA@example.com "))

    assert response.status_code == 200
    activity = Activity.objects.get()
    assert response.json() == {
        "recorded": 1,
        "duplicates": 0,
        "accepted": 0,
        "invalid": 0,
        "forbidden": 0,
        "results": [
            {"index": 0, "status": "recorded", "activity_id": activity.pk, "contact_id": contact.pk}
        ],
    }
    assert activity.contact == contact
    assert activity.source == server_key.api_key.source_label
    assert activity.properties == {"path": "/pricing"}


@pytest.mark.django_db
def test_a_batch_records_the_good_events_and_reports_the_bad_ones_by_index(server_client):
    response = post(
        server_client,
        {
            "events": [
                page_view(email="ada@example.com"),
                {"type": "Page Viewed", "email": "not-an-email"},
                page_view(anonymous_id="visitor-1", context={"page_url": "x" * 2001}),
                page_view(),
                "not an object",
                page_view(anonymous_id="visitor-2", colour="blue"),
            ]
        },
    )

    assert response.status_code == 207
    body = response.json()
    assert (body["recorded"], body["duplicates"], body["invalid"]) == (1, 0, 5)
    results = body["results"]
    assert [result["status"] for result in results] == ["recorded"] + ["invalid"] * 5
    assert [result["index"] for result in results] == list(range(6))
    assert set(results[1]["errors"]) == {"type", "email"}
    assert "slug" in results[1]["errors"]["type"][0]
    assert "context.page_url" in results[2]["errors"]
    assert "Say who did it" in results[3]["errors"]["email"][0]
    assert "non_field_errors" in results[4]["errors"]
    assert "Unknown field" in results[5]["errors"]["colour"][0]
    assert Activity.objects.count() == 1


@pytest.mark.django_db
def test_a_batch_where_every_event_is_invalid_is_a_400_with_the_results(server_client):
    response = post(server_client, {"events": [{"type": "page_viewed"}, {"email": "a@b.co"}]})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["invalid"] == 2
    assert body["results"][1]["errors"]["type"] == ["This field is required."]
    assert not Activity.objects.exists()


@pytest.mark.django_db
def test_replaying_an_idempotency_key_records_nothing_new_and_says_so(server_client):
    event = page_view(email="ada@example.com", idempotency_key="order-1001-viewed")
    post(server_client, event)

    replay = post(server_client, {"events": [event, {**event, "idempotency_key": "other"}]})

    assert replay.status_code == 200
    assert replay.json()["duplicates"] == 1
    assert [result["status"] for result in replay.json()["results"]] == ["duplicate", "recorded"]
    assert Activity.objects.count() == 2


@pytest.mark.django_db
def test_idempotency_keys_are_per_api_key(server_client):
    from crm.services import api_key_create
    from tests.crm.api.conftest import client_for

    other_client = client_for(api_key_create(name="Billing", kind="server").key)
    event = page_view(email="ada@example.com", idempotency_key="k-1")

    post(server_client, event)
    response = post(other_client, event)

    assert response.json()["results"][0]["status"] == "recorded"


@pytest.mark.django_db
def test_an_event_more_than_a_day_ahead_is_refused(server_client):
    soon = timezone.now() + datetime.timedelta(hours=20)
    far = timezone.now() + datetime.timedelta(days=2)

    response = post(
        server_client,
        {
            "events": [
                page_view(email="a@example.com", occurred_at=soon.isoformat()),
                page_view(email="a@example.com", occurred_at=far.isoformat()),
            ]
        },
    )

    assert response.status_code == 207
    errors = response.json()["results"][1]["errors"]
    assert "more than a day in the future" in errors["occurred_at"][0]


@pytest.mark.django_db
def test_oversize_properties_are_refused(server_client):
    big = {"blob": "x" * (16 * 1024)}

    response = post(server_client, page_view(email="a@example.com", properties=big))

    assert response.status_code == 400
    assert "the limit is 16,384" in response.json()["results"][0]["errors"]["properties"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["consent_granted", "lifecycle_stage_changed", "handed_off"])
def test_kinds_nextstep_records_itself_cannot_be_sent_even_with_a_server_key(server_client, kind):
    response = post(server_client, {"type": kind, "email": "a@example.com"})

    assert response.status_code == 400
    assert "recorded by Nextstep itself" in response.json()["results"][0]["errors"]["type"][0]


@pytest.mark.django_db
def test_an_unknown_email_creates_a_contact_from_the_event_without_consent(server_client):
    response = post(
        server_client,
        page_view(
            email="new@example.com",
            context={
                "page_url": "https://www.example.com/guide?utm_source=newsletter&utm_medium=email",
                "utm_campaign": "spring",
                "ip": "203.0.113.9",
            },
        ),
    )

    contact = Contact.objects.get(email="new@example.com")
    assert response.json()["results"][0]["contact_id"] == contact.pk
    assert contact.source == Contact.Source.EVENT
    assert contact.entry_point.startswith("https://www.example.com/guide")
    assert (contact.utm_source, contact.utm_medium, contact.utm_campaign) == (
        "newsletter",
        "email",
        "spring",
    )
    assert not ConsentEntry.objects.exists()


@pytest.mark.django_db
def test_first_touch_is_not_overwritten_by_later_events(server_client):
    ContactFactory(email="old@example.com", utm_source="fair")

    post(server_client, page_view(email="old@example.com", context={"utm_source": "ads"}))

    assert Contact.objects.get(email="old@example.com").utm_source == "fair"


@pytest.mark.django_db
def test_anonymous_events_create_no_contact_even_with_an_ip(server_client):
    response = post(
        server_client, page_view(anonymous_id="visitor-9", context={"ip": "203.0.113.9"})
    )

    assert response.json()["results"][0]["contact_id"] is None
    assert not Contact.objects.exists()
    assert Activity.objects.get().anonymous_id == "visitor-9"


@pytest.mark.django_db
def test_anonymous_events_after_identify_belong_to_the_contact(server_client):
    contact = ContactFactory()
    Activity.objects.create(
        kind=IDENTIFIED_KIND,
        contact=contact,
        anonymous_id="visitor-3",
        occurred_at=timezone.now(),
        source="test",
    )

    response = post(server_client, page_view(anonymous_id="visitor-3"))

    assert response.json()["results"][0]["contact_id"] == contact.pk


@pytest.mark.django_db
def test_an_unknown_external_id_without_email_is_reported_not_guessed(server_client):
    response = post(server_client, page_view(external_id="user-77"))

    assert response.status_code == 400
    assert "No contact has external_id" in response.json()["results"][0]["errors"]["external_id"][0]


@pytest.mark.django_db
def test_a_known_external_id_finds_its_contact_and_a_new_one_is_kept(server_client):
    known = ContactFactory(external_id="user-1")

    response = post(
        server_client,
        {
            "events": [
                page_view(external_id="user-1"),
                page_view(external_id="user-2", email="two@example.com"),
            ]
        },
    )

    results = response.json()["results"]
    assert results[0]["contact_id"] == known.pk
    assert Contact.objects.get(pk=results[1]["contact_id"]).external_id == "user-2"


@pytest.mark.django_db
@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_needs_1_to_1000_events(server_client, count):
    response = post(server_client, {"events": [page_view(anonymous_id="v")] * count})

    assert response.status_code == 400
    assert response.json()["fields"]["events"][0].startswith("Send a list of 1 to 1,000 events")


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_refused_in_the_error_shape(server_client):
    response = server_client.post(EVENTS, "type=page_viewed", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def insert_statements(model, rows: int, batch_size: int | None = None) -> int:
    """How many INSERTs bulk_create needs for `rows` rows on this database."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    size = connection.ops.bulk_batch_size(fields, [None] * rows)
    return math.ceil(rows / min(size, batch_size or size))


def batch(numbers: range) -> dict:
    """Half new people by email, half anonymous visitors."""
    return {
        "events": [
            page_view(email=f"person{n}@example.com") if n % 2 else page_view(anonymous_id=f"v{n}")
            for n in numbers
        ]
    }


def query_budget(events: int) -> int:
    # A fixed number of statements, plus the INSERT chunks SQLite needs for its
    # 999-parameter limit (PostgreSQL needs one per 500 activities).
    return (
        FIXED_QUERIES
        + insert_statements(Contact, events)
        + insert_statements(Activity, events, batch_size=500)
    )


#: 14 statements of ours today (key, contacts, visitors, activities, savepoints); the
#: receivers of activities_recorded (scoring, sequences) share the rest.
FIXED_QUERIES = 30


def without_inserts(captured) -> list[str]:
    return [query["sql"] for query in captured if not query["sql"].startswith("INSERT")]


@pytest.mark.django_db
def test_a_batch_costs_the_same_queries_whatever_its_size(
    server_client, django_assert_max_num_queries
):
    server_client.get("/api/v1/contacts/")  # the key's last-used time is written once a minute

    with django_assert_max_num_queries(query_budget(10)) as small_queries:
        small = post(server_client, batch(range(10)))
    with django_assert_max_num_queries(query_budget(1000)) as large_queries:
        large = post(server_client, batch(range(10, 1010)))

    assert small.json()["recorded"] == 10
    assert large.json()["recorded"] == 1000
    assert Contact.objects.count() == 505
    # Only the INSERT chunks grow with the batch; every other statement is the same.
    assert len(without_inserts(large_queries)) == len(without_inserts(small_queries))
