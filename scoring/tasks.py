"""django-q2 entry points: fetch, guard, call one service, return a short outcome."""

import datetime
from collections import Counter

from django.utils import timezone
from django_q.tasks import async_task

from crm.tasks_queue import contact_id_ranges
from scoring.intent import rising_intent_refresh
from scoring.services import (
    fit_scores_refresh_changed,
    fit_scores_refresh_range,
    handoff_notify_owner,
    handoff_sla_check,
    handoffs_rearm,
    score_decay_apply_range,
    score_decay_ranges,
)

#: The fit refresh looks back a little further than it runs, so no change slips between runs.
FIT_REFRESH_EVERY_MINUTES = 15
FIT_REFRESH_LOOKBACK_MINUTES = 20
#: Contacts per task when every contact is re-checked (a rule changed).
FIT_RANGE_CONTACTS = 20_000
FIT_RANGE_TASK = "scoring.tasks.refresh_fit_scores_range_task"
DECAY_RANGE_TASK = "scoring.tasks.apply_score_decay_range_task"


def notify_handoff_owners_task(handoff_pks: list[int]) -> str:
    """Email the owners of new handoffs, one task per transaction (each email once)."""
    outcomes = Counter(handoff_notify_owner(handoff_id=int(pk)) for pk in handoff_pks)
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))


def notify_handoff_owner_task(handoff_pk: int) -> str:
    """Email the owner of one handoff: kept for tasks queued before the batched task."""
    return handoff_notify_owner(handoff_id=int(handoff_pk))


def apply_score_decay_task() -> str:
    """Fan score decay out: one task per range of contact ids, so each ends well in time.

    Re-arms handoffs first (one query), the safety net for scores lowered elsewhere.
    """
    rearmed = handoffs_rearm()
    ranges = score_decay_ranges()
    for first, last in ranges:
        async_task(DECAY_RANGE_TASK, first, last)
    return f"queued {len(ranges)} decay ranges, {rearmed} re-armed"


def apply_score_decay_range_task(first_contact_id: int, last_contact_id: int) -> str:
    """Halve and expire old engagement points of contacts with ids in [first, last]."""
    result = score_decay_apply_range(
        first_contact_id=int(first_contact_id), last_contact_id=int(last_contact_id)
    )
    return f"{result.rows} decay rows, {result.contacts} contacts, {result.rearmed} re-armed"


def check_handoff_sla_task() -> str:
    """Escalate open handoffs nobody contacted within their SLA."""
    return f"{handoff_sla_check()} handoffs escalated"


def refresh_fit_scores_task(lookback_minutes: int = FIT_REFRESH_LOOKBACK_MINUTES) -> str:
    """Re-check fit rules for contacts whose profile or company changed recently."""
    since = timezone.now() - datetime.timedelta(minutes=int(lookback_minutes))
    result = fit_scores_refresh_changed(since=since)
    return f"{result.contacts_checked} checked, {result.contacts_changed} contacts' fit changed"


def refresh_all_fit_scores_task() -> str:
    """Re-check fit rules for every contact (after fit rules changed): one task per range."""
    ranges = contact_id_ranges(chunk_size=FIT_RANGE_CONTACTS)
    for first, last in ranges:
        async_task(FIT_RANGE_TASK, first, last)
    return f"queued {len(ranges)} fit refresh ranges"


def refresh_fit_scores_range_task(first_contact_id: int, last_contact_id: int) -> str:
    """Re-check fit rules for contacts with ids in [first, last]."""
    result = fit_scores_refresh_range(
        first_contact_id=int(first_contact_id), last_contact_id=int(last_contact_id)
    )
    return f"{result.contacts_checked} checked, {result.contacts_changed} contacts' fit changed"


def refresh_rising_intent_task() -> str:
    """Flag contacts whose engagement rose sharply this week; clear flags that no longer hold."""
    result = rising_intent_refresh()
    return f"{result.flagged} rising ({result.new} new), {result.cleared} cleared"
