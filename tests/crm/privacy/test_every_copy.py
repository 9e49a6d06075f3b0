"""Erasure removes every copy of the address; the export holds everything about the person.

Issue 9, finding 17: erasure left the ESP webhook inbox (recipient address, raw payload)
behind, and the export omitted those events and segment memberships.
"""

import json
import uuid

import pytest
from django.apps import apps
from django.core import mail
from django.db import models

from crm.emails import email_hash
from crm.models import ConsentTopic, Contact, Suppression
from crm.services import contact_erase, contact_export, opt_in_request_send, suppression_add
from sequences.esp.processing import esp_events_process
from sequences.models import EspEvent, OutboundMessage
from sequences.privacy import esp_events_forget_erased
from tests.factories import (
    ConsentEntryFactory,
    ContactFactory,
    EspEventFactory,
    OutboundMessageFactory,
    SegmentMembershipFactory,
    SuppressionLiftFactory,
)
from tests.sequences.esp.conftest import payload, post_postmark

pytestmark = pytest.mark.django_db
ADDRESS = "ada@example.com"


def subs(message, event_id: str = "") -> dict:
    """Placeholders for a recorded Postmark event about this ledger row."""
    return {
        "email": ADDRESS,
        "uuid": message.uuid,
        "message_id": message.esp_message_id,
        "event_id": event_id or uuid.uuid4().hex,
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
    }


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}


@pytest.fixture
def person(client):
    """Ada signed up (a confirmation went out before she was a contact), got a sequence
    email, and the ESP reported deliveries and opens for both."""
    newsletter = ConsentTopic.objects.get(key="newsletter")
    opt_in_request_send(email=ADDRESS, topic=newsletter)
    confirmation = OutboundMessage.objects.get()
    contact = ContactFactory(email=ADDRESS, first_name="Ada")
    ConsentEntryFactory(contact=contact, topic=newsletter)
    step = OutboundMessageFactory(
        contact=contact, enrollment__contact=contact, esp_message_id="pm-1"
    )
    for message in (confirmation, step):
        values = subs(message)
        post_postmark(client, payload("postmark_delivered.json", **values))
        post_postmark(client, payload("postmark_open.json", **values))
    esp_events_process()
    SegmentMembershipFactory(contact=contact)
    return contact


def rows_mentioning(text: str) -> dict[str, int]:
    """Every row of every table whose text holds `text`, by model: a whole-database scan."""
    found = {}
    for model in apps.get_models():
        fields = [
            field.attname
            for field in model._meta.concrete_fields
            if not isinstance(field, models.BinaryField)
        ]
        hits = sum(
            text in json.dumps(row, default=str).lower()
            for row in model.objects.values(*fields).iterator()
        )
        if hits:
            found[model._meta.label] = hits
    return found


def test_erasure_leaves_no_copy_of_the_address_anywhere(person):
    assert set(rows_mentioning(ADDRESS)) >= {"crm.Contact", "sequences.EspEvent"}
    kinds_before = sorted(EspEvent.objects.values_list("kind", flat=True))

    contact_erase(contact=person, erased_by=None, requested_via="api")

    assert rows_mentioning(ADDRESS) == {}
    # The events stay countable for the deliverability report and the breaker.
    assert sorted(EspEvent.objects.values_list("kind", flat=True)) == kinds_before
    assert set(EspEvent.objects.values_list("recipient", "event_id")) == {("", "")}
    assert not EspEvent.objects.exclude(raw={}).exists()


def test_an_event_arriving_after_erasure_is_anonymised_when_processed(client, person):
    step = OutboundMessage.objects.get(kind=OutboundMessage.SEQUENCE)
    contact_erase(contact=person, erased_by=None, requested_via="api")

    post_postmark(client, payload("postmark_open.json", **subs(step, event_id="late")))
    esp_events_process()  # (the webhook request already ran it; a re-run is a no-op)

    late = EspEvent.objects.latest("pk")
    assert (late.kind, late.recipient, late.raw) == (EspEvent.Kind.OPENED, "", {})
    assert late.processed_at is not None
    assert rows_mentioning(ADDRESS) == {}


def test_the_export_holds_esp_events_memberships_system_mail_and_suppression_history(person):
    suppression_add(email=ADDRESS, reason=Suppression.Reason.UNSUBSCRIBED, source="one-click")
    SuppressionLiftFactory(email_hash=email_hash(ADDRESS), note="Typed the wrong address.")

    data = contact_export(contact=person)

    esp_events = data["sequences"]["esp_events"]
    assert len(esp_events) == 4 and {event["recipient"] for event in esp_events} == {ADDRESS}
    assert all(event["raw"] for event in esp_events)
    kinds = sorted(message["kind"] for message in data["sequences"]["messages"])
    assert kinds == ["opt_in_confirmation", "sequence"]
    assert len(data["segment_memberships"]) == 1
    assert data["segment_memberships"][0]["segment__key"].startswith("segment-")
    assert [s["reason"] for s in data["suppressions"]] == ["unsubscribed"]
    assert [lift["note"] for lift in data["suppression_lifts"]] == ["Typed the wrong address."]
    assert mail.outbox  # (the confirmation really went out through the ledger)


#: Every model that points at a contact, and the export section that carries its rows.
#: A new model with a relation to Contact fails this test until the export includes it.
EXPORTED_RELATIONS = {
    "crm.Activity": ("activities",),
    "crm.ConsentEntry": ("consent_ledger",),
    "crm.CurrentConsent": ("current_consent",),
    "crm.ContactPreference": ("preferences",),
    "crm.Deal": ("deals",),
    "crm.LifecycleStageChange": ("lifecycle_stage_changes",),
    "crm.Note": ("notes",),
    "crm.SegmentMembership": ("segment_memberships",),
    "crm.Task": ("tasks",),
    "crm.Contact_tags": ("tags",),
    "predictions.ContactPrediction": ("predictions", "purchase_predictions"),
    "predictions.ContactSendTime": ("predictions", "send_times"),
    "predictions.MissedMilestone": ("predictions", "missed_milestones"),
    "scoring.Handoff": ("scoring", "handoffs"),
    "scoring.RisingIntent": ("scoring", "rising_intent"),
    "scoring.ScoreChange": ("scoring", "score_changes"),
    "sequences.Enrollment": ("sequences", "enrollments"),
    "sequences.OutboundMessage": ("sequences", "messages"),
}


def test_every_model_holding_contact_rows_is_in_the_export(person):
    related = {
        relation.related_model._meta.label
        for relation in Contact._meta.related_objects
        if not relation.related_model._meta.auto_created
    } | {Contact.tags.through._meta.label}
    data = contact_export(contact=person)

    assert related == set(EXPORTED_RELATIONS)
    for path in EXPORTED_RELATIONS.values():
        section = data
        for key in path:
            section = section[key]
        assert section is not None


def test_processing_forgets_erased_recipients_in_two_queries_per_batch(
    django_assert_max_num_queries,
):
    suppression_add(email="gone@example.com", reason=Suppression.Reason.ERASED, source="test")
    events = EspEventFactory.create_batch(40) + EspEventFactory.create_batch(
        10, recipient="gone@example.com"
    )

    with django_assert_max_num_queries(2):
        forgotten = esp_events_forget_erased(events)

    assert forgotten == 10
    assert EspEvent.objects.filter(recipient="").count() == 10
