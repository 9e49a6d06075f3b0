"""The batch form of the send gate decides exactly as the single form (issue #10).

`evaluate` asks the database per contact; `evaluate_many` / `evaluate_in_batch` read
facts fetched once for the whole batch with set-based queries. On varied data (every
rule's inputs drawn at random, several seeds) both must give the same Decision for
every (contact, sequence, step), and the batch's queries must not grow with its size.
"""

import datetime
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import ConsentTopic, Contact, ContactPreference, Suppression
from sequences.gate import CHECKS, GateBatch, evaluate, evaluate_in_batch, evaluate_many
from sequences.models import CircuitBreakerTrip, Enrollment, OutboundMessage
from tests.factories import ConsentEntryFactory, ContactFactory, SuppressionFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db

REASONS = [choice for choice, _label in Suppression.Reason.choices]
STATES = [choice for choice, _label in OutboundMessage.State.choices]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Not/AZone", ""]


def _varied_contacts(rng: random.Random, count: int, now, topic, other_topic) -> list:
    history = build_sequence([email_step("earlier")], trigger=None)
    contacts = []
    for n in range(count):
        vouched = rng.random() >= 0.1
        contact = ContactFactory(
            email="" if n == 7 else f"varied{n}-{rng.random():.6f}@example.com",  # one without
            country=rng.choice(["DE", "US", "", "FR"]),
            time_zone=rng.choice(ZONES),
            vouched_at=now if vouched else None,
            vouched_by=Contact.VouchedBy.STAFF if vouched else "",
        )
        contact.created_at = now - datetime.timedelta(days=rng.choice([1, 30, 200]))
        contact.last_engaged_at = rng.choice(
            [None, now - datetime.timedelta(days=rng.choice([1, 60, 120]))]
        )
        contact.save(update_fields=["created_at", "last_engaged_at"])
        if contact.email:
            for reason in rng.sample(REASONS, rng.choice([0, 0, 0, 1, 2])):
                expires = None
                if reason == Suppression.Reason.SOFT_BOUNCE:  # the only temporary one
                    expires = now + datetime.timedelta(days=rng.choice([-2, 2]))
                SuppressionFactory(email=contact.email, reason=reason, expires_at=expires)
        for chosen in (topic, other_topic):
            if rng.random() < 0.6:  # never asked otherwise
                ConsentEntryFactory(contact=contact, topic=chosen, is_granted=rng.random() < 0.7)
        if rng.random() < 0.2:
            paused = now + datetime.timedelta(days=rng.choice([-3, 5]))
            ContactPreference.objects.create(contact=contact, paused_until=paused)
        earlier = Enrollment.objects.create(
            contact=contact,
            sequence=history,
            version=history.current_version,
            state=Enrollment.State.COMPLETED,
            enrolled_at=now - datetime.timedelta(days=30),
        )
        for number in range(rng.choice([0, 0, 1, 2, 3, 4])):
            OutboundMessage.objects.create(
                enrollment=earlier,
                contact=contact,
                step=f"earlier{number}",
                is_marketing=rng.random() < 0.85,
                state=rng.choice(STATES),
                created_at=now - datetime.timedelta(hours=rng.randrange(0, 24 * 20)),
            )
        contacts.append(contact)
    return contacts


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_batch_gate_decides_exactly_as_the_single_gate(seed, settings):
    rng = random.Random(seed)
    settings.SEQUENCES_FREQUENCY_CAP = rng.choice([1, 2, 3])
    settings.SEQUENCES_QUIET_HOURS = rng.choice(["21:00-08:00", "00:00-00:00", "09:00-17:00"])
    now = datetime.datetime(2026, 3, 10, rng.randrange(0, 24), 17, tzinfo=datetime.UTC)
    topic = ConsentTopic.objects.get(key="newsletter")
    other_topic = ConsentTopic.objects.create(key=f"offers-{seed}", name="Offers")
    sequences = [
        build_sequence([email_step("a")], trigger=None),
        build_sequence([email_step("a")], trigger=None, topic=other_topic),
        build_sequence([email_step("a")], trigger=None, is_transactional=True),
    ]
    if rng.random() < 0.5:
        other_topic.is_active = False
        other_topic.save()
        sequences[1].topic.refresh_from_db()
    if rng.random() < 0.3:
        CircuitBreakerTrip.objects.create(
            metric="complaint_rate", rate=0.01, threshold=0.001, sent=100,
            window_start=now, opened_at=now,
        )  # fmt: skip
    contacts = _varied_contacts(rng, 40, now, topic, other_topic)
    steps = [{"key": "a", "config": {}}, {"key": "a", "config": {"on_frequency_cap": "skip"}}]
    items = [
        (contact, rng.choice(sequences), rng.choice(steps))
        for contact in contacts
        for _ in range(2)
    ]

    single = [evaluate(contact, sequence, step, now) for contact, sequence, step in items]
    batch = evaluate_many(items, now)

    assert batch == single
    reasons = {decision.reason for decision in single}
    assert len(reasons) >= 6, reasons  # the data reached many different rules


def test_a_claim_noted_in_the_batch_counts_for_the_next_decision(settings):
    settings.SEQUENCES_FREQUENCY_CAP = 1
    settings.SEQUENCES_QUIET_HOURS = "00:00-00:00"
    now = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
    contact = ContactFactory()
    ConsentEntryFactory(contact=contact, topic=ConsentTopic.objects.get(key="newsletter"))
    sequence = build_sequence([email_step("a")], trigger=None)
    batch = GateBatch([contact], now)
    step = {"key": "a", "config": {}}

    assert evaluate_in_batch(batch, contact, sequence, step).allowed
    batch.note_claim(contact, sequence, now)
    second = evaluate_in_batch(batch, contact, sequence, step)

    # As the single gate would decide once the first claim exists.
    enrollment = Enrollment.objects.create(
        contact=contact, sequence=sequence, version=sequence.current_version, enrolled_at=now
    )
    OutboundMessage.objects.create(
        enrollment=enrollment, contact=contact, step="a", state="claimed", created_at=now
    )
    assert second == evaluate(contact, sequence, step, now)
    assert (second.reason, second.defer_until) == (
        "frequency_cap",
        now + datetime.timedelta(days=7),
    )


def _queries_for(count: int, now, sequence) -> int:
    contacts = [ContactFactory() for _ in range(count)]
    for contact in contacts:
        ConsentEntryFactory(contact=contact, topic=sequence.topic)
    items = [(contact, sequence, {"key": "a", "config": {}}) for contact in contacts]
    with CaptureQueriesContext(connection) as queries:
        decisions = evaluate_many(items, now)
    assert all(decision.allowed for decision in decisions)
    return len(queries)


def test_the_batch_gate_uses_a_fixed_number_of_queries(settings):
    settings.SEQUENCES_QUIET_HOURS = "00:00-00:00"
    now = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
    sequence = build_sequence([email_step("a")], trigger=None)

    few, many = _queries_for(3, now, sequence), _queries_for(30, now, sequence)

    # suppressions, circuit breaker, pauses, consent, one GROUP BY of recent sends
    assert few == many == 5


def test_every_check_has_a_name_and_a_batch_form():
    names = [check.name for check in CHECKS]
    assert len(names) == len(set(names))
    assert all(check.batch is not None for check in CHECKS)
