"""django-q2 entry points. Each is idempotent: claims and the send ledger stop double work."""

from sequences.services import (
    date_triggers_enroll,
    enrollments_run_due,
    variant_winners_decide,
)

SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 20


def run_enrollments_task(pks: list[int]) -> str:
    """Run these enrollments' due steps (enqueued on commit by the receiver)."""
    result = enrollments_run_due(pks=list(pks), limit=len(pks))
    return f"claimed {result.claimed}, sent {result.emails_sent}"


def run_due_enrollments_task() -> str:
    """The every-minute sweep: run every due enrollment, in batches, until none is left."""
    claimed = sent = 0
    for _ in range(SWEEP_MAX_BATCHES):
        result = enrollments_run_due(limit=SWEEP_BATCH)
        claimed, sent = claimed + result.claimed, sent + result.emails_sent
        if result.claimed < SWEEP_BATCH:
            break
    return f"claimed {claimed}, sent {sent}"


def enroll_date_triggers_task() -> str:
    """The daily run of date-property triggers (renewal dates, birthdays)."""
    return f"enrolled {date_triggers_enroll()}"


def decide_variant_winners_task() -> str:
    """The hourly check of A/B steps: store each winner once it is significant."""
    return f"decided {variant_winners_decide()}"
