"""django-q2 entry points: fetch, guard, call one service, return a short outcome."""

import datetime
from collections import Counter

from django.db.models import Q
from django.utils import timezone

from crm.models import Contact
from scoring.services import (
    fit_scores_refresh,
    handoff_notify_owner,
    handoff_sla_check,
    score_decay_apply,
)

#: The fit refresh looks back a little further than it runs, so no change slips between runs.
FIT_REFRESH_EVERY_MINUTES = 15
FIT_REFRESH_LOOKBACK_MINUTES = 20
FIT_REFRESH_CHUNK = 500


def notify_handoff_owners_task(handoff_pks: list[int]) -> str:
    """Email the owners of new handoffs, one task per transaction (each email once)."""
    outcomes = Counter(handoff_notify_owner(handoff_id=int(pk)) for pk in handoff_pks)
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))


def notify_handoff_owner_task(handoff_pk: int) -> str:
    """Email the owner of one handoff: kept for tasks queued before the batched task."""
    return handoff_notify_owner(handoff_id=int(handoff_pk))


def apply_score_decay_task() -> str:
    """Halve and expire old engagement points for all contacts."""
    result = score_decay_apply()
    return f"{result.rows} decay rows, {result.contacts} contacts, {result.rearmed} re-armed"


def check_handoff_sla_task() -> str:
    """Escalate open handoffs nobody contacted within their SLA."""
    return f"{handoff_sla_check()} handoffs escalated"


def refresh_fit_scores_task(lookback_minutes: int = FIT_REFRESH_LOOKBACK_MINUTES) -> str:
    """Re-check fit rules for contacts whose profile or company changed recently."""
    since = timezone.now() - datetime.timedelta(minutes=int(lookback_minutes))
    contacts = Contact.objects.filter(Q(updated_at__gte=since) | Q(company__updated_at__gte=since))
    return _refresh(contacts)


def refresh_all_fit_scores_task() -> str:
    """Re-check fit rules for every contact (after fit rules changed)."""
    return _refresh(Contact.objects.all())


def _refresh(contacts) -> str:
    ids = contacts.order_by("pk").values_list("pk", flat=True)
    changed = 0
    chunk: list[int] = []
    for pk in ids.iterator(chunk_size=FIT_REFRESH_CHUNK):
        chunk.append(pk)
        if len(chunk) == FIT_REFRESH_CHUNK:
            changed += fit_scores_refresh(contact_ids=chunk).contacts_changed
            chunk = []
    if chunk:
        changed += fit_scores_refresh(contact_ids=chunk).contacts_changed
    return f"{changed} contacts' fit changed"
