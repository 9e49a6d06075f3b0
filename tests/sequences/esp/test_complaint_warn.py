"""Complaint-rate guardrail, warn level (reliability.md §8 item 19): at 0.1% of a domain's
deliveries in a day the owners are alerted once that day; marketing pauses only at 0.3%."""

import pytest
from django.core import mail
from django.utils import timezone

from sequences.esp.breaker import complaint_warn_check, marketing_paused
from sequences.esp.tasks import process_esp_events_task
from sequences.models import CircuitBreakerTrip, ComplaintRateAlert, EspEvent
from tests.factories import EnrollmentFactory, EspEventFactory, OutboundMessageFactory
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db
Kind = EspEvent.Kind
DOMAIN = "news.example.com"


def synthetic_events(kind: str, count: int, domain: str = DOMAIN) -> None:
    """Already-processed events: only the guard's counting is under test here."""
    events = EspEventFactory.build_batch(
        count,
        kind=kind,
        event_type=kind,
        sending_domain=domain,
        outcome=EspEvent.Outcome.PROCESSED,
    )
    EspEvent.objects.bulk_create(events)


def marketing_sent(count: int) -> None:
    enrollment = EnrollmentFactory()
    OutboundMessageFactory.create_batch(
        count, enrollment=enrollment, contact=enrollment.contact, sent_at=timezone.now()
    )


@pytest.fixture
def owner_email(db):
    return build_sequence([email_step("hello")]).owner.email


def run_guard(capture) -> str:
    with capture(execute=True):
        return process_esp_events_task()


def test_below_the_warn_level_nobody_is_alerted(owner_email, django_capture_on_commit_callbacks):
    synthetic_events(Kind.DELIVERED, 2000)
    synthetic_events(Kind.COMPLAINT, 1)  # 0.05%

    run_guard(django_capture_on_commit_callbacks)

    assert not ComplaintRateAlert.objects.exists() and mail.outbox == []


def test_the_warn_level_alerts_once_a_day_without_pausing(
    owner_email, django_capture_on_commit_callbacks
):
    marketing_sent(1000)
    synthetic_events(Kind.DELIVERED, 1000)
    synthetic_events(Kind.COMPLAINT, 1)  # exactly 0.1%

    run_guard(django_capture_on_commit_callbacks)
    run_guard(django_capture_on_commit_callbacks)  # the next run must not repeat it

    alert = ComplaintRateAlert.objects.get()
    assert (alert.domain, alert.complaints, alert.delivered) == (DOMAIN, 1, 1000)
    assert alert.rate == pytest.approx(0.001)
    assert [message.to for message in mail.outbox] == [[owner_email]]
    assert DOMAIN in mail.outbox[0].subject
    assert not marketing_paused()


def test_each_domain_is_warned_on_its_own(owner_email):
    synthetic_events(Kind.DELIVERED, 1000)
    synthetic_events(Kind.COMPLAINT, 1)
    synthetic_events(Kind.DELIVERED, 1000, domain="other.example.com")

    assert [alert.domain for alert in complaint_warn_check()] == [DOMAIN]


def test_the_danger_level_pauses_marketing(
    owner_email, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERABILITY_BREAKER_MIN_SENT = 200
    marketing_sent(1000)
    synthetic_events(Kind.DELIVERED, 1000)
    synthetic_events(Kind.COMPLAINT, 3)  # 0.3%

    run_guard(django_capture_on_commit_callbacks)

    assert CircuitBreakerTrip.objects.get().metric == "complaint_rate"
    assert marketing_paused()
    assert len(mail.outbox) == 1 and "paused" in mail.outbox[0].subject
