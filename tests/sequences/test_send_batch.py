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


#: Queries a batch costs whatever its size: claim, gate, ledger, the hand-off, record,
#: moves, and the revenue report counters written beside them (sends, ended enrollments).
PER_BATCH = 48


@pytest.fixture
def one_hand_off(settings):
    """SEQUENCES_HAND_OFF_GROUP=0: the whole batch is handed over in one statement."""
    settings.SEQUENCES_HAND_OFF_GROUP = 0


def test_a_batch_uses_the_same_queries_whatever_its_size(clock, killing_esp, one_hand_off):
    few = _queries_to_send(3, clock, "few")
    many = _queries_to_send(30, clock, "many")

    # The hand-off (sending._hand_off) is one statement for the batch, like the rest.
    assert many == few
    assert few <= PER_BATCH


def test_the_batch_budget_is_enforced(
    clock, killing_esp, one_hand_off, django_assert_max_num_queries
):
    _due(20, clock, "budget")
    with django_assert_max_num_queries(PER_BATCH):
        assert run(clock, limit=20).emails_sent == 20


def test_by_default_each_message_costs_one_statement_its_hand_off(
    clock, killing_esp, django_assert_max_num_queries
):
    few = _queries_to_send(3, clock, "few1")
    many = _queries_to_send(30, clock, "many1")

    # Each message: its hand-off, with the previous message's answer in the same statement.
    assert many - few == 30 - 3
    _due(20, clock, "budget1")
    with django_assert_max_num_queries(PER_BATCH + 19):
        assert run(clock, limit=20).emails_sent == 20


def test_a_worker_killed_mid_batch_handed_over_at_once_never_resends(
    clock, killing_esp, one_hand_off
):
    """SEQUENCES_HAND_OFF_GROUP=0: the whole batch is handed over in one statement."""
    _due(6, clock, "killb")
    KILL_AT.add(3)

    with pytest.raises(SystemExit):
        run(clock)
    rows = OutboundMessage.objects.select_related("contact")
    assert all(row.claimed_at and row.state == "claimed" for row in rows)

    KILL_AT.clear()
    clock.advance(seconds=lease_length().total_seconds() + 1)  # the dead worker's lease ends
    run(clock)

    # The ESP may have any of the batch: none is resent, none is dropped silently. Each is
    # `unknown` (counted and alerted; resolved by its webhook, the ESP's API or staff),
    # and its enrollment waits on the step.
    assert len(HANDED) == len(set(HANDED)) == 3
    assert [row.state for row in rows.all()] == ["unknown"] * 6
    waiting = Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES, current_step="hello")
    assert waiting.count() == 6
    assert not Activity.objects.filter(kind=Activity.Kind.EMAIL_SENT)


def test_a_worker_killed_mid_batch_never_resends_and_loses_nothing(clock, killing_esp):
    """The default (one message per hand-off): each answer is on its row before the next
    hand-off, so only the message in flight is in doubt."""
    _due(6, clock, "kill")
    KILL_AT.add(3)

    with pytest.raises(SystemExit):
        run(clock)
    first = HANDED[:3]
    rows = OutboundMessage.objects.select_related("contact")
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


def test_a_batch_out_of_time_hands_back_what_it_did_not_send(clock, killing_esp):
    from django.core.mail import get_connection

    from sequences.services.sending import emails_deliver

    _due(4, clock, "stop")
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(HANDED) >= 2

    with (
        mock.patch("sequences.services.running.get_connection", return_value=get_connection()),
        mock.patch(
            "sequences.services.running.emails_deliver",
            side_effect=lambda p, c, at, _stop: emails_deliver(p, c, at, stop_after_two),
        ),
    ):
        result = run(clock)

    assert result.emails_sent == 2
    rows = OutboundMessage.objects.order_by("pk")
    # The two not sent were handed back: claimable again, their attempt not counted.
    assert sorted((row.state, row.claimed_at is None, row.attempts) for row in rows) == [
        ("claimed", True, 0),
        ("claimed", True, 0),
        ("sent", False, 1),
        ("sent", False, 1),
    ]
    run(clock)
    assert len(HANDED) == len(set(HANDED)) == 4


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


def test_the_stale_claim_check_writes_nothing_when_nothing_is_stale(clock, killing_esp):
    # Every run calls it: an UPDATE takes SQLite's one write lock even when it changes
    # no row, and several workers queued behind each other's empty UPDATEs.
    _due(2, clock, "fresh")
    run(clock)
    with CaptureQueriesContext(connection) as queries:
        assert ledger_mark_stale_unknown(now=clock.now) == 0
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_the_report_counters_are_written_once_at_the_end_of_the_record(clock, killing_esp):
    """Every worker adds to the same counters (today's sends of a sequence, its ends): the
    record transaction writes them in one upsert as its last statement, so their row
    locks are not held (and other workers' records do not wait) for the whole of it."""
    from sequences.reports.models import ReportCount

    _due(5, clock, "counted")
    table = ReportCount._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert run(clock, limit=5).emails_sent == 5

    statements = [query["sql"] for query in queries]
    counters = [n for n, sql in enumerate(statements) if table in sql and "INSERT" in sql]
    assert len(counters) == 1
    after = statements[counters[0] + 1 :]
    later = [sql for sql in after if not sql.startswith(("SELECT", "RELEASE"))]
    assert all(("COMMIT" in sql or "claimed_by" in sql) for sql in later), later
    sent = ReportCount.objects.filter(metric="sent", span="d", step="")
    assert list(sent.values_list("count", flat=True)) == [5]
