"""What the engine's parts share: a step's decision (Move), the claim lease, queueing a run.

This module imports none of its siblings, so the orchestrator (running.py) imports the
parts (sending.py, steps.py, enrollments.py) and they import only this: no import circle.
"""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from crm.tasks_queue import enqueue_once_on_commit
from sequences.models import Enrollment

State = Enrollment.State
#: Used when django-q2 has no task timeout (a task is then never killed, so the lease
#: is all that bounds how long a dead worker's rows stay held).
DEFAULT_LEASE = datetime.timedelta(minutes=5)
#: A claim outlives the task that took it by this much: a killed task's rows come free
#: soon after the kill, and never while the task could still be running.
LEASE_MARGIN = datetime.timedelta(seconds=30)


def task_timeout_seconds() -> int | None:
    """django-q2's task timeout (a task is killed after it); None when there is none."""
    timeout = (getattr(settings, "Q_CLUSTER", None) or {}).get("timeout")
    if timeout in (None, 0):
        return None
    if not isinstance(timeout, int | float) or timeout < 0:
        raise ImproperlyConfigured(f"Q_CLUSTER timeout {timeout!r} is not a number of seconds.")
    return int(timeout)


def lease_length() -> datetime.timedelta:
    """How long a claim lasts: longer than any task may run, so one worker owns a row.

    django-q2 kills a task after its timeout, and a claim is taken inside a task; a
    lease of timeout + margin, counted from the claim, therefore ends only after the
    claiming task finished or was killed. Derived, so no Q_TIMEOUT can break it.
    """
    timeout = task_timeout_seconds()
    if timeout is None:
        return DEFAULT_LEASE
    return datetime.timedelta(seconds=timeout) + LEASE_MARGIN


def task_budget_seconds() -> float:
    """How long one task may keep claiming work: half its timeout.

    The other half is the margin for the last enrollment in hand (its ESP calls are
    bounded by ANYMAIL_REQUESTS_TIMEOUT); the rest of the work goes to a follow-up task.
    """
    timeout = task_timeout_seconds()
    return 60.0 if timeout is None else timeout / 2


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


RUN_TASK = "sequences.tasks.run_enrollments_task"
#: Enrollments per queued run task (the run claims them in one batch).
RUN_BATCH = 200


def enqueue_run(pks: list[int]) -> None:
    """Run these enrollments once the current transaction commits, in one task per batch.

    Every call in the same transaction adds to the same task (crm.tasks_queue), so a
    transaction that enrolls through many service calls still queues one run.
    """
    enqueue_once_on_commit(RUN_TASK, pks, chunk_size=RUN_BATCH)
