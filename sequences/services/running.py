"""The engine: claim due enrollments, then advance each through its steps.

Claims are leases (claimed_by, claimed_until) taken with select_for_update(skip_locked)
on PostgreSQL or a conditional UPDATE elsewhere, so any number of workers share the
work without coordination. Each step runs in its own short transaction; an email's
ESP call runs between two of them, after its ledger row is committed (sending.py).
"""

import datetime
import os
import socket
import uuid
from dataclasses import dataclass, field

from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from crm.tasks_queue import enqueue_once_on_commit
from sequences.models import Enrollment, Sequence
from sequences.selectors import enrollments_due_q
from sequences.services.enrollments import enrollment_end, enrollment_event_add

State = Enrollment.State
LEASE = datetime.timedelta(minutes=5)
MAX_STEPS_PER_RUN = 50
DEFAULT_BATCH = 200
RUN_TASK = "sequences.tasks.run_enrollments_task"


@dataclass(frozen=True)
class Move:
    """What a step decided: go to a step (at a time), hold on this step, or end.

    `to`: a step key; "" means the sequence is finished; None means the next step.
    """

    action: str = "goto"  # goto | hold | end
    to: str | None = None
    at: datetime.datetime | None = None
    state: str = State.ACTIVE
    waiting_for: dict = field(default_factory=dict)
    event: str = ""
    reason: str = ""

    @classmethod
    def hold(cls, at: datetime.datetime, event: str, reason: str = "") -> "Move":
        return cls(action="hold", at=at, event=event, reason=reason)

    @classmethod
    def end(cls, state: str, reason: str) -> "Move":
        return cls(action="end", state=state, reason=reason, event=state)


@dataclass(frozen=True)
class RunResult:
    claimed: int
    emails_sent: int


def worker_id() -> str:
    """A name unique to this run: host, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def enqueue_run(pks: list[int]) -> None:
    """Run these enrollments once the current transaction commits, in one task per batch.

    Every call in the same transaction adds to the same task (crm.tasks_queue), so a
    transaction that enrolls through many service calls still queues one run.
    """
    enqueue_once_on_commit(RUN_TASK, pks, chunk_size=DEFAULT_BATCH)


def enrollments_run_due(
    *,
    now: datetime.datetime | None = None,
    worker: str | None = None,
    limit: int = DEFAULT_BATCH,
    pks: list[int] | None = None,
) -> RunResult:
    """Claim up to `limit` due enrollments (optionally only `pks`) and advance each."""
    from sequences.services.sending import ledger_mark_stale_unknown

    now = now or timezone.now()
    worker = worker or worker_id()
    ledger_mark_stale_unknown(now=now)
    claimed = enrollments_claim(now=now, worker=worker, limit=limit, pks=pks)
    mail_connection = get_connection()
    sent = sum(
        enrollment_advance(pk=pk, worker=worker, now=now, mail_connection=mail_connection)
        for pk in claimed
    )
    return RunResult(claimed=len(claimed), emails_sent=sent)


def enrollments_claim(
    *, now: datetime.datetime, worker: str, limit: int, pks: list[int] | None = None
) -> list[int]:
    """Lease due enrollments to this worker; each is leased to one worker at a time."""
    due = Enrollment.objects.filter(enrollments_due_q(now))
    if pks is not None:
        due = due.filter(pk__in=pks)
    due = due.order_by("-sequence__priority", "due_at", "pk")
    until = now + LEASE
    with transaction.atomic():
        if db_connection.features.has_select_for_update_skip_locked:
            locked = due.select_for_update(skip_locked=True, of=("self",))
            ids = list(locked.values_list("pk", flat=True)[:limit])
            Enrollment.objects.filter(pk__in=ids).update(claimed_by=worker, claimed_until=until)
            return ids
        # SQLite: a conditional UPDATE is the claim; only rows still unclaimed change.
        candidates = list(due.values_list("pk", flat=True)[:limit])
        Enrollment.objects.filter(enrollments_due_q(now), pk__in=candidates).update(
            claimed_by=worker, claimed_until=until
        )
        mine = Enrollment.objects.filter(pk__in=candidates, claimed_by=worker)
        return list(mine.values_list("pk", flat=True))


def enrollment_advance(*, pk: int, worker: str, now: datetime.datetime, mail_connection) -> int:
    """Run the enrollment's due steps until it waits or ends; return emails sent."""
    sent = 0
    try:
        for _ in range(MAX_STEPS_PER_RUN):
            carry_on, emailed = _step_once(pk, worker, now, mail_connection)
            sent += emailed
            if not carry_on:
                break
        else:
            with transaction.atomic():
                enrollment = Enrollment.objects.get(pk=pk)
                reason = f"more than {MAX_STEPS_PER_RUN} steps at once: does a branch loop?"
                enrollment_end(enrollment=enrollment, state=State.FAILED, reason=reason, now=now)
    finally:
        Enrollment.objects.filter(pk=pk, claimed_by=worker).update(
            claimed_by="", claimed_until=None
        )
    return sent


def _step_once(pk: int, worker: str, now: datetime.datetime, mail_connection) -> tuple[bool, int]:
    from sequences.services.sending import email_deliver, email_prepare, email_record
    from sequences.services.steps import step_run

    with transaction.atomic():
        enrollment = _locked(pk, worker)
        if enrollment is None or not _is_ready(enrollment, now):
            return False, 0
        if enrollment.expires_at and enrollment.expires_at <= now:
            enrollment_end(
                enrollment=enrollment, state=State.EXITED, reason="max_duration", now=now
            )
            return False, 0
        step = enrollment.version.step(enrollment.current_step)
        if step is None:
            return _finish(enrollment, now), 0
        if step["type"] != "send_email":
            return move_apply(enrollment, step, step_run(enrollment, step, now), now), 0
        prepared = email_prepare(enrollment, step, now)
        if isinstance(prepared, Move):
            return move_apply(enrollment, step, prepared, now), 0
    # The ESP call happens outside any transaction, after the ledger row is committed.
    delivery = email_deliver(prepared, mail_connection)
    with transaction.atomic():
        move = email_record(prepared, delivery, now)
        return move_apply(enrollment, step, move, now), int(delivery.status == "sent")


def _locked(pk: int, worker: str) -> Enrollment | None:
    return (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related(
            "sequence__topic", "sequence__owner", "version", "contact__company", "contact__owner"
        )
        .filter(pk=pk, claimed_by=worker)
        .first()
    )


def _is_ready(enrollment: Enrollment, now: datetime.datetime) -> bool:
    return (
        enrollment.is_live
        and enrollment.due_at is not None
        and enrollment.due_at <= now
        and enrollment.sequence.status == Sequence.Status.ACTIVE
    )


def _finish(enrollment: Enrollment, now: datetime.datetime) -> bool:
    enrollment_end(enrollment=enrollment, state=State.COMPLETED, reason="last_step", now=now)
    return False


def move_apply(enrollment: Enrollment, step: dict, move: Move, now: datetime.datetime) -> bool:
    """Record the move on the history and the enrollment; True if the next step is due now."""
    if move.event and move.action != "end":
        enrollment_event_add(
            enrollment=enrollment, kind=move.event, step=step["key"], reason=move.reason, now=now
        )
    if move.action == "end":
        enrollment_end(enrollment=enrollment, state=move.state, reason=move.reason, now=now)
        return False
    live = Enrollment.objects.filter(pk=enrollment.pk, state__in=Enrollment.LIVE_STATES)
    if move.action == "hold":
        live.update(due_at=_capped(move.at, enrollment))
        return False
    target = move.to
    if target is None:
        following = enrollment.version.step_after(step["key"])
        target = following["key"] if following else ""
    if not target and move.state != State.WAITING:
        return _finish(enrollment, now)
    at = move.at or now
    updated = live.update(
        current_step=target,
        due_at=_capped(at, enrollment),
        state=move.state,
        waiting_for=move.waiting_for,
    )
    enrollment.current_step = target
    return bool(updated) and move.state == State.ACTIVE and at <= now


def _capped(at: datetime.datetime, enrollment: Enrollment) -> datetime.datetime:
    """Never wait past the maximum duration: the contact leaves on time."""
    return min(at, enrollment.expires_at) if enrollment.expires_at else at
