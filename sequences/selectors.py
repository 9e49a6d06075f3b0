"""Reads that are reused or not obvious: sends counted by the cap, due enrollments, results."""

import datetime
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from sequences.models import Enrollment, EspEvent, OutboundMessage, Sequence

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


# --- Dashboards (sequences/admin_dashboard.py) ---------------------------------------------


@dataclass(frozen=True)
class SequenceResults:
    """An active sequence's results over a recent period."""

    sequence: Sequence
    enrolled: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    converted: int = 0
    unsubscribed: int = 0
    complaints: int = 0

    @property
    def click_rate(self) -> float | None:
        """Emails clicked per email delivered (the ledger's sends without delivery events)."""
        base = self.delivered or self.sent
        return self.clicked / base if base else None


def sequence_results_recent(
    *, days: int = 7, now: datetime.datetime | None = None
) -> list[SequenceResults]:
    """Each active sequence's enrollments, sends, ESP outcomes and conversions (4 queries).

    Bounded by the period: enrollments by their start or end, the ledger through its
    (state, claimed_at) index, ESP events through their (kind, occurred_at) index. Opens
    are left out: machine opens (Apple Mail) inflate them; the revenue view separates them.
    """
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    sequences = list(Sequence.objects.filter(status=Sequence.Status.ACTIVE).order_by("name"))
    counts: dict[int, dict[str, int]] = {sequence.pk: {} for sequence in sequences}
    enrollments = (
        Enrollment.objects.filter(sequence__in=sequences)
        .filter(Q(enrolled_at__gte=since) | Q(ended_at__gte=since))
        .values("sequence")
        .annotate(
            enrolled=Count("pk", filter=Q(enrolled_at__gte=since)),
            converted=Count("pk", filter=Q(state=Enrollment.State.CONVERTED, ended_at__gte=since)),
        )
    )
    for row in enrollments:
        counts[row["sequence"]].update(enrolled=row["enrolled"], converted=row["converted"])
    sent = (
        OutboundMessage.objects.filter(
            state=OutboundMessage.State.SENT,
            claimed_at__gte=since,
            enrollment__sequence__in=sequences,
        )
        .values("enrollment__sequence")
        .annotate(sent=Count("pk"))
    )
    for row in sent:
        counts[row["enrollment__sequence"]]["sent"] = row["sent"]
    Kind = EspEvent.Kind
    names = {
        Kind.DELIVERED: "delivered",
        Kind.CLICKED: "clicked",
        Kind.UNSUBSCRIBED: "unsubscribed",
        Kind.COMPLAINT: "complaints",
    }
    events = (
        EspEvent.objects.filter(
            kind__in=list(names),
            occurred_at__gte=since,
            message__enrollment__sequence__in=sequences,
        )
        .values("message__enrollment__sequence", "kind")
        # Messages, not events: two clicks on one email count once.
        .annotate(messages=Count("message", distinct=True))
    )
    for row in events:
        counts[row["message__enrollment__sequence"]][names[row["kind"]]] = row["messages"]
    return [SequenceResults(sequence=sequence, **counts[sequence.pk]) for sequence in sequences]
