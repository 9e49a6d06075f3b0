"""django-q2 entry points. Each is idempotent: claims and the send ledger stop double work."""

from sequences.services import enrollments_run_due

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
