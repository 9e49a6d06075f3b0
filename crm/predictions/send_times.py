"""Best send time per contact: the local hour they open and click most, or the audience's.

`send_times_refresh` reads human opens and clicks of the last 180 days with ONE GROUP BY
(contact, UTC hour), turns each contact's 24 counts into local hours with the contact's
time zone, and stores the hour whose three-hour window (hour before, hour, hour after,
weighted 1-2-1) holds the most events. Contacts with fewer than MIN_EVENTS get the
audience's hour (everyone's local histograms summed), and say so. Machine opens (Apple Mail Privacy
Protection and other prefetchers, `is_machine_open`) are not a person reading: excluded.

Local hours use each time zone's offset today, so events from the other side of a
daylight-saving change count one hour off; half-hour zones round down.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import ExtractHour
from django.utils import timezone

from crm.models import Activity, Contact
from crm.predictions.models import ContactSendTime, PredictionRun

LOOKBACK_DAYS = 180
MIN_EVENTS = 5
#: When nobody has opened anything yet: mid-morning, a common default.
DEFAULT_HOUR = 10
HUMAN_KINDS = (Activity.Kind.EMAIL_OPENED, Activity.Kind.EMAIL_CLICKED)
WRITE_BATCH = 5_000


@dataclass(frozen=True)
class BestHour:
    """The local hour (0–23) to send at and where it came from."""

    hour: int
    source: str  # ContactSendTime.Source: contact, audience or default
    events: int = 0


def best_hour(counts: np.ndarray) -> int:
    """The hour whose circular three-hour window, weighted 1-2-1, holds most events.

    The weighting makes a lone busy hour win over its neighbours; ties: the earliest.
    """
    window = 2 * counts + np.roll(counts, 1) + np.roll(counts, -1)
    return int(np.argmax(window))


def _offset_hours(zone_name: str, now: datetime.datetime) -> int:
    try:
        zone = zoneinfo.ZoneInfo(zone_name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return int(now.astimezone(zone).utcoffset().total_seconds() // 3600)


def human_engagement_by_hour(*, since: datetime.datetime) -> dict[int, np.ndarray]:
    """contact id -> 24 counts of human opens and clicks per UTC hour (one GROUP BY)."""
    rows = (
        Activity.objects.filter(kind__in=HUMAN_KINDS, contact__isnull=False, occurred_at__gte=since)
        # Missing key: a human open. A bare exclude() would drop those too (NULL in SQL).
        .filter(Q(properties__is_machine_open__isnull=True) | ~Q(properties__is_machine_open=True))
        .order_by()
        .annotate(hour=ExtractHour("occurred_at", tzinfo=datetime.UTC))
        .values("contact_id", "hour")
        .annotate(events=Count("pk"))
        .values_list("contact_id", "hour", "events")
    )
    histograms: dict[int, np.ndarray] = {}
    for contact_id, hour, events in rows:
        histograms.setdefault(contact_id, np.zeros(24, dtype=int))[hour] += events
    return histograms


@transaction.atomic
def send_times_refresh(*, now: datetime.datetime | None = None) -> PredictionRun:
    """Store every engaged contact's best local send hour and the audience's."""
    now = now or timezone.now()
    histograms = human_engagement_by_hour(since=now - datetime.timedelta(days=LOOKBACK_DAYS))
    zones = dict(Contact.objects.filter(pk__in=list(histograms)).values_list("pk", "time_zone"))
    offsets: dict[str, int] = {}
    local: dict[int, np.ndarray] = {}
    for contact_id, counts in histograms.items():
        name = zones.get(contact_id, "")
        if name not in offsets:
            offsets[name] = _offset_hours(name, now)
        local[contact_id] = np.roll(counts, offsets[name])  # UTC hour h is local h + offset
    audience = sum(local.values(), np.zeros(24, dtype=int))
    audience_hour = best_hour(audience) if audience.sum() else DEFAULT_HOUR
    rows = []
    for contact_id, counts in local.items():
        events = int(counts.sum())
        own = events >= MIN_EVENTS
        rows.append(
            ContactSendTime(
                contact_id=contact_id,
                hour=best_hour(counts) if own else audience_hour,
                source=ContactSendTime.Source.CONTACT if own else ContactSendTime.Source.AUDIENCE,
                events=events,
                computed_at=now,
            )
        )
    ContactSendTime.objects.bulk_create(
        rows,
        batch_size=WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["contact"],
        update_fields=["hour", "source", "events", "computed_at"],
    )
    ContactSendTime.objects.filter(computed_at__lt=now).delete()
    return PredictionRun.objects.create(
        kind=PredictionRun.Kind.SEND_TIME,
        status=PredictionRun.Status.OK,
        model="Best local hour of human opens and clicks (3-hour window)",
        cutoff_at=now,
        customers=len(rows),
        results={
            "audience_hour": audience_hour,
            "audience_histogram": audience.tolist(),
            "own_hour": sum(1 for row in rows if row.source == ContactSendTime.Source.CONTACT),
        },
        started_at=now,
        finished_at=timezone.now(),
    )


def best_send_hour(*, contact: Contact) -> BestHour:
    """The contact's best local hour: their own, else the audience's, else the default."""
    row = ContactSendTime.objects.filter(contact=contact).first()
    if row is not None:
        return BestHour(row.hour, row.source, row.events)
    run = PredictionRun.objects.filter(kind=PredictionRun.Kind.SEND_TIME).first()
    if run is not None and "audience_hour" in run.results:
        return BestHour(int(run.results["audience_hour"]), ContactSendTime.Source.AUDIENCE)
    return BestHour(DEFAULT_HOUR, ContactSendTime.Source.DEFAULT)


@dataclass(frozen=True)
class BestTimeDecision:
    """When a best-time wait ends, and whether that is the best hour (else: now, outside it)."""

    at: datetime.datetime
    best: BestHour
    at_best_time: bool


def best_time_decide(
    *, contact: Contact, now: datetime.datetime, within_hours: int
) -> BestTimeDecision:
    """The next start of the contact's best hour within the window, or now if it does not come.

    Already inside the best hour counts as at the best time (at = now).
    """
    best = best_send_hour(contact=contact)
    try:
        zone = zoneinfo.ZoneInfo(contact.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local = now.astimezone(zone)
    for days_ahead in range(0, within_hours // 24 + 2):
        day = local.date() + datetime.timedelta(days=days_ahead)
        at = datetime.datetime.combine(day, datetime.time(best.hour), tzinfo=zone)
        if local.replace(minute=0, second=0, microsecond=0) <= at:
            at = max(at, local)  # already inside the best hour: now
            if at - local <= datetime.timedelta(hours=within_hours):
                return BestTimeDecision(at.astimezone(datetime.UTC), best, True)
            break
    return BestTimeDecision(now, best, False)


def next_best_time(
    *, contact: Contact, now: datetime.datetime, within_hours: int
) -> tuple[datetime.datetime, BestHour]:
    """The next start of the contact's best hour within the window; now if it does not come."""
    decision = best_time_decide(contact=contact, now=now, within_hours=within_hours)
    return decision.at, decision.best
