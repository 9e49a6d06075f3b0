"""Report test helpers: recording activities as the API and ESP processing do, a mailed contact."""

import itertools

import pytest

from crm.services import activity_record
from sequences.models import OutboundMessage
from tests.sequences.conftest import build_sequence, email_step, step

_keys = itertools.count()


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Record an activity the way the API and the ESP processing do, running on-commit work."""

    def record_activity(contact, kind, source="test", **properties):
        with django_capture_on_commit_callbacks(execute=True):
            return activity_record(
                kind=kind,
                source=source,
                contact=contact,
                properties=properties,
                idempotency_key=f"k{next(_keys)}",
            )

    return record_activity


@pytest.fixture
def mailed(clock, consenting_contact, record):
    """A two-email sequence the consenting contact entered, its first email sent."""
    sequence = build_sequence(
        [
            email_step("hello"),
            step("pause", "wait_duration", duration={"days": 2}),
            email_step("offer"),
        ],
        key="welcome",
    )
    record(consenting_contact, "form_submitted")
    message = OutboundMessage.objects.get(step="hello")
    return sequence, consenting_contact, message


def esp(record, contact, kind, message, **properties):
    """Record an ESP event's activity for this message, as sequences/esp/processing.py does."""
    return record(
        contact, kind, source="esp:postmark", message_uuid=str(message.uuid), **properties
    )
