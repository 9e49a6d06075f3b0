"""The send gate's low-engagement throttle (frozen clock)."""

import datetime

import pytest
from django.core import mail

from sequences.models import OutboundMessage
from sequences.services import enrollment_create
from tests.factories import OutboundMessageFactory
from tests.sequences.conftest import build_sequence, email_step, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def idle_contact(consenting_contact, clock):
    """Last engaged 100 days ago; one marketing email 3 days ago."""
    consenting_contact.last_engaged_at = clock.now - datetime.timedelta(days=100)
    consenting_contact.save(update_fields=["last_engaged_at"])
    OutboundMessageFactory(
        contact=consenting_contact, created_at=clock.now - datetime.timedelta(days=3)
    )
    return consenting_contact


def test_low_engagement_contact_is_deferred_until_the_interval_passed(clock, idle_contact):
    sequence = build_sequence([email_step("hello")])
    enrollment = enrollment_create(contact=idle_contact, sequence=sequence, now=clock.now)

    run(clock)

    enrollment.refresh_from_db()
    assert mail.outbox == []
    assert enrollment.due_at == clock.now + datetime.timedelta(days=11)
    assert enrollment.events.filter(kind="deferred", reason="low_engagement_throttle").exists()
    clock.advance(days=11, minutes=1)
    run(clock)
    assert len(mail.outbox) == 1


def test_low_engagement_skip_policy_skips_the_email(clock, idle_contact):
    sequence = build_sequence([email_step("hello", on_frequency_cap="skip")])
    enrollment = enrollment_create(contact=idle_contact, sequence=sequence, now=clock.now)

    run(clock)

    ledger = OutboundMessage.objects.get(enrollment=enrollment)
    assert (ledger.state, ledger.reason) == ("skipped", "low_engagement_throttle")
    assert mail.outbox == []


def test_recently_engaged_contact_is_not_throttled(clock, idle_contact):
    idle_contact.last_engaged_at = clock.now - datetime.timedelta(days=5)
    idle_contact.save(update_fields=["last_engaged_at"])
    sequence = build_sequence([email_step("hello")])
    enrollment_create(contact=idle_contact, sequence=sequence, now=clock.now)

    run(clock)

    assert len(mail.outbox) == 1


def test_throttle_threshold_follows_the_setting(clock, idle_contact, settings):
    settings.SEQUENCES_LOW_ENGAGEMENT_DAYS = 120
    sequence = build_sequence([email_step("hello")])
    enrollment_create(contact=idle_contact, sequence=sequence, now=clock.now)

    run(clock)

    assert len(mail.outbox) == 1


def test_transactional_mail_is_never_throttled(clock, idle_contact):
    sequence = build_sequence([email_step("receipt")], is_transactional=True)
    enrollment_create(contact=idle_contact, sequence=sequence, now=clock.now)

    run(clock)

    assert len(mail.outbox) == 1
