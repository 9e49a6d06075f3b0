"""On PostgreSQL, several workers over a thousand due enrollments: one ESP call each, none lost."""

import collections
import threading

import pytest
from django.db import connection, connections

from sequences.models import Enrollment, OutboundMessage
from sequences.services import enrollments_run_due
from tests.sequences import backends
from tests.sequences.conftest import (
    START,
    build_sequence,
    bulk_consenting_contacts,
    bulk_due_enrollments,
    email_step,
)

WORKERS = 6
ENROLLMENTS = 1000

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SKIP LOCKED claiming needs PostgreSQL; SQLite serialises writers anyway",
)


def _seed(sequence) -> None:
    contacts = bulk_consenting_contacts(
        ENROLLMENTS, prefix="load", topic=sequence.topic, at=START, time_zone="Europe/Berlin"
    )
    bulk_due_enrollments(contacts, sequence, step="hello", at=START)


def _work(errors: list) -> None:
    try:
        while enrollments_run_due(now=START, limit=25).claimed:
            pass
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connections.close_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_step_exactly_once(settings, default_rows):
    settings.EMAIL_BACKEND = "tests.sequences.backends.GuardedBackend"
    backends.HANDED.clear()
    backends.VIOLATIONS.clear()
    sequence = build_sequence([email_step("hello")], trigger=None)
    _seed(sequence)
    errors: list[str] = []

    threads = [threading.Thread(target=_work, args=(errors,)) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    calls = collections.Counter(backends.HANDED)
    assert len(calls) == ENROLLMENTS
    assert max(calls.values()) == 1
    assert OutboundMessage.objects.filter(state="sent").count() == ENROLLMENTS
    assert not Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES).exists()


CAPPED_CONTACTS = 150


def _seed_two_sequences(first, second) -> tuple[list[int], list[int]]:
    contacts = bulk_consenting_contacts(
        CAPPED_CONTACTS, prefix="cap", topic=first.topic, at=START, time_zone="Europe/Berlin"
    )
    return (
        bulk_due_enrollments(contacts, first, step="hello", at=START),
        bulk_due_enrollments(contacts, second, step="hello", at=START),
    )


def _work_through(pks: list[int], errors: list) -> None:
    try:
        for start in range(0, len(pks), 5):
            enrollments_run_due(now=START, limit=5, pks=pks[start : start + 5])
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connections.close_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_sequences_sending_to_one_contact_at_once_respect_a_cap_of_one(settings, default_rows):
    """Finding 25: the cap needs a per-contact serialisation point (the contact row lock)."""
    settings.SEQUENCES_FREQUENCY_CAP = 1
    first = build_sequence([email_step("hello", on_frequency_cap="skip")], trigger=None)
    second = build_sequence([email_step("hello", on_frequency_cap="skip")], trigger=None)
    first_pks, second_pks = _seed_two_sequences(first, second)
    errors: list[str] = []

    # Each thread works through one sequence, contact by contact, so both reach the same
    # contact at about the same moment: the race the lock must close.
    threads = [
        threading.Thread(target=_work_through, args=(pks, errors))
        for pks in (first_pks, second_pks, list(reversed(first_pks)), list(reversed(second_pks)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sent = collections.Counter(
        OutboundMessage.objects.filter(state="sent").values_list("contact_id", flat=True)
    )
    assert len(sent) == CAPPED_CONTACTS
    assert max(sent.values()) == 1
    assert OutboundMessage.objects.filter(state="skipped", reason="frequency_cap").count() == (
        CAPPED_CONTACTS
    )
