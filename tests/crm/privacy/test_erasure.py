"""Erasure: the person's data goes, a keyed hash stays, and they are never mailed again."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from crm.emails import email_hash
from crm.models import Activity, ConsentEntry, ConsentTopic, Contact, ErasureRecord, Suppression
from crm.services import api_key_create, contact_erase, contact_upsert, opt_in_request_send
from sequences.gate import evaluate
from tests.crm.api.conftest import client_for
from tests.factories import (
    ActivityFactory,
    ConsentEntryFactory,
    ContactFactory,
    DealFactory,
    SuppressionFactory,
)
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(db):
    contact = ContactFactory(email="ada@example.com", first_name="Ada", country="US")
    ConsentEntryFactory(contact=contact, topic=ConsentTopic.objects.get(key="newsletter"))
    ActivityFactory(contact=contact)
    return contact


def test_erasure_deletes_the_person_and_keeps_only_a_hash(person, superuser):
    deal = DealFactory(contact=person)
    SuppressionFactory(email="ada@example.com", reason=Suppression.Reason.HARD_BOUNCE)

    record = contact_erase(contact=person, erased_by=superuser, requested_via="admin")

    assert not Contact.objects.exists()
    assert not ConsentEntry.objects.exists()
    assert not Activity.objects.exists()
    deal.refresh_from_db()
    assert deal.contact is None
    assert record.email_hash == email_hash("ada@example.com")
    assert record.erased_by == superuser and record.deleted_counts["crm.ConsentEntry"] == 1
    assert set(Suppression.objects.values_list("email", flat=True)) == {""}
    assert Suppression.objects.filter(reason=Suppression.Reason.ERASED).exists()


@pytest.mark.parametrize("address", ["ADA@Example.com", "  ada@example.COM  "])
def test_recreated_address_in_another_case_is_denied_as_erased(person, address):
    contact_erase(contact=person, erased_by=None, requested_via="api")

    again = contact_upsert(email=address, country="US").contact
    sequence = build_sequence([email_step("hello")], trigger=None)
    decision = evaluate(again, sequence, {"config": {}}, timezone.now())

    assert (decision.allowed, decision.reason) == (False, "erased")
    transactional = build_sequence([email_step("receipt")], trigger=None, is_transactional=True)
    assert evaluate(again, transactional, {"config": {}}, timezone.now()).reason == "erased"


def test_sign_up_of_an_erased_address_sends_nothing(person):
    contact_erase(contact=person, erased_by=None, requested_via="admin")

    sent = opt_in_request_send(
        email="Ada@Example.com", topic=ConsentTopic.objects.get(key="newsletter")
    )

    assert sent is False and mail.outbox == []


def test_admin_erasure_asks_first_then_records_who_and_when(client, superuser, person):
    client.force_login(superuser)
    url = reverse("admin:crm_contact_changelist")
    data = {"action": "erase_contacts", "_selected_action": [person.pk]}

    confirm = client.post(url, data)
    assert confirm.status_code == 200 and Contact.objects.exists()

    client.post(url, {**data, "confirm_erasure": "yes"})

    record = ErasureRecord.objects.get()
    assert record.erased_by == superuser and record.requested_via == "admin"
    assert record.contact_pk == person.pk and record.erased_at is not None
    assert not Contact.objects.exists()


def test_api_create_of_an_erased_address_is_never_mailed(person):
    contact_erase(contact=person, erased_by=None, requested_via="admin")
    server = api_key_create(name="Backend", kind="server")

    response = client_for(server.key).post(
        "/api/v1/contacts/", {"email": " Ada@EXAMPLE.com", "country": "US"}, format="json"
    )

    assert response.status_code == 201
    again = Contact.objects.get()
    sequence = build_sequence([email_step("hello")], trigger=None)
    assert evaluate(again, sequence, {"config": {}}, timezone.now()).reason == "erased"
