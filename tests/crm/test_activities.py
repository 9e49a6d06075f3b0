import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Activity, Contact
from crm.services import ActivityInput, activity_record, activity_record_batch
from crm.services.activities import activities_recorded_deferred
from crm.signals import activities_recorded
from tests.factories import ContactFactory


@pytest.fixture
def received():
    """Every activities_recorded call, as the list of activities it carried."""
    calls = []

    def receiver(sender, activities, **kwargs):
        calls.append(list(activities))

    activities_recorded.connect(receiver, dispatch_uid="test-received")
    yield calls
    activities_recorded.disconnect(dispatch_uid="test-received")


def page_view(contact, n, **extra):
    return ActivityInput(
        kind="page_viewed",
        source="api",
        contact_id=contact.pk,
        properties={"path": f"/page/{n}"},
        idempotency_key=f"view-{n}",
        **extra,
    )


@pytest.mark.django_db
def test_a_batch_is_recorded_and_announced_once(received):
    contact = ContactFactory()

    result = activity_record_batch(items=[page_view(contact, n) for n in range(5)])

    assert len(result.created) == 5
    assert Activity.objects.filter(contact=contact).count() == 5
    assert len(received) == 1 and len(received[0]) == 5


@pytest.mark.django_db
def test_replaying_idempotency_keys_records_nothing_and_says_which(received):
    contact = ContactFactory()
    activity_record_batch(items=[page_view(contact, 1), page_view(contact, 2)])

    replay = activity_record_batch(
        items=[page_view(contact, 2), page_view(contact, 3), page_view(contact, 3)]
    )

    assert replay.duplicate_indexes == [0, 2]
    assert [a.properties["path"] for a in replay.created] == ["/page/3"]
    assert Activity.objects.count() == 3
    assert [len(call) for call in received] == [2, 1]


@pytest.mark.django_db
def test_same_key_from_another_source_is_a_different_activity():
    contact = ContactFactory()

    activity_record(kind="order_placed", source="shop", contact=contact, idempotency_key="o-1")
    other = activity_record(
        kind="order_placed", source="billing", contact=contact, idempotency_key="o-1"
    )

    assert other is not None
    assert (
        activity_record(kind="order_placed", source="shop", contact=contact, idempotency_key="o-1")
        is None
    )


@pytest.mark.django_db
def test_an_all_replay_batch_sends_no_signal(received):
    contact = ContactFactory()
    activity_record_batch(items=[page_view(contact, 1)])

    activity_record_batch(items=[page_view(contact, 1)])

    assert len(received) == 1


@pytest.mark.django_db
def test_anonymous_visitor_activities_need_no_contact():
    activity = activity_record(kind="page_viewed", source="web", anonymous_id="anon-42")

    assert activity.contact is None and activity.anonymous_id == "anon-42"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("item", "message"),
    [
        (ActivityInput(kind="Page Viewed", source="api", anonymous_id="a"), "slug"),
        (ActivityInput(kind="page_viewed", source="api"), "contact or an anonymous id"),
        (ActivityInput(kind="page_viewed", source="", anonymous_id="a"), "source"),
    ],
)
def test_invalid_items_are_refused_naming_the_item_and_nothing_is_written(item, message):
    contact = ContactFactory()

    with pytest.raises(ValidationError, match=message) as error:
        activity_record_batch(items=[page_view(contact, 1), item])

    assert "item 1" in error.value.message_dict
    assert not Activity.objects.exists()


@pytest.mark.django_db
def test_custom_kinds_are_allowed():
    activity = activity_record(kind="webinar_attended", source="zoom", anonymous_id="a")

    assert activity.kind == "webinar_attended"


@pytest.mark.django_db
def test_engagement_moves_last_engaged_at_forward_only():
    contact = ContactFactory()
    now = timezone.now()
    earlier = now - datetime.timedelta(days=2)

    activity_record_batch(
        items=[
            page_view(contact, 1, occurred_at=earlier),
            page_view(contact, 2, occurred_at=now),
        ]
    )
    activity_record(kind="page_viewed", source="api", contact=contact, occurred_at=earlier)

    contact.refresh_from_db()
    assert contact.last_engaged_at == now


@pytest.mark.django_db
def test_a_contact_already_engaged_later_is_not_rewritten():
    from crm.set_updates import column_greatest

    now = timezone.now()
    later, never, earlier = ContactFactory.create_batch(3)
    Contact.objects.filter(pk=later.pk).update(last_engaged_at=now)
    Contact.objects.filter(pk=earlier.pk).update(last_engaged_at=now - datetime.timedelta(days=9))
    values = {pk: now - datetime.timedelta(days=1) for pk in (later.pk, never.pk, earlier.pk)}

    written = column_greatest(Contact, "last_engaged_at", values)

    # On PostgreSQL every row an UPDATE matches is a new row version, changed or not.
    # (Python's sqlite3 reports no row count for a statement that starts with WITH.)
    assert written == (2 if connection.vendor == "postgresql" else 0)
    stored = dict(Contact.objects.values_list("pk", "last_engaged_at"))
    assert stored[later.pk] == now
    assert stored[never.pk] == stored[earlier.pk] == values[never.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "properties"),
    [
        ("email_delivered", {}),
        ("email_bounced", {}),
        ("handed_off", {}),
        ("email_opened", {"is_machine_open": True}),
    ],
)
def test_things_that_happen_to_a_person_are_not_engagement(kind, properties):
    contact = ContactFactory()

    activity_record(kind=kind, source="esp", contact=contact, properties=properties)

    contact.refresh_from_db()
    assert contact.last_engaged_at is None


def statements(queries) -> list[str]:
    """The statements run, without INSERTs (chunked by size on SQLite) and savepoints."""
    skipped = ("INSERT", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"].split(" ")[0] for q in queries if not q["sql"].startswith(skipped)]


@pytest.mark.django_db
def test_a_batch_costs_the_same_queries_whatever_its_size():
    contacts = ContactFactory.create_batch(20)
    small = [page_view(contacts[n % 20], n) for n in range(10)]
    large = [page_view(contacts[n % 20], n) for n in range(10, 1010)]

    with CaptureQueriesContext(connection) as for_small:
        activity_record_batch(items=small)
    with CaptureQueriesContext(connection) as for_large:
        activity_record_batch(items=large)

    # Receivers in scoring and sequences add their own statements: the point is that
    # none of them, nor crm's, grows with the batch. Only INSERTs are chunked (SQLite
    # binds at most 999 parameters a statement, about 110 activity rows).
    assert statements(for_large.captured_queries) == statements(for_small.captured_queries)
    inserts = [q for q in for_large.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) <= 1000 // 110 + 3
    assert Activity.objects.count() == 1010


# --- Deferred announcements (many small recordings, one signal) -----------------------------


@pytest.mark.django_db
def test_deferred_recordings_are_announced_once_at_the_end_of_the_block(received):
    contacts = ContactFactory.create_batch(3)

    with transaction.atomic(), activities_recorded_deferred():
        for n, contact in enumerate(contacts):
            activity_record(kind="handed_off", source="test", contact=contact)
            with activities_recorded_deferred():  # nested: the outer block announces
                activity_record_batch(items=[page_view(contact, n)])
        assert received == []

    assert [sorted(a.kind for a in call) for call in received] == [
        ["handed_off"] * 3 + ["page_viewed"] * 3
    ]


@pytest.mark.django_db
def test_a_deferred_recording_rolled_back_with_its_savepoint_is_not_announced(received):
    kept, dropped = ContactFactory.create_batch(2)

    with transaction.atomic(), activities_recorded_deferred():
        activity_record(kind="handed_off", source="test", contact=kept)
        try:
            with transaction.atomic():
                activity_record(kind="handed_off", source="test", contact=dropped)
                raise RuntimeError("the item failed after recording")
        except RuntimeError:
            pass

    assert [[a.contact_id for a in call] for call in received] == [[kept.pk]]
    assert not Activity.objects.filter(contact=dropped).exists()


@pytest.mark.django_db
def test_a_deferred_block_that_raises_announces_nothing(received):
    contact = ContactFactory()

    with pytest.raises(RuntimeError), transaction.atomic(), activities_recorded_deferred():
        activity_record(kind="handed_off", source="test", contact=contact)
        raise RuntimeError("boom")

    assert received == []
