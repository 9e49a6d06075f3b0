"""The engine: claim a batch of due enrollments, then advance them together.

Claims are leases (claimed_by, claimed_until) taken with select_for_update(skip_locked)
on PostgreSQL or a conditional UPDATE elsewhere, so any number of workers share the
work without coordination. A batch advances in rounds (enrollments_advance): one short
transaction locks its contacts and enrollments and decides every step due; the emails'
ESP calls run after it, once their ledger rows are committed, and one more transaction
records their results (sending.py). The queries per round do not grow with the batch.
"""

import datetime
import json
import os
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from crm.models import Contact
from crm.set_inserts import rows_insert
from sequences.models import Enrollment, EnrollmentEvent, Sequence
from sequences.reports.counts import report_counts_deferred
from sequences.reports.facts import report_counts_add_ended
from sequences.selectors import enrollments_due_q
from sequences.services.enrollments import (
    enrollment_end,
    enrollment_event_add,
    enrollments_attach_sequences,
)
from sequences.services.ledger import ledger_mark_stale_unknown
from sequences.services.moves import Move, enqueue_run, lease_length, task_budget_seconds
from sequences.services.outcomes import SENT
from sequences.services.sending import emails_deliver, emails_prepare, emails_record
from sequences.services.steps import step_run

__all__ = ["Move", "RunResult", "enqueue_run", "enrollments_claim", "enrollments_run_due"]

State = Enrollment.State
MAX_STEPS_PER_RUN = 50
DEFAULT_BATCH = 200
#: Hand-offs to the ESP go on this share of the task budget past the claiming deadline
#: (a quarter of the timeout), leaving the last quarter for the last call and the record.
HAND_OFF_GRACE = 0.5


@dataclass(frozen=True)
class RunResult:
    claimed: int
    emails_sent: int
    #: Claimed but handed back unrun because the time budget ran out: run them later.
    released: tuple[int, ...] = ()


def worker_id() -> str:
    """A name unique to this run: host, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def enrollments_run_due(
    *,
    now: datetime.datetime | None = None,
    worker: str | None = None,
    limit: int = DEFAULT_BATCH,
    pks: list[int] | None = None,
    deadline: float | None = None,
) -> RunResult:
    """Claim up to `limit` due enrollments (optionally only `pks`) and advance them as a batch.

    `deadline` (time.monotonic()) ends the run early: enrollments not started by then
    are released at once, so a task never holds more than it can finish before django-q2
    kills it; hand-offs to the ESP stop a quarter of a timeout later (HAND_OFF_GRACE), and
    what was claimed but not handed over is claimed again by the next run. Without
    `now`, each round of the batch runs at the real time it starts.
    """
    worker = worker or worker_id()
    if deadline is None:
        deadline = time.monotonic() + task_budget_seconds()
    ledger_mark_stale_unknown(now=now or timezone.now())
    claimed = enrollments_claim(now=now or timezone.now(), worker=worker, limit=limit, pks=pks)
    started: list[int] = []
    released: tuple[int, ...] = ()
    for position, pk in enumerate(claimed):
        if time.monotonic() >= deadline:
            released = tuple(claimed[position:])
            enrollments_release(pks=list(released), worker=worker)
            break
        started.append(pk)
    sent = 0
    if started:
        hand_off_until = deadline + task_budget_seconds() * HAND_OFF_GRACE
        try:
            sent = enrollments_advance(
                pks=started,
                worker=worker,
                now=now,
                mail_connection=get_connection(),
                should_stop=lambda: time.monotonic() >= hand_off_until,
            )
        finally:
            enrollments_release(pks=started, worker=worker)
    return RunResult(claimed=len(claimed), emails_sent=sent, released=released)


def enrollments_claim(
    *, now: datetime.datetime, worker: str, limit: int, pks: list[int] | None = None
) -> list[int]:
    """Lease due enrollments to this worker; each is leased to one worker at a time.

    The lease runs from the real clock at the moment of the claim (not from `now`, which
    may be a batch's earlier time), and is longer than the task timeout (moves.py).
    """
    due = Enrollment.objects.filter(enrollments_due_q(now))
    if pks is not None:
        due = due.filter(pk__in=pks)
    due = due.order_by("-sequence__priority", "due_at", "pk")
    with transaction.atomic():
        if db_connection.features.has_select_for_update_skip_locked:
            locked = due.select_for_update(skip_locked=True, of=("self",))
            ids = list(locked.values_list("pk", flat=True)[:limit])
            until = timezone.now() + lease_length()
            Enrollment.objects.filter(pk__in=ids).update(claimed_by=worker, claimed_until=until)
            return ids
        # SQLite: a conditional UPDATE is the claim; only rows still unclaimed change.
        candidates = list(due.values_list("pk", flat=True)[:limit])
        until = timezone.now() + lease_length()
        Enrollment.objects.filter(enrollments_due_q(now), pk__in=candidates).update(
            claimed_by=worker, claimed_until=until
        )
        mine = set(
            Enrollment.objects.filter(pk__in=candidates, claimed_by=worker).values_list(
                "pk", flat=True
            )
        )
        return [pk for pk in candidates if pk in mine]  # in priority order, as on PostgreSQL


def enrollments_release(*, pks: list[int], worker: str) -> int:
    """Hand back enrollments this worker claimed but will not run: others may take them now."""
    return Enrollment.objects.filter(pk__in=pks, claimed_by=worker).update(
        claimed_by="", claimed_until=None
    )


def enrollments_advance(
    *, pks: list[int], worker: str, now, mail_connection, should_stop=lambda: False
) -> int:
    """Run the claimed enrollments' due steps, in rounds, until each waits or ends.

    A round is one transaction that locks the batch's contacts and enrollments, then
    either runs the non-email steps due (when any are), or decides and claims every
    email step due at once (sending.emails_prepare). The emails go out after the commit
    through one connection (emails_deliver), and their results, activities and moves
    are recorded in one more transaction. Email steps wait for a round without
    non-email steps, so they are decided on contacts as those steps left them.
    Enrollments whose next step is due at once go on to the next round.
    """
    steps_taken = dict.fromkeys(pks, 0)
    active, sent = list(pks), 0
    while active:
        at = now or timezone.now()
        carry: list[int] = []
        with transaction.atomic():
            locked = _lock_batch(active, worker)
            emails, others = [], []
            for pk in active:
                due = _due_step(locked.get(pk), at, steps_taken[pk])
                if due is not None:
                    (emails if due[1]["type"] == "send_email" else others).append(due)
            if others:
                for enrollment, step in others:
                    steps_taken[enrollment.pk] += 1
                    move = step_run(enrollment, step, at)
                    if move_apply(enrollment, step, move, at):
                        carry.append(enrollment.pk)
                carry.extend(enrollment.pk for enrollment, _step in emails)
                emails = []
            prepared = []
            outcomes = emails_prepare(emails, at)
            for (enrollment, step), outcome in zip(emails, outcomes, strict=True):
                steps_taken[enrollment.pk] += 1
                if isinstance(outcome, Move):
                    if move_apply(enrollment, step, outcome, at):
                        carry.append(enrollment.pk)
                else:
                    prepared.append(outcome)
        if prepared:
            # The ESP calls happen outside any transaction, after the claims are committed.
            results = emails_deliver(prepared, mail_connection, at, should_stop)
            handed = [(p, r) for p, r in zip(prepared, results, strict=True) if r is not None]
            if handed:
                # The report counters every worker adds to are written last (one upsert),
                # so their row locks are held for one statement, not the transaction.
                with transaction.atomic(), report_counts_deferred():
                    moves = emails_record(handed, at)
                    items = [
                        (p.enrollment, p.step, move)
                        for (p, _result), move in zip(handed, moves, strict=True)
                    ]
                    carry.extend(moves_apply(items, at))
                sent += sum(result.delivery.status == SENT for _p, result in handed)
        active = list(dict.fromkeys(carry))
    return sent


def _due_step(enrollment: Enrollment | None, now: datetime.datetime, steps_taken: int):
    """(enrollment, step) when a step is due now; ends the enrollment when it must end."""
    if enrollment is None or not _is_ready(enrollment, now):
        return None
    if steps_taken >= MAX_STEPS_PER_RUN:
        reason = f"more than {MAX_STEPS_PER_RUN} steps at once: does a branch loop?"
        enrollment_end(enrollment=enrollment, state=State.FAILED, reason=reason, now=now)
        return None
    if enrollment.expires_at and enrollment.expires_at <= now:
        enrollment_end(enrollment=enrollment, state=State.EXITED, reason="max_duration", now=now)
        return None
    step = enrollment.version.step(enrollment.current_step)
    if step is None:
        _finish(enrollment, now)
        return None
    return enrollment, step


def _lock_batch(pks: list[int], worker: str) -> dict[int, Enrollment]:
    """Lock the batch's contacts, then its enrollments: the per-contact serialisation point.

    Two sequences due for one contact at the same instant would otherwise both count the
    contact's recent emails before either claim commits, and both pass a frequency cap of
    one. Holding the contacts' row locks until the claims commit makes the second batch
    wait and then count the first. One `SELECT … FOR UPDATE ORDER BY pk` for all the
    contacts, so two batches lock in the same order and never deadlock; contacts before
    enrollments, as the ingestion path takes them. SQLite needs none: its IMMEDIATE
    transactions already serialise writers.
    """
    if db_connection.features.has_select_for_update:
        mine = Enrollment.objects.filter(pk__in=pks, claimed_by=worker).values("contact_id")
        contacts = Contact.objects.select_for_update(of=("self",)).filter(pk__in=mine)
        list(contacts.order_by("pk").values_list("pk", flat=True))
    enrollments = list(
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("contact__company", "contact__owner")
        .prefetch_related("contact__tags")
        .filter(pk__in=pks, claimed_by=worker)
        .order_by("pk")
    )
    enrollments_attach_sequences(enrollments, related=("topic", "owner"), versions=True)
    return {enrollment.pk: enrollment for enrollment in enrollments}


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


def moves_apply(items: list[tuple[Enrollment, dict, Move]], now: datetime.datetime) -> list[int]:
    """move_apply for a batch: one query per distinct outcome, not per enrollment.

    Same effects as move_apply on each: the move's history line, then the end, the hold
    or the step change, each only while the enrollment is live (their rows are locked
    first, so what is live cannot change under us). Returns the pks whose next step is
    due now.
    """
    if not items:
        return []
    live = set(
        Enrollment.objects.select_for_update(of=("self",))
        .filter(pk__in=[enrollment.pk for enrollment, _step, _move in items])
        .filter(state__in=Enrollment.LIVE_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    history: list[EnrollmentEvent] = []
    ends: dict[tuple[str, str], list[Enrollment]] = defaultdict(list)
    updates: dict[str, tuple[dict, list[int]]] = {}
    carry: list[int] = []
    for enrollment, step, move in items:
        if move.event and move.action != "end":
            history.append(_event(enrollment, move.event, step["key"], move.reason, now))
        if move.action == "end":
            ends[(move.state, move.reason)].append(enrollment)
            continue
        if move.action == "hold":
            _group(updates, {"due_at": _capped(move.at, enrollment)}, enrollment, live)
            continue
        target = move.to
        if target is None:
            following = enrollment.version.step_after(step["key"])
            target = following["key"] if following else ""
        if not target and move.state != State.WAITING:
            ends[(State.COMPLETED, "last_step")].append(enrollment)
            continue
        at = move.at or now
        fields = {
            "current_step": target,
            "due_at": _capped(at, enrollment),
            "state": move.state,
            "waiting_for": move.waiting_for,
        }
        _group(updates, fields, enrollment, live)
        if enrollment.pk in live:
            enrollment.current_step = target
            if move.state == State.ACTIVE and at <= now:
                carry.append(enrollment.pk)
    rows_insert(EnrollmentEvent, history)
    for fields, pks in updates.values():
        Enrollment.objects.filter(pk__in=pks, state__in=Enrollment.LIVE_STATES).update(**fields)
    ended: list[EnrollmentEvent] = []
    counted: list[tuple[Enrollment, str, str]] = []
    for (state, reason), enrollments in ends.items():
        mine = [enrollment for enrollment in enrollments if enrollment.pk in live]
        Enrollment.objects.filter(
            pk__in=[enrollment.pk for enrollment in mine], state__in=Enrollment.LIVE_STATES
        ).update(
            state=state,
            reason=reason[:200],
            ended_at=now,
            due_at=None,
            waiting_for={},
            needs_review=state == State.COMPLETED,
        )
        for enrollment in mine:
            enrollment.state, enrollment.reason, enrollment.ended_at = state, reason, now
            ended.append(_event(enrollment, state, "", reason, now))
            counted.append((enrollment, state, reason))
    rows_insert(EnrollmentEvent, ended)
    report_counts_add_ended(rows=counted, now=now)
    return carry


def _group(updates: dict, fields: dict, enrollment: Enrollment, live: set[int]) -> None:
    """Collect enrollments that get the same field values into one UPDATE."""
    if enrollment.pk not in live:
        return
    key = json.dumps(fields, sort_keys=True, default=str)
    updates.setdefault(key, (fields, []))[1].append(enrollment.pk)


def _event(enrollment, kind: str, step: str, reason: str, now) -> EnrollmentEvent:
    return EnrollmentEvent(
        enrollment=enrollment, kind=kind, step=step, reason=reason[:300], occurred_at=now
    )
