"""django-q2 entry points for ESP events and the deliverability guard."""

from django.conf import settings
from django.core.mail import send_mail

from sequences.esp.breaker import breaker_alert_recipients, breaker_check, complaint_warn_check
from sequences.esp.processing import BATCH_SIZE, esp_events_process
from sequences.esp.reconcile import reconcile_all
from sequences.esp.sunset import sunset_inactive
from sequences.models import CircuitBreakerTrip, ComplaintRateAlert

MAX_BATCHES = 20


def process_esp_events_task() -> str:
    """Process pending events in batches (after a webhook request, and every minute)."""
    total = 0
    for _ in range(MAX_BATCHES):
        handled = esp_events_process(limit=BATCH_SIZE)
        total += handled
        if handled < BATCH_SIZE:
            break
    trip = breaker_check()
    if trip is None:
        complaint_warn_check()  # a trip already alerted the owners, more strongly
    return f"processed {total}" + (f"; breaker tripped ({trip.metric})" if trip else "")


def alert_breaker_tripped_task(trip_pk: int) -> str:
    trip = CircuitBreakerTrip.objects.get(pk=trip_pk)
    recipients = breaker_alert_recipients()
    if not recipients:
        return "no sequence owners to alert"
    send_mail(
        subject=f"Marketing sends paused: {trip.metric} {trip.rate:.2%}",
        message=(
            f"The {trip.metric.replace('_', ' ')} reached {trip.rate:.2%} over "
            f"{trip.sent} marketing emails (threshold {trip.threshold:.2%}). Marketing "
            f"sends are paused. Review the deliverability page in the admin and resume "
            f"the circuit breaker when the cause is fixed: {settings.SITE_URL}/admin/"
            f"sequences/circuitbreakertrip/{trip.pk}/change/"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return f"alerted {len(recipients)}"


def alert_complaint_rate_task(alert_pk: int) -> str:
    alert = ComplaintRateAlert.objects.get(pk=alert_pk)
    recipients = breaker_alert_recipients()
    if not recipients:
        return "no sequence owners to alert"
    send_mail(
        subject=f"Complaint rate warning: {alert.domain} {alert.rate:.2%} today",
        message=(
            f"{alert.complaints} spam complaints over {alert.delivered} delivered emails from "
            f"{alert.domain} on {alert.day} ({alert.rate:.2%}). Gmail and Yahoo warn from "
            f"0.1%; marketing sends pause automatically at the circuit breaker threshold. "
            f"Nothing is paused yet. Review the deliverability page: {settings.SITE_URL}"
            f"/admin/sequences/circuitbreakertrip/deliverability/"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return f"alerted {len(recipients)}"


def reconcile_suppressions_task() -> str:
    results = reconcile_all()
    return "; ".join(f"{esp}: {count} entries" for esp, count in results.items()) or "no ESPs"


def sunset_inactive_task() -> str:
    return f"suppressed {sunset_inactive()} inactive contacts"
