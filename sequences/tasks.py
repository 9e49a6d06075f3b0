"""django-q2 entry points. Each is idempotent: claims and the send ledger stop double work.

django-q2 may run a task twice (docs/operations.md, "Background tasks"): a second run
finds the enrollments claimed or already advanced, the ledger rows already written,
and the day's alert already recorded, so it does nothing more.

The run tasks work to a time budget (half the task timeout): they claim small batches
and stop claiming when the budget is spent, hand back what they claimed but did not
start, and leave the rest to a follow-up task, so a timeout kill strands little work.
"""

import time

from django_q.tasks import async_task

from sequences.esp.breaker import unknown_alert_send
from sequences.esp.reconcile import unknown_messages_reconcile
from sequences.models import UnknownMessagesAlert
from sequences.services import (
    date_triggers_enroll,
    enrollments_run_due,
    unknown_messages_check,
    variant_winners_decide,
)
from sequences.services.existing_members import existing_members_enroll
from sequences.services.moves import task_budget_seconds

#: Enrollments the sweep claims at a time: small, so a kill strands few, the budget is
#: checked often, and several workers sweeping together each get a share of what is
#: due (with 100 a round of 100 due emails went to one worker: the send bench's 2 and
#: 4 workers were no faster than 1).
SWEEP_BATCH = 50
#: Enrollments a run task advances as one batch. A batch costs a fixed ~48 queries
#: whatever its size (tests/sequences/test_send_batch.py): the ids one transaction
#: queued (up to moves.RUN_BATCH) go in two batches of 100 rather than four of 50.
RUN_CHUNK = 100


def run_enrollments_task(pks: list[int]) -> str:
    """Run these enrollments' due steps (enqueued on commit by the receiver)."""
    deadline = time.monotonic() + task_budget_seconds()
    pending = sorted(set(pks))
    claimed = sent = 0
    while pending:
        chunk, pending = pending[:RUN_CHUNK], pending[RUN_CHUNK:]
        result = enrollments_run_due(pks=chunk, limit=len(chunk), deadline=deadline)
        claimed, sent = claimed + result.claimed, sent + result.emails_sent
        if result.released or (pending and time.monotonic() >= deadline):
            rest = [*result.released, *pending]
            async_task("sequences.tasks.run_enrollments_task", rest)
            return f"claimed {claimed}, sent {sent}; {len(rest)} handed to a follow-up task"
    return f"claimed {claimed}, sent {sent}"


def enroll_existing_members_task(trigger_pk: int) -> str:
    """Enroll a segment trigger's current members after the sequence's first activation."""
    return f"enrolled {existing_members_enroll(trigger_pk=trigger_pk)}"


def run_due_enrollments_task() -> str:
    """The every-minute sweep: run due enrollments in small batches within the time budget."""
    claimed, sent, more = due_enrollments_sweep()
    if more:
        # More is due than fits in one task: a fresh task continues now, not in a minute.
        async_task("sequences.tasks.run_due_enrollments_task")
        return f"claimed {claimed}, sent {sent}; a follow-up sweep continues"
    return f"claimed {claimed}, sent {sent}"


def due_enrollments_sweep() -> tuple[int, int, bool]:
    """One sweep's work: (claimed, sent, whether more is due than its time budget allowed)."""
    deadline = time.monotonic() + task_budget_seconds()
    claimed = sent = 0
    while True:
        result = enrollments_run_due(limit=SWEEP_BATCH, deadline=deadline)
        claimed, sent = claimed + result.claimed, sent + result.emails_sent
        if result.claimed < SWEEP_BATCH and not result.released:
            return claimed, sent, False
        if result.released or time.monotonic() >= deadline:
            return claimed, sent, True


def enroll_date_triggers_task() -> str:
    """The daily run of date-property triggers (renewal dates, birthdays)."""
    return f"enrolled {date_triggers_enroll()}"


def decide_variant_winners_task() -> str:
    """The hourly check of A/B steps: store each winner once it is significant."""
    return f"decided {variant_winners_decide()}"


def reconcile_unknown_messages_task() -> str:
    """Resolve `unknown` emails through the ESP's API, then alert if too many remain."""
    resolved = unknown_messages_reconcile()
    alert = unknown_messages_check()
    if alert is not None:
        async_task("sequences.tasks.alert_unknown_messages_task", alert.pk)
    return f"resolved {resolved}" + (f"; alerted ({alert.count} unknown)" if alert else "")


def alert_unknown_messages_task(alert_pk: int) -> str:
    """Email the owners of active marketing sequences about the day's unknown emails."""
    alert = UnknownMessagesAlert.objects.get(pk=alert_pk)
    return unknown_alert_send(alert=alert)
