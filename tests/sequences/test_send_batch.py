"""The batched send path (issue #10): a batch's queries, its crash safety, its downstream.

A batch of due emails is claimed, gated and claimed on the ledger in one transaction,
handed to the ESP through one connection (each hand-off committed just before its
call), and recorded in one more transaction with one activity batch.
"""

import datetime
from unittest import mock

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Activity
from crm.signals import activities_recorded
from sequences.models import Enrollment, OutboundMessage
from sequences.services import ledger_mark_stale_unknown
from sequences.services.moves import lease_length
from tests.sequences.conftest import (
    build_sequence,
    bulk_consenting_contacts,
    bulk_due_enrollments,
    email_step,
    run,
)

pytestmark = pytest.mark.django_db

HANDED: list[str] = []
#: The hand-off (1st, 2nd, ...) during which the worker is killed (SystemExit is what a
#: kill looks like to the code: nothing after it runs).
KILL_AT: set[int] = set()


class KillingBackend(AnymailTestBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            HANDED.append(message.to[0])
            if len(HANDED) in KILL_AT:
                raise SystemExit("worker killed in the middle of the ESP call")
        return super().send_messages(email_messages)


@pytest.fixture
def killing_esp(settings):
    settings.EMAIL_BACKEND = "tests.sequences.test_send_batch.KillingBackend"
    settings.SEQUENCES_QUIET_HOURS = "00:00-00:00"
    HANDED.clear()
    KILL_AT.clear()
    yield
    HANDED.clear()
    KILL_AT.clear()


def _due(count: int, clock, prefix: str, sequence=None) -> tuple:
    sequence = sequence or build_sequence([email_step("hello")], trigger=None)
    contacts = bulk_consenting_contacts(
        count, prefix=prefix, topic=sequence.topic, at=clock.now, time_zone="UTC"
    )
    return sequence, contacts, bulk_due_enrollments(contacts, sequence, step="hello", at=clock.now)


def _queries_to_send(count: int, clock, prefix: str) -> int:
    _due(count, clock, prefix)
    with CaptureQueriesContext(connection) as queries:
        result = run(clock, limit=count)
    assert result.emails_sent == count
    return len(queries)


#: Queries a batch costs whatever its size: claim, gate, ledger, record, moves, and the
#: revenue report counters written beside them (sends, ended enrollments).
PER_BATCH = 46


def test_a_batch_uses_the_same_queries_whatever_its_size_but_one_hand_off_each(clock, killing_esp):
    few = _queries_to_send(3, clock, "few")
    many = _queries_to_send(30, clock, "many")

    # The only query per message is the committed hand-off (sending._hand_off), the
    # line after which a crash never resends; everything else is per batch.
    assert many - 30 == few - 3
    assert few - 3 <= PER_BATCH


def test_the_hand_off_budget_is_enforced(clock, killing_esp, django_assert_max_num_queries):
    _due(20, clock, "budget")
    with django_assert_max_num_queries(PER_BATCH + 20):
        assert run(clock, limit=20).emails_sent == 20


def test_a_worker_killed_mid_batch_never_resends_and_loses_nothing(clock, killing_esp):
    _due(6, clock, "kill")
    KILL_AT.add(3)

    with pytest.raises(SystemExit):
        run(clock)
    first = HANDED[:3]
    rows = OutboundMessage.objects.select_related("contact")
    # Each answer is on its row before the next hand-off; the hand-off is committed.
    assert {row.contact.email: row.state for row in rows if row.claimed_at} == {
        first[0]: "sent",
        first[1]: "sent",
        first[2]: "claimed",  # in flight when the worker died
    }
    assert [row.state for row in rows if row.claimed_at is None] == ["claimed"] * 3

    KILL_AT.clear()
    clock.advance(seconds=lease_length().total_seconds() + 1)  # the dead worker's lease ends
    run(clock)

    assert len(HANDED) == len(set(HANDED)) == 6  # nobody twice, nobody lost
    states = {row.contact.email: row.state for row in rows.all()}
    # Only the message in flight may have reached the ESP unseen: unknown, never resent.
    assert {email for email, state in states.items() if state == "unknown"} == {first[2]}
    assert sum(state == "sent" for state in states.values()) == 5
    # The two sent before the crash got their email_sent activity on the re-run, once.
    sent_activities = Activity.objects.filter(kind=Activity.Kind.EMAIL_SENT)
    assert sorted(sent_activities.values_list("contact__email", flat=True)) == sorted(
        email for email, state in states.items() if state == "sent"
    )
    assert not Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES).exclude(
        contact__email=first[2]
    )


def test_a_claim_never_handed_over_is_closed_when_its_enrollment_left_the_step(clock, killing_esp):
    _due(2, clock, "left")
    KILL_AT.add(1)
    with pytest.raises(SystemExit):
        run(clock)
    handed = OutboundMessage.objects.get(contact__email=HANDED[0])
    never_handed = OutboundMessage.objects.exclude(pk=handed.pk).get()
    Enrollment.objects.filter(pk=never_handed.enrollment_id).update(state="exited")

    ledger_mark_stale_unknown(now=clock.now + lease_length() + datetime.timedelta(seconds=1))

    never_handed.refresh_from_db()
    assert never_handed.state == "skipped"
    assert never_handed.reason.startswith("claimed, never handed to the ESP")
    handed.refresh_from_db()
    assert handed.state == "unknown"


def test_one_batch_records_its_email_sent_activities_as_one_batch(
    clock, killing_esp, django_capture_on_commit_callbacks
):
    _due(12, clock, "signal")
    batches = []

    def count(sender, activities, **kwargs):
        if any(activity.kind == Activity.Kind.EMAIL_SENT for activity in activities):
            batches.append(len(activities))

    activities_recorded.connect(count)
    try:
        with (
            mock.patch("crm.tasks_queue._async_task") as queued,
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert run(clock).emails_sent == 12
    finally:
        activities_recorded.disconnect(count)

    assert batches == [12]  # one signal: scoring and trigger matching run once per batch
    refreshes = [call for call in queued.call_args_list if "segment" in call.args[0]]
    assert len(refreshes) <= 1  # never a task per email


def test_two_emails_to_one_contact_in_one_batch_respect_the_cap(clock, killing_esp, settings):
    settings.SEQUENCES_FREQUENCY_CAP = 1
    first = build_sequence([email_step("hello", on_frequency_cap="skip")], trigger=None)
    second = build_sequence([email_step("hello", on_frequency_cap="skip")], trigger=None)
    contacts = bulk_consenting_contacts(
        4, prefix="cap", topic=first.topic, at=clock.now, time_zone="UTC"
    )
    bulk_due_enrollments(contacts, first, step="hello", at=clock.now)
    bulk_due_enrollments(contacts, second, step="hello", at=clock.now)

    result = run(clock, limit=8)

    assert result.claimed == 8 and result.emails_sent == 4
    assert sorted(HANDED) == sorted(contact.email for contact in contacts)
    skipped = OutboundMessage.objects.filter(state="skipped", reason="frequency_cap")
    assert skipped.count() == 4


def test_one_recipients_refusal_never_touches_the_others(clock, scripted_esp_batch):
    _sequence, contacts, _pks = _due(3, clock, "refuse")
    scripted_esp_batch.SCRIPT[contacts[1].email] = ["refuse"]

    run(clock)

    assert sorted(scripted_esp_batch.CALLS) == sorted(contact.email for contact in contacts)
    states = {row.contact_id: row.state for row in OutboundMessage.objects.all()}
    assert [states[c.pk] for c in contacts] == ["sent", "failed", "sent"]


@pytest.fixture
def scripted_esp_batch(settings):
    from tests.sequences import backends

    settings.EMAIL_BACKEND = "tests.sequences.backends.ScriptedBackend"
    settings.SEQUENCES_QUIET_HOURS = "00:00-00:00"
    backends.SCRIPT.clear()
    backends.CALLS.clear()
    yield backends
    backends.SCRIPT.clear()
    backends.CALLS.clear()
