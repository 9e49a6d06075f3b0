"""The circuit breaker: pause all marketing sends when complaints or hard bounces spike.

Rates are counted over the last DELIVERABILITY_BREAKER_WINDOW_HOURS, against the
marketing emails the ledger sent in that window (the ledger always knows what was
sent; not every ESP reports deliveries). A window starts no earlier than the last
resume, so a reviewed incident does not trip the breaker again by itself.
"""

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from crm.services.mail import SystemEmailFailed, SystemEmailKind, system_email_send
from sequences.esp.report import DayRow, deliverability_by_day
from sequences.models import (
    CircuitBreakerTrip,
    ComplaintRateAlert,
    EspEvent,
    OutboundMessage,
    Sequence,
    UnknownMessagesAlert,
)

logger = logging.getLogger(__name__)
ALERT_TASK = "sequences.esp.tasks.alert_breaker_tripped_task"
WARN_TASK = "sequences.esp.tasks.alert_complaint_rate_task"
Kind = EspEvent.Kind


@dataclass(frozen=True)
class Rates:
    window_start: datetime.datetime
    sent: int
    complaints: int
    hard_bounces: int

    def rate(self, count: int) -> float:
        return count / self.sent if self.sent else 0.0


def marketing_paused() -> bool:
    """The send gate asks this: is a trip open (not yet resumed by an admin)?"""
    return CircuitBreakerTrip.objects.filter(resumed_at__isnull=True).exists()


def breaker_rates(*, now: datetime.datetime) -> Rates:
    """Marketing sends, complaints and hard bounces since the window start (3 queries)."""
    start = now - datetime.timedelta(hours=settings.DELIVERABILITY_BREAKER_WINDOW_HOURS)
    last_resume = CircuitBreakerTrip.objects.aggregate(at=Max("resumed_at"))["at"]
    start = max(start, last_resume) if last_resume else start
    sent = OutboundMessage.objects.filter(is_marketing=True, sent_at__gte=start).count()
    counts = EspEvent.objects.filter(occurred_at__gte=start).aggregate(
        complaints=Count("pk", filter=Q(kind=Kind.COMPLAINT)),
        hard_bounces=Count("pk", filter=Q(kind=Kind.HARD_BOUNCE)),
    )
    return Rates(window_start=start, sent=sent, **counts)


def breaker_check(*, now: datetime.datetime | None = None) -> CircuitBreakerTrip | None:
    """Open a trip when a rate reaches its threshold; return the new trip, if any."""
    now = now or timezone.now()
    if marketing_paused():
        return None
    rates = breaker_rates(now=now)
    if rates.sent < settings.DELIVERABILITY_BREAKER_MIN_SENT:
        return None  # too few sends for a rate to mean anything
    for metric, count, threshold_bps in (
        ("complaint_rate", rates.complaints, settings.DELIVERABILITY_BREAKER_COMPLAINT_BPS),
        ("hard_bounce_rate", rates.hard_bounces, settings.DELIVERABILITY_BREAKER_HARD_BOUNCE_BPS),
    ):
        threshold = threshold_bps / 10_000
        if rates.rate(count) >= threshold:
            return _trip(metric, rates.rate(count), threshold, rates, now)
    return None


@transaction.atomic
def _trip(metric: str, rate: float, threshold: float, rates: Rates, now) -> CircuitBreakerTrip:
    trip = CircuitBreakerTrip.objects.create(
        metric=metric,
        rate=rate,
        threshold=threshold,
        sent=rates.sent,
        window_start=rates.window_start,
        opened_at=now,
    )
    logger.warning("circuit breaker tripped: %s %.4f >= %.4f", metric, rate, threshold)
    transaction.on_commit(lambda: _enqueue_alert(trip.pk))
    return trip


def _enqueue_alert(trip_pk: int, task: str = ALERT_TASK) -> None:
    from django_q.tasks import async_task

    async_task(task, trip_pk)


def complaint_warn_check(*, now: datetime.datetime | None = None) -> list[ComplaintRateAlert]:
    """Warn (never pause) when today's complaint rate of a sending domain reaches the warn
    level (Gmail/Yahoo: 0.1%); return the alerts created by this run.

    Today's rate per domain is the report's (complaints ÷ delivered). The unique
    (day, domain) key makes a repeated run a no-op, so owners get one email a day.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    warn = settings.DELIVERABILITY_WARN_COMPLAINT_BPS / 10_000
    rows = deliverability_by_day(days=1, now=now)
    crossed = [row for row in rows if row.day == today and (row.complaint_rate or 0) >= warn]
    return [alert for row in crossed if (alert := _warn_once(row, now)) is not None]


@transaction.atomic
def _warn_once(row: DayRow, now: datetime.datetime) -> ComplaintRateAlert | None:
    alert, created = ComplaintRateAlert.objects.get_or_create(
        day=row.day,
        domain=row.domain,
        defaults={
            "rate": row.complaint_rate,
            "complaints": row.complaints,
            "delivered": row.delivered or row.sent,
            "alerted_at": now,
        },
    )
    if not created:
        return None
    logger.warning("complaint rate warning: %s %.4f on %s", row.domain, alert.rate, row.day)
    transaction.on_commit(lambda: _enqueue_alert(alert.pk, WARN_TASK))
    return alert


def breaker_resume(*, trip: CircuitBreakerTrip, user: AbstractBaseUser) -> bool:
    """An admin resumes marketing after review; return False if it was already resumed."""
    resumed = CircuitBreakerTrip.objects.filter(pk=trip.pk, resumed_at__isnull=True).update(
        resumed_at=timezone.now(), resumed_by=user
    )
    if resumed:
        logger.info("circuit breaker trip %s resumed by user %s", trip.pk, user.pk)
    return bool(resumed)


def breaker_alert_recipients() -> list[str]:
    """The owners of active marketing sequences: they answer for what is paused."""
    emails = (
        Sequence.objects.filter(status=Sequence.Status.ACTIVE, is_transactional=False)
        .exclude(owner__email="")
        .values_list("owner__email", flat=True)
        .distinct()
    )
    return sorted(email for email in emails if email)


def breaker_alert_send(*, trip: CircuitBreakerTrip) -> str:
    """Tell the owners that marketing is paused; once per trip and owner (task re-runs too)."""
    subject = f"Marketing sends paused: {trip.metric} {trip.rate:.2%}"
    body = (
        f"The {trip.metric.replace('_', ' ')} reached {trip.rate:.2%} over "
        f"{trip.sent} marketing emails (threshold {trip.threshold:.2%}). Marketing "
        f"sends are paused. Review the deliverability page in the admin and resume "
        f"the circuit breaker when the cause is fixed: {settings.SITE_URL}/admin/"
        f"sequences/circuitbreakertrip/{trip.pk}/change/"
    )
    return _alert_owners(
        SystemEmailKind.BREAKER_ALERT, f"trip:{trip.pk}", subject, body, {"trip_id": trip.pk}
    )


def complaint_alert_send(*, alert: ComplaintRateAlert) -> str:
    """Warn the owners about today's complaint rate; once per alert and owner."""
    subject = f"Complaint rate warning: {alert.domain} {alert.rate:.2%} today"
    body = (
        f"{alert.complaints} spam complaints over {alert.delivered} delivered emails from "
        f"{alert.domain} on {alert.day} ({alert.rate:.2%}). Gmail and Yahoo warn from "
        f"0.1%; marketing sends pause automatically at the circuit breaker threshold. "
        f"Nothing is paused yet. Review the deliverability page: {settings.SITE_URL}"
        f"/admin/sequences/circuitbreakertrip/deliverability/"
    )
    return _alert_owners(
        SystemEmailKind.COMPLAINT_ALERT, f"alert:{alert.pk}", subject, body, {"alert_id": alert.pk}
    )


def unknown_alert_send(*, alert: UnknownMessagesAlert) -> str:
    """Tell the owners that emails are in an unknown state; once per alert and owner."""
    subject = f"{alert.count} sequence emails in an unknown state"
    body = (
        f"{alert.count} emails (threshold {alert.threshold}) were handed to the ESP "
        f"without an answer, so nobody knows whether they went out. They are never "
        f"resent automatically, and their enrollments wait on them. Resolve them in the "
        f"send ledger (sent, failed, or resend when the ESP did not get them): "
        f"{settings.SITE_URL}/admin/sequences/outboundmessage/?state__exact=unknown"
    )
    return _alert_owners(
        SystemEmailKind.UNKNOWN_ALERT, f"unknown:{alert.pk}", subject, body, {"alert_id": alert.pk}
    )


def _alert_owners(kind: str, key: str, subject: str, body: str, ids: dict) -> str:
    """One email per owner, each through the system email path: one owner's bounced or
    complained address, or a refused send, never keeps the alert from the others."""
    recipients = breaker_alert_recipients()
    if not recipients:
        return "no sequence owners to alert"
    outcomes: dict[str, int] = {}
    for recipient in recipients:
        try:
            status = system_email_send(
                to=recipient,
                subject=subject,
                body=body,
                kind=kind,
                metadata=ids,
                idempotency_key=key,
            ).status
        except SystemEmailFailed:
            status = "failed"
        except ValidationError:
            # An owner's address that is no address: retrying cannot help, and the others
            # still get the alert.
            logger.warning("%s: an owner's address is not valid; not alerted", kind)
            status = "invalid address"
        outcomes[status] = outcomes.get(status, 0) + 1
    if outcomes.get("failed"):
        # Raise so django-q2 records the task as failed; a re-run mails only those the
        # idempotency key shows were not mailed yet.
        raise SystemEmailFailed(f"{kind}: {outcomes['failed']} of {len(recipients)} not sent")
    return "alerted " + ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
