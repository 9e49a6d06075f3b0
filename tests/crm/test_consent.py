import datetime
import importlib

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Activity, ConsentEntry, ConsentText, ConsentTopic, CurrentConsent
from crm.selectors import (
    consent_by_topic,
    consent_current,
    consent_is_granted,
    consent_states,
    contacts_with_consent,
)
from crm.services import consent_grant, consent_text_publish, consent_withdraw
from tests.factories import ConsentEntryFactory, ContactFactory, UserFactory


@pytest.fixture
def newsletter(db):
    return ConsentTopic.objects.get(key="newsletter")


def grant(contact, topic, **extra):
    return consent_grant(contact=contact, topic=topic, method="form", source="footer", **extra)


def withdraw(contact, topic, **extra):
    return consent_withdraw(
        contact=contact, topic=topic, method="preference_centre", source="prefs", **extra
    )


@pytest.mark.django_db
def test_current_consent_is_the_latest_ledger_entry(newsletter):
    contact = ContactFactory()
    now = timezone.now()

    grant(contact, newsletter, occurred_at=now - datetime.timedelta(days=3))
    withdraw(contact, newsletter, occurred_at=now - datetime.timedelta(days=2))
    grant(contact, newsletter, occurred_at=now - datetime.timedelta(days=1))

    assert ConsentEntry.objects.filter(contact=contact).count() == 3
    assert consent_current(contact=contact, topic=newsletter).is_granted is True
    assert list(contacts_with_consent(newsletter)) == [contact]


@pytest.mark.django_db
def test_a_withdrawal_makes_the_contact_not_consented(newsletter):
    contact = ContactFactory()
    grant(contact, newsletter)

    withdraw(contact, newsletter)

    assert consent_current(contact=contact, topic=newsletter).is_granted is False
    assert not contacts_with_consent(newsletter).exists()


@pytest.mark.django_db
def test_consent_is_per_topic(newsletter):
    offers = ConsentTopic.objects.get(key="offers")
    contact = ContactFactory()

    grant(contact, newsletter)

    states = {topic.key: entry for topic, entry in consent_by_topic(contact=contact)}
    assert states["newsletter"].is_granted
    assert states["offers"] is None
    assert not contacts_with_consent(offers).exists()


@pytest.mark.django_db
def test_a_grant_records_proof_wording_ip_user_agent_and_who(newsletter):
    contact = ContactFactory(email="proof@example.com")
    staff = UserFactory()

    entry = grant(
        contact, newsletter, ip_address="203.0.113.7", user_agent="Firefox", recorded_by=staff
    )

    assert entry.consent_text == ConsentText.objects.get(topic=newsletter, version=1)
    assert entry.consent_text.text_sha256
    assert (entry.ip_address, entry.user_agent, entry.recorded_by) == (
        "203.0.113.7",
        "Firefox",
        staff,
    )
    assert entry.email_at_time == "proof@example.com"
    assert Activity.objects.filter(contact=contact, kind="consent_granted").count() == 1


@pytest.mark.django_db
def test_repeating_a_grant_or_withdrawal_appends_nothing(newsletter):
    contact = ContactFactory()

    grant(contact, newsletter)
    grant(contact, newsletter)
    withdraw(contact, newsletter)
    withdraw(contact, newsletter)

    assert ConsentEntry.objects.filter(contact=contact).count() == 2


@pytest.mark.django_db
def test_new_wording_is_a_new_version_and_a_regrant_under_it_is_recorded(newsletter):
    contact = ContactFactory()
    grant(contact, newsletter)

    wording = consent_text_publish(topic=newsletter, text="Yes, send me the weekly letter.")
    grant(contact, newsletter, consent_text=wording)

    assert wording.version == 2
    assert consent_current(contact=contact, topic=newsletter).consent_text == wording
    assert consent_text_publish(topic=newsletter, text=wording.text) == wording


@pytest.mark.django_db
def test_a_withdrawal_without_earlier_grant_is_recorded_as_an_objection(newsletter):
    contact = ContactFactory()

    entry = withdraw(contact, newsletter)

    assert entry.pk and entry.is_granted is False


@pytest.mark.django_db
def test_ledger_rows_cannot_be_edited_or_deleted_through_the_orm(newsletter):
    entry = grant(ContactFactory(), newsletter)

    entry.is_granted = False
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        ConsentEntry.objects.filter(pk=entry.pk).update(is_granted=False)
    with pytest.raises(PermissionError):
        ConsentEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(PermissionError):
        ConsentText.objects.filter(topic=newsletter).update(text="Changed")

    entry.refresh_from_db()
    assert entry.is_granted is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE crm_consententry SET is_granted = %s",
        "UPDATE crm_consenttext SET text = 'rewritten' WHERE %s = %s",
    ],
)
def test_the_database_refuses_updates_to_the_ledger_even_in_raw_sql(newsletter, statement):
    grant(ContactFactory(), newsletter)
    params = [False] if statement.count("%s") == 1 else [1, 1]

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, params)

    assert ConsentEntry.objects.get().is_granted is True
    assert ConsentText.objects.get(topic=newsletter).text.startswith("Yes, send me")


@pytest.mark.django_db
def test_wording_from_another_topic_is_refused(newsletter):
    offers_text = ConsentText.objects.get(topic__key="offers")

    with pytest.raises(ValidationError, match="another topic"):
        grant(ContactFactory(), newsletter, consent_text=offers_text)


# --- The current-consent projection ---------------------------------------------------------


def _ledger_state() -> dict[tuple[int, int], tuple[bool, int]]:
    """Current consent derived from the ledger alone: the latest entry per (contact, topic)."""
    state: dict[tuple[int, int], tuple[bool, int]] = {}
    for entry in ConsentEntry.objects.order_by("occurred_at", "pk"):
        state[(entry.contact_id, entry.topic_id)] = (entry.is_granted, entry.pk)
    return state


def _projection_state() -> dict[tuple[int, int], tuple[bool, int]]:
    return {
        (row.contact_id, row.topic_id): (row.is_granted, row.entry_id)
        for row in CurrentConsent.objects.all()
    }


#: One step: (who, which topic, grant or withdraw, how, minutes from a base time).
#: Few distinct minutes, so equal timestamps (ties broken by id) and back-dated entries
#: (an import of old consent after a newer withdrawal) both happen often.
consent_steps = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.sampled_from(["newsletter", "offers"]),
        st.booleans(),
        st.sampled_from(["service", "factory", "bulk"]),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=consent_steps)
def test_the_projection_always_equals_the_state_derived_from_the_ledger(newsletter, steps):
    CurrentConsent.objects.all().delete()
    models.QuerySet.delete(ConsentEntry.objects.all())
    people = [ContactFactory(), ContactFactory()]
    topics = {topic.key: topic for topic in ConsentTopic.objects.all()}
    base = timezone.now() - datetime.timedelta(days=1)

    for who, topic_key, is_granted, path, minutes in steps:
        contact, topic = people[who], topics[topic_key]
        at = base + datetime.timedelta(minutes=minutes)
        with transaction.atomic():
            if path == "service":
                (grant if is_granted else withdraw)(contact, topic, occurred_at=at)
            elif path == "factory":
                ConsentEntryFactory(
                    contact=contact, topic=topic, is_granted=is_granted, occurred_at=at
                )
            else:
                ConsentEntry.objects.bulk_create(
                    [
                        ConsentEntryFactory.build(
                            contact=contact, topic=topic, is_granted=is_granted, occurred_at=at
                        )
                    ]
                )
            # Inside the appending transaction the new state is already what reads see.
            assert _projection_state() == _ledger_state()

    for contact in people:
        for topic in topics.values():
            expected = _ledger_state().get((contact.pk, topic.pk))
            assert consent_is_granted(contact=contact, topic=topic) == (
                expected[0] if expected else None
            )
            current = consent_current(contact=contact, topic=topic)
            assert (current.pk if current else None) == (expected[1] if expected else None)


@pytest.mark.django_db
def test_a_withdrawal_is_seen_by_reads_in_the_same_transaction(newsletter):
    contact = ContactFactory()
    grant(contact, newsletter)

    with transaction.atomic():
        withdraw(contact, newsletter)

        assert consent_is_granted(contact=contact, topic=newsletter) is False
        assert consent_states(contact_ids=[contact.pk], topic=newsletter) == {contact.pk: False}
        assert not contacts_with_consent(newsletter).exists()


@pytest.mark.django_db
def test_an_older_entry_appended_later_does_not_replace_a_newer_withdrawal(newsletter):
    contact = ContactFactory()
    now = timezone.now()
    withdraw(contact, newsletter, occurred_at=now)

    ConsentEntryFactory(
        contact=contact, topic=newsletter, occurred_at=now - datetime.timedelta(days=30)
    )

    assert consent_is_granted(contact=contact, topic=newsletter) is False


@pytest.mark.django_db
def test_the_backfill_rebuilds_the_projection_from_the_ledger(newsletter):
    """The migration's set-based backfill, run again over a ledger with history."""
    backfill = importlib.import_module("crm.migrations.0009_current_consent").BACKFILL
    now = timezone.now()
    people = ContactFactory.create_batch(3)
    for index, contact in enumerate(people):
        grant(contact, newsletter, occurred_at=now - datetime.timedelta(days=3))
        if index:
            withdraw(contact, newsletter, occurred_at=now - datetime.timedelta(days=index))
    expected = _ledger_state()
    CurrentConsent.objects.all().delete()

    with connection.cursor() as cursor:
        cursor.execute(backfill)

    assert _projection_state() == expected


@pytest.mark.django_db
def test_consent_reads_are_one_query_whatever_the_history(newsletter, django_assert_num_queries):
    contact = ContactFactory()
    for day in range(5):
        grant(contact, newsletter, occurred_at=timezone.now() - datetime.timedelta(days=10 - day))
        withdraw(contact, newsletter, occurred_at=timezone.now() - datetime.timedelta(days=9 - day))

    with django_assert_num_queries(1):
        assert consent_is_granted(contact=contact, topic=newsletter) is False
    with django_assert_num_queries(1):
        assert consent_current(contact=contact, topic=newsletter).is_granted is False


@pytest.mark.django_db
def test_erasure_deletes_the_projection_with_the_ledger(newsletter):
    from crm.services.privacy import contact_erase

    contact, other = ContactFactory(), ContactFactory()
    grant(contact, newsletter)
    grant(other, newsletter)

    contact_erase(contact=contact, erased_by=None, requested_via="test")

    assert list(CurrentConsent.objects.values_list("contact_id", flat=True)) == [other.pk]
