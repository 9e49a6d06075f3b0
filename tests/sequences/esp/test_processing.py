"""Processing: per-event failures are visible, the rest of the batch goes on (DESIGN inv. 7)."""

from unittest import mock

import pytest

from crm.models import Activity
from sequences.esp.processing import esp_events_process
from sequences.models import EspEvent
from tests.factories import ContactFactory, EspEventFactory

pytestmark = pytest.mark.django_db


def test_one_failing_event_is_marked_failed_and_the_others_are_processed():
    contact = ContactFactory(email="ada@example.com")
    bounce = EspEventFactory(kind=EspEvent.Kind.HARD_BOUNCE, recipient=contact.email)
    delivered = EspEventFactory(kind=EspEvent.Kind.DELIVERED, recipient=contact.email)

    with mock.patch("sequences.esp.processing.suppression_add", side_effect=RuntimeError("boom")):
        assert esp_events_process() == 2

    bounce.refresh_from_db()
    delivered.refresh_from_db()
    assert (bounce.outcome, bounce.reason) == ("failed", "RuntimeError: boom")
    assert delivered.outcome == "unknown_message"  # no ledger row, but still recorded
    assert Activity.objects.filter(kind="email_delivered", contact=contact).count() == 1
    assert Activity.objects.filter(kind="email_bounced").count() == 0


def test_processing_twice_does_nothing_the_second_time():
    contact = ContactFactory(email="ada@example.com")
    EspEventFactory(kind=EspEvent.Kind.CLICKED, recipient=contact.email)

    assert esp_events_process() == 1
    assert esp_events_process() == 0
    assert Activity.objects.filter(kind="email_clicked").count() == 1
