"""Reads that are reused or not obvious: current consent, suppressions, timelines, dashboards.

Current consent is read from the CurrentConsent projection, never by sorting the
ledger: a database trigger writes it in the same statement as each ledger append, so
a read inside the appending transaction already sees the new state (no cache).
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from crm.emails import email_hash
from crm.models import (
    Activity,
    ApiKey,
    ConsentEntry,
    ConsentTopic,
    Contact,
    ContactPreference,
    CurrentConsent,
    LifecycleStage,
    Segment,
    SegmentCountSnapshot,
    Suppression,
)


def consent_current(*, contact: Contact, topic: ConsentTopic) -> ConsentEntry | None:
    """Return the contact's latest ledger entry for the topic, which is their current consent."""
    # Through the projection: one unique-index lookup, never "the latest of many".
    return ConsentEntry.objects.filter(
        current_for__contact=contact, current_for__topic=topic
    ).first()


def consent_is_granted(*, contact: Contact, topic: ConsentTopic | int) -> bool | None:
    """Return whether the contact's current consent for the topic is a grant (None: never asked)."""
    return (
        CurrentConsent.objects.filter(contact=contact, topic=topic)
        .values_list("is_granted", flat=True)
        .first()
    )


def consent_states(*, contact_ids: Iterable[int], topic: ConsentTopic | int) -> dict[int, bool]:
    """Map each of these contacts to their current consent for the topic (missing: never asked).

    One query for any number of contacts: the batched send path gates a whole batch with it.
    """
    return dict(
        CurrentConsent.objects.filter(contact_id__in=list(contact_ids), topic=topic).values_list(
            "contact_id", "is_granted"
        )
    )


def consent_by_topic(*, contact: Contact) -> list[tuple[ConsentTopic, ConsentEntry | None]]:
    """Return every topic with the contact's current entry for it (None: never asked)."""
    current = CurrentConsent.objects.filter(contact=contact).select_related("entry__consent_text")
    latest = {row.topic_id: row.entry for row in current}
    return [(topic, latest.get(topic.pk)) for topic in ConsentTopic.objects.order_by("name")]


def consent_granted_exists(topic: ConsentTopic | int) -> Exists:
    """An expression over Contact rows: is their current consent for `topic` a grant?

    Never NULL, so negating it means "withdrawn or never asked"; PostgreSQL turns it
    into a semi-join (or an anti-join under NOT) over the projection's index.
    """
    return Exists(
        CurrentConsent.objects.filter(contact=OuterRef("pk"), topic=topic, is_granted=True)
    )


def consent_latest_granted(topic: ConsentTopic | int) -> Subquery:
    """An expression over Contact rows: is the current entry for `topic` a grant (or NULL)?"""
    return Subquery(
        CurrentConsent.objects.filter(contact=OuterRef("pk"), topic=topic).values("is_granted")[:1]
    )


def contacts_with_consent(topic: ConsentTopic | int, queryset: QuerySet | None = None) -> QuerySet:
    """Contacts whose current consent for the topic is granted."""
    queryset = Contact.objects.all() if queryset is None else queryset
    return queryset.filter(consent_granted_exists(topic))


def suppression_active_q() -> Q:
    """Suppressions in force now: permanent ones and temporary ones not yet ended."""
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def suppressions_active_for(*, email: str) -> QuerySet:
    """Active suppressions for this address (by keyed hash, so erased addresses match)."""
    return Suppression.objects.filter(suppression_active_q(), email_hash=email_hash(email))


def contact_is_suppressed_expression() -> Exists:
    """An expression over Contact rows: is their address actively suppressed?"""
    return Exists(Suppression.objects.filter(suppression_active_q(), email=OuterRef("email")))


#: An objection to direct marketing (unsubscribe from all, or a spam complaint) is absolute:
#: no marketing sends, no marketing segments, no marketing-purpose scoring (ICO; §8 item 13).
OBJECTION_REASONS = (Suppression.Reason.UNSUBSCRIBED, Suppression.Reason.COMPLAINT)


def contact_ids_objected(contact_ids: Iterable[int]) -> set[int]:
    """The contacts among these who objected to direct marketing (one query)."""
    objection = Suppression.objects.filter(
        suppression_active_q(), reason__in=OBJECTION_REASONS, email=OuterRef("email")
    )
    return set(
        Contact.objects.filter(pk__in=list(contact_ids))
        .filter(Exists(objection))
        .values_list("pk", flat=True)
    )


def contact_timeline(*, contact: Contact) -> QuerySet:
    """The contact's activities, newest first."""
    return Activity.objects.filter(contact=contact).order_by("-occurred_at", "-pk")


def contact_paused_until(*, contact: Contact) -> datetime.datetime | None:
    """Return when the contact's own marketing pause ends, or None when not paused now."""
    return (
        ContactPreference.objects.filter(contact=contact, paused_until__gt=timezone.now())
        .values_list("paused_until", flat=True)
        .first()
    )


def activity_sources_from_browser_keys(sources: Iterable[str]) -> set[str]:
    """Which of these activity sources are browser keys: public input, never email content.

    One query for a whole batch. A browser key's source is `api:<prefix>` like a server
    key's (ApiKey.source_label), so the key's kind decides.
    """
    prefixes = {source.removeprefix("api:") for source in sources if source.startswith("api:")}
    if not prefixes:
        return set()
    keys = ApiKey.objects.filter(kind=ApiKey.Kind.BROWSER, prefix__in=prefixes)
    return {key.source_label for key in keys.only("prefix")}


# --- Dashboards (crm/admin/dashboard.py): bounded reads, never the activity table ---------


@dataclass(frozen=True)
class SegmentGrowth:
    segment: Segment
    #: The member count after the last evaluation of each day, oldest first.
    points: list[tuple[datetime.date, int]]
    #: Members now minus members at the start of the period (None: no count that old).
    change: int | None


def segment_growth(
    *, days: int, limit: int = 5, now: datetime.datetime | None = None
) -> list[SegmentGrowth]:
    """The biggest segments' daily member counts over the period, from the count history.

    Two queries whatever the data: the segments, then their snapshots in the period (the
    segment, -counted_at index). The count before the period is its last evaluation's.
    """
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    segments = list(Segment.objects.order_by("-member_count", "name")[:limit])
    snapshots = (
        SegmentCountSnapshot.objects.filter(segment__in=segments, counted_at__gte=since)
        .order_by("counted_at", "pk")
        .values_list("segment_id", "counted_at", "member_count", "entered", "exited")
    )
    per_day: dict[int, dict[datetime.date, int]] = {segment.pk: {} for segment in segments}
    first_before: dict[int, int] = {}
    for segment_id, counted_at, member_count, entered, exited in snapshots:
        day = timezone.localdate(counted_at)
        per_day[segment_id][day] = member_count  # later snapshots of the day win
        first_before.setdefault(segment_id, member_count - entered + exited)
    return [
        SegmentGrowth(
            segment=segment,
            points=sorted(per_day[segment.pk].items()),
            change=(
                segment.member_count - first_before[segment.pk]
                if segment.pk in first_before
                else None
            ),
        )
        for segment in segments
    ]


#: A customer quiet for this long (but engaged within AT_RISK_WINDOW_DAYS) is at risk.
AT_RISK_QUIET_DAYS = 14
AT_RISK_WINDOW_DAYS = 60


def customer_at_risk_list(
    *, now: datetime.datetime | None = None, limit: int = 10
) -> QuerySet[Contact]:
    """Customers whose engagement is falling, longest quiet first.

    "Falling" means: a customer stage, last engaged between AT_RISK_WINDOW_DAYS and
    AT_RISK_QUIET_DAYS ago (engaged recently, quiet now), or already in the at-risk
    stage. Long-gone customers (quiet for longer) are churn, not risk.
    """
    now = now or timezone.now()
    quiet = Q(
        last_engaged_at__lt=now - datetime.timedelta(days=AT_RISK_QUIET_DAYS),
        last_engaged_at__gte=now - datetime.timedelta(days=AT_RISK_WINDOW_DAYS),
    )
    at_risk_stage = Q(lifecycle_stage_id=LifecycleStage.Key.AT_RISK_CUSTOMER)
    return (
        Contact.objects.filter(lifecycle_stage__is_customer=True)
        .filter(quiet | at_risk_stage)
        .select_related("lifecycle_stage", "owner")
        .order_by("last_engaged_at", "pk")[:limit]
    )
