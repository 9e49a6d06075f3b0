"""Reads that are reused or not obvious: sends counted by the cap, due enrollments."""

import datetime

from django.db.models import Q, QuerySet

from sequences.models import Enrollment, OutboundMessage, Sequence

#: Ledger states that count as "an email went (or may have gone) out".
COUNTED_STATES = (
    OutboundMessage.State.CLAIMED,
    OutboundMessage.State.RETRY,
    OutboundMessage.State.SENT,
    OutboundMessage.State.UNKNOWN,
)


def marketing_sends_since(*, contact, since: datetime.datetime) -> list[datetime.datetime]:
    """When the contact's counted marketing emails since `since` were claimed, oldest first."""
    return list(
        OutboundMessage.objects.filter(
            contact=contact, is_marketing=True, state__in=COUNTED_STATES, created_at__gte=since
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def enrollments_due_q(now: datetime.datetime) -> Q:
    """Live enrollments of active sequences whose next step is due and nobody holds."""
    return Q(
        state__in=Enrollment.LIVE_STATES, due_at__lte=now, sequence__status=Sequence.Status.ACTIVE
    ) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def enrollment_list_for_contact(*, contact) -> QuerySet:
    """The contact's enrollments, newest first, with their sequences."""
    return (
        Enrollment.objects.filter(contact=contact)
        .select_related("sequence")
        .order_by("-enrolled_at", "-pk")
    )
