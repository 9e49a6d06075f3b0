import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from crm.models import Activity, ConsentEntry, ConsentText, ConsentTopic
from crm.selectors import consent_by_topic, consent_current, contacts_with_consent
from crm.services import consent_grant, consent_text_publish, consent_withdraw
from tests.factories import ContactFactory, UserFactory


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
