"""Order-independent, monotonic event processing (reliability.md §8 item 23).

ESPs guarantee no order and retry deliveries, so Hypothesis permutes and duplicates a
list of events, feeds them through the real path (inbox store, then the processing
service, in chunks as if they arrived in several webhook requests) and compares the
final state with the state the same events leave in their canonical (time) order.
"""

import datetime
from collections import Counter
from dataclasses import dataclass

import pytest
from anymail.signals import AnymailTrackingEvent
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm.models import Activity, ConsentEntry, ConsentTopic, Suppression
from sequences.esp.inbox import esp_event_store
from sequences.esp.processing import esp_events_process
from tests.factories import ContactFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 3, 10, 9, 0, tzinfo=datetime.UTC)
RECIPIENTS = ("ada@example.com", "grace@example.com")
#: message label → recipient: Ada got two messages, Grace one.
MESSAGES = {"m1": RECIPIENTS[0], "m2": RECIPIENTS[0], "m3": RECIPIENTS[1]}
#: Our kinds as anymail event types plus the SES payload that classifies bounces.
EVENT_SHAPES = {
    "delivered": ("delivered", {}),
    "opened": ("opened", {}),
    "clicked": ("clicked", {}),
    "hard_bounce": ("bounced", {"bounce": {"bounceType": "Permanent"}}),
    "soft_bounce": ("bounced", {"bounce": {"bounceType": "Transient"}}),
    "complained": ("complained", {}),
    "deferred": ("deferred", {}),
}


@dataclass(frozen=True)
class Event:
    event_id: str
    message: str
    kind: str
    minute: int  # when it happened; arrival order is another matter


events_strategy = st.lists(
    st.tuples(st.sampled_from(sorted(MESSAGES)), st.sampled_from(sorted(EVENT_SHAPES))),
    min_size=1,
    max_size=8,
).map(
    lambda drawn: [
        Event(event_id=f"evt-{index}", message=message, kind=kind, minute=index * 7)
        for index, (message, kind) in enumerate(drawn)
    ]
)


@st.composite
def deliveries(draw):
    """Events, then how they arrive: shuffled, some twice, in several webhook requests."""
    events = draw(events_strategy)
    arrival = draw(st.permutations(events))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    for duplicate in duplicates:
        arrival.insert(draw(st.integers(0, len(arrival))), duplicate)
    chunk = draw(st.integers(1, len(arrival)))
    return events, arrival, chunk


def _anymail_event(event: Event, ledger: dict) -> AnymailTrackingEvent:
    event_type, raw = EVENT_SHAPES[event.kind]
    return AnymailTrackingEvent(
        event_type=event_type,
        event_id=event.event_id,
        timestamp=START + datetime.timedelta(minutes=event.minute),
        recipient=MESSAGES[event.message],
        message_id=f"ses-{event.message}",
        metadata={"message_uuid": str(ledger[event.message].uuid)},
        esp_event={**raw, "eventId": event.event_id},
    )


def _final_state(arrival: list[Event], chunk: int) -> dict:
    """Run one delivery order in a transaction that is rolled back, and read the state."""
    with transaction.atomic():
        ledger = _world()
        for start in range(0, len(arrival), chunk):
            for event in arrival[start : start + chunk]:
                esp_event_store(_anymail_event(event, ledger), "Amazon SES")
            esp_events_process()  # the task after each webhook request
        state = _read_state(ledger)
        transaction.set_rollback(True)
    return state


def _world() -> dict:
    contacts = {email: ContactFactory(email=email) for email in RECIPIENTS}
    return {
        label: OutboundMessageFactory(
            contact=contacts[email],
            enrollment__contact=contacts[email],
            esp_message_id=f"ses-{label}",
            sent_at=START - datetime.timedelta(minutes=1),
        )
        for label, email in MESSAGES.items()
    }


def _read_state(ledger: dict) -> dict:
    consent = {
        (entry.contact.email, entry.topic.key): entry.is_granted
        for entry in ConsentEntry.objects.select_related("contact", "topic").order_by(
            "occurred_at", "pk"
        )
    }  # the latest entry per (contact, topic) wins
    activities = Counter(
        Activity.objects.filter(kind__startswith="email_").values_list("contact__email", "kind")
    )
    for row in ledger.values():
        row.refresh_from_db()
    return {
        "suppressions": sorted(Suppression.objects.values_list("email", "reason")),
        "ledger": {label: row.state for label, row in ledger.items()},
        "activities": dict(activities),
        "consent": consent,
    }


@pytest.fixture
def two_message_soft_bounce_limit(settings):
    # Two soft bounces are reachable in a small example (three messages in all).
    settings.DELIVERABILITY_SOFT_BOUNCE_LIMIT = 2


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(delivery=deliveries())
@example(  # the later soft bounce arrives, and is processed, before the earlier one
    delivery=(
        [Event("evt-0", "m1", "soft_bounce", 0), Event("evt-1", "m2", "soft_bounce", 7)],
        [Event("evt-1", "m2", "soft_bounce", 7), Event("evt-0", "m1", "soft_bounce", 0)],
        1,
    )
)
def test_any_arrival_order_ends_in_the_state_of_the_canonical_order(
    delivery, two_message_soft_bounce_limit
):
    events, arrival, chunk = delivery
    canonical = sorted(events, key=lambda event: event.minute)

    expected = _final_state(canonical, chunk=len(canonical))

    assert _final_state(arrival, chunk) == expected


def test_topics_exist():
    # The consent part of the state is only meaningful with topics to withdraw.
    assert ConsentTopic.objects.exists()
