"""Sequence test helpers: a frozen clock, a consenting contact, sequences built step by step."""

import datetime
from unittest import mock

import pytest
from django.core import mail

from crm.models import ConsentEntry, ConsentTopic, Contact
from sequences.models import Enrollment, Sequence, Step, Trigger
from sequences.services import enrollments_run_due, sequence_activate
from tests.factories import (
    ConsentEntryFactory,
    ContactFactory,
    EmailTemplateFactory,
    UserFactory,
)

#: A Tuesday, 11:00 in Berlin: outside quiet hours for the default contact.
START = datetime.datetime(2026, 3, 10, 10, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self, now: datetime.datetime):
        self.now = now

    def advance(self, **delta) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    """Freeze django.utils.timezone.now; tests move it with clock.advance(...)."""
    frozen = Clock(START)
    with mock.patch("django.utils.timezone.now", lambda: frozen.now):
        yield frozen


@pytest.fixture
def stub_esp(settings):
    """A stub Postmark on 127.0.0.1 (esp_stub.py), not listening until stub_esp.start().

    anymail's real Postmark backend sends to it; other ANYMAIL settings are kept.
    """
    from tests.sequences.esp_stub import EspStub

    stub = EspStub()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        **(settings.ANYMAIL or {}),
        "POSTMARK_SERVER_TOKEN": "test-token",
        "POSTMARK_API_URL": stub.url,
        "REQUESTS_TIMEOUT": 0.5,
    }
    yield stub
    stub.stop()


@pytest.fixture
def newsletter(db):
    return ConsentTopic.objects.get(key="newsletter")


@pytest.fixture
def consenting_contact(newsletter, clock):
    contact = ContactFactory(first_name="Ada")
    ConsentEntryFactory(
        contact=contact, topic=newsletter, occurred_at=clock.now - datetime.timedelta(days=30)
    )
    return contact


def email_step(key: str, template=None, **config) -> dict:
    return {"key": key, "type": "send_email", "template": template, "config": config}


def step(key: str, step_type: str, **config) -> dict:
    return {"key": key, "type": step_type, "config": config}


def build_sequence(
    steps: list[dict],
    *,
    trigger: str | None = "form_submitted",
    activate: bool = True,
    **fields,
) -> Sequence:
    """Create a sequence with these steps (email steps get a fresh template) and activate it."""
    fields.setdefault("owner", UserFactory())
    fields.setdefault("on_send_failure", Sequence.OnSendFailure.CONTINUE)
    if not fields.get("is_transactional"):
        fields.setdefault("topic", ConsentTopic.objects.get(key="newsletter"))
    sequence = Sequence.objects.create(
        key=fields.pop("key", f"seq-{Sequence.objects.count() + 1}"),
        name=fields.pop("name", "Test sequence"),
        **fields,
    )
    for position, data in enumerate(steps):
        template = data.get("template")
        if data["type"] == "send_email" and template is None:
            marketing = not sequence.is_transactional
            template = EmailTemplateFactory(
                key=f"{sequence.key}-{data['key']}", is_marketing=marketing
            )
        Step.objects.create(
            sequence=sequence,
            position=position,
            key=data["key"],
            type=data["type"],
            template=template,
            config=data.get("config", {}),
        )
    if trigger:
        Trigger.objects.create(sequence=sequence, activity_kind=trigger)
    if activate:
        sequence_activate(sequence=sequence)
        sequence.refresh_from_db()
    return sequence


def run(clock, **kwargs):
    return enrollments_run_due(now=clock.now, **kwargs)


def sent_to(email: str) -> list:
    return [message for message in mail.outbox if email in message.to]


def bulk_consenting_contacts(
    count: int, *, prefix: str, topic: ConsentTopic, at: datetime.datetime, time_zone: str
) -> list[Contact]:
    """`count` vouched contacts who granted `topic` at `at`, written in bulk (load tests)."""
    contacts = Contact.objects.bulk_create(
        Contact(
            email=f"{prefix}{n}@example.com",
            country="DE",
            time_zone=time_zone,
            vouched_at=at,
            vouched_by=Contact.VouchedBy.STAFF,
        )
        for n in range(count)
    )
    ConsentEntry.objects.bulk_create(
        ConsentEntry(
            contact=contact,
            topic=topic,
            is_granted=True,
            email_at_time=contact.email,
            method="form",
            source="load test",
            occurred_at=at,
        )
        for contact in contacts
    )
    return contacts


def bulk_due_enrollments(
    contacts: list[Contact], sequence: Sequence, *, step: str, at: datetime.datetime
) -> list[int]:
    """Enroll each contact at `step`, due at `at`; returns the enrollment ids."""
    enrollments = Enrollment.objects.bulk_create(
        Enrollment(
            contact=contact,
            sequence=sequence,
            version=sequence.current_version,
            current_step=step,
            due_at=at,
            enrolled_at=at,
        )
        for contact in contacts
    )
    return [enrollment.pk for enrollment in enrollments]
