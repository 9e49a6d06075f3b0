"""The deliverability guard: circuit breaker, sunset, reconciliation, report, system check.

reliability.md §8: 19 (complaint-rate guardrail), 20 (fail closed without a webhook
secret), 24 (nightly reconciliation).
"""

import datetime
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from crm.models import Suppression
from sequences.checks import WEBHOOK_SECRET_MISSING, anymail_webhook_secret_check
from sequences.esp.breaker import breaker_check
from sequences.esp.reconcile import reconcile_all
from sequences.esp.report import deliverability_by_day
from sequences.esp.sunset import sunset_inactive
from sequences.gate import evaluate
from sequences.models import CircuitBreakerTrip, EspEvent
from tests.factories import (
    CircuitBreakerTripFactory,
    ContactFactory,
    EnrollmentFactory,
    EspEventFactory,
    OutboundMessageFactory,
)
from tests.sequences.conftest import build_sequence, email_step
from tests.sequences.esp.conftest import payload

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)


def sent_marketing(count: int, when=None):
    enrollment = EnrollmentFactory()
    OutboundMessageFactory.create_batch(
        count,
        enrollment=enrollment,
        contact=enrollment.contact,
        sent_at=when or timezone.now(),
    )


def complaints(count: int):
    EspEventFactory.create_batch(count, kind=EspEvent.Kind.COMPLAINT, event_type="complained")


# --- Circuit breaker ------------------------------------------------------------------------


@pytest.fixture
def breaker_settings(settings):
    settings.DELIVERABILITY_BREAKER_MIN_SENT = 100
    settings.DELIVERABILITY_BREAKER_COMPLAINT_BPS = 100  # 1%
    settings.DELIVERABILITY_BREAKER_HARD_BOUNCE_BPS = 500  # 5%
    return settings


def test_the_breaker_stays_closed_below_the_threshold(breaker_settings):
    sent_marketing(200)
    complaints(1)  # 0.5%

    assert breaker_check() is None


def test_the_breaker_trips_at_the_threshold_and_alerts_the_owners(
    breaker_settings, django_capture_on_commit_callbacks
):
    sequence = build_sequence([email_step("hello")])
    sent_marketing(200)
    complaints(2)  # exactly 1%

    with django_capture_on_commit_callbacks(execute=True):
        trip = breaker_check()

    assert trip.metric == "complaint_rate" and trip.rate == pytest.approx(0.01)
    assert [message.to for message in mail.outbox] == [[sequence.owner.email]]
    assert "paused" in mail.outbox[0].subject


def test_hard_bounces_trip_the_breaker_too(breaker_settings):
    sent_marketing(100)
    EspEventFactory.create_batch(5, kind=EspEvent.Kind.HARD_BOUNCE, event_type="bounced")

    assert breaker_check().metric == "hard_bounce_rate"


def test_too_few_sends_never_trip_it(breaker_settings):
    sent_marketing(10)
    complaints(5)

    assert breaker_check() is None


def test_an_open_breaker_pauses_marketing_in_the_gate_but_not_transactional(
    consenting_contact, clock
):
    marketing = build_sequence([email_step("hello")])
    transactional = build_sequence([email_step("receipt")], is_transactional=True)
    CircuitBreakerTripFactory()

    denied = evaluate(consenting_contact, marketing, {"key": "hello", "config": {}}, clock.now)
    allowed = evaluate(
        consenting_contact, transactional, {"key": "receipt", "config": {}}, clock.now
    )

    assert (denied.allowed, denied.reason) == (False, "circuit_breaker_open")
    assert denied.defer_until > clock.now  # held, not dropped
    assert allowed.allowed


def test_an_admin_resumes_after_review_and_the_gate_allows_again(
    client, superuser, consenting_contact, clock
):
    marketing = build_sequence([email_step("hello")])
    trip = CircuitBreakerTripFactory()
    client.force_login(superuser)

    client.post(
        "/admin/sequences/circuitbreakertrip/",
        {"action": "resume_marketing", "_selected_action": [trip.pk]},
    )

    trip.refresh_from_db()
    assert trip.resumed_by == superuser and trip.resumed_at is not None
    assert evaluate(
        consenting_contact, marketing, {"key": "hello", "config": {}}, clock.now
    ).allowed


def test_a_resume_restarts_the_window_so_old_complaints_do_not_trip_it_again(breaker_settings):
    sent_marketing(200)
    complaints(4)
    CircuitBreakerTripFactory(resumed_at=timezone.now() + datetime.timedelta(seconds=1))

    assert breaker_check() is None


# --- Sunset ---------------------------------------------------------------------------------


def _contact(email: str, *, age_days: int, engaged_days_ago: int | None, sent_days_ago=None):
    now = timezone.now()
    contact = ContactFactory(email=email)
    type(contact).objects.filter(pk=contact.pk).update(
        created_at=now - age_days * DAY,
        last_engaged_at=None if engaged_days_ago is None else now - engaged_days_ago * DAY,
    )
    if sent_days_ago is not None:
        OutboundMessageFactory(
            contact=contact, enrollment__contact=contact, sent_at=now - sent_days_ago * DAY
        )
    return contact


def test_sunset_suppresses_only_contacts_quiet_after_a_re_engagement_attempt(settings):
    settings.DELIVERABILITY_SUNSET_DAYS = 180
    settings.DELIVERABILITY_SUNSET_GRACE_DAYS = 14
    _contact("gone@example.com", age_days=400, engaged_days_ago=250, sent_days_ago=30)
    _contact("never@example.com", age_days=400, engaged_days_ago=None, sent_days_ago=20)
    _contact("answered@example.com", age_days=400, engaged_days_ago=5, sent_days_ago=30)
    _contact("no-attempt@example.com", age_days=400, engaged_days_ago=250)
    _contact("just-asked@example.com", age_days=400, engaged_days_ago=250, sent_days_ago=3)
    _contact("new@example.com", age_days=10, engaged_days_ago=None, sent_days_ago=1)

    assert sunset_inactive() == 2
    assert sunset_inactive() == 0  # a re-run adds nothing

    inactive = Suppression.objects.filter(reason=Suppression.Reason.INACTIVE)
    assert set(inactive.values_list("email", flat=True)) == {
        "gone@example.com",
        "never@example.com",
    }


# --- Reconciliation -------------------------------------------------------------------------


def test_reconciliation_merges_the_postmark_suppression_list_once(settings, contact):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": "https://postmark-sandbox.example.com/",
    }
    dump = payload(
        "postmark_suppressions_dump.json",
        email=contact.email,
        complainer="grumpy@example.com",
        unsubscriber="later@example.com",
    )
    response = mock.Mock(status_code=200, json=mock.Mock(return_value=dump))

    with mock.patch("sequences.esp.reconcile.requests.get", return_value=response) as get:
        assert reconcile_all() == {"Postmark": 3}
        reconcile_all()

    url = get.call_args.args[0]
    assert url == "https://postmark-sandbox.example.com/message-streams/outbound/suppressions/dump"
    assert get.call_args.kwargs["headers"]["X-Postmark-Server-Token"] == "server-token"
    assert EspEvent.objects.count() == 3
    assert set(Suppression.objects.values_list("email", "reason")) == {
        (contact.email, "hard_bounce"),
        ("grumpy@example.com", "complaint"),
        ("later@example.com", "unsubscribed"),
    }


def test_reconciliation_skips_esps_without_credentials(settings):
    with mock.patch("sequences.esp.reconcile.requests.get") as get:
        assert reconcile_all() == {}
    get.assert_not_called()


# --- One processing task per webhook request -------------------------------------------------


def test_a_webhook_batch_enqueues_one_processing_task(client, ledger):
    from tests.sequences.esp.conftest import post_sendgrid, subs

    events = payload("sendgrid_events.json", **subs(ledger))
    batch = [events["delivered"], events["open"], events["click"]]
    with mock.patch("django_q.tasks.async_task") as async_task:
        assert post_sendgrid(client, batch).status_code == 200

    async_task.assert_called_once_with("sequences.esp.tasks.process_esp_events_task")
    assert EspEvent.objects.filter(outcome="pending").count() == 3  # stored, not yet processed


# --- Report and check -----------------------------------------------------------------------


def test_the_report_counts_per_day_and_domain_in_two_queries(django_assert_max_num_queries):
    sent_marketing(400)
    EspEventFactory.create_batch(3, kind=EspEvent.Kind.DELIVERED)
    complaints(2)

    with django_assert_max_num_queries(2):
        rows = deliverability_by_day()

    (row,) = rows
    assert (row.domain, row.sent, row.delivered, row.complaints) == ("example.com", 400, 3, 2)
    assert row.complaint_level == "danger"


def test_the_deliverability_page_marks_the_thresholds(client, superuser):
    sent_marketing(1000)
    EspEventFactory.create_batch(2, kind=EspEvent.Kind.COMPLAINT)  # 0.2%: warn
    client.force_login(superuser)

    response = client.get("/admin/sequences/circuitbreakertrip/deliverability/")

    assert response.status_code == 200
    assert b"rate-warn" in response.content and b"0.20%" in response.content


def test_production_without_a_webhook_secret_is_an_error(settings):
    settings.DEBUG = False
    settings.ANYMAIL = {}

    (error,) = anymail_webhook_secret_check()

    assert error.id == WEBHOOK_SECRET_MISSING and error.is_serious()


def test_a_webhook_secret_or_debug_passes_the_check(settings):
    settings.DEBUG = False
    settings.ANYMAIL = {"WEBHOOK_SECRET": "user:pass"}
    assert anymail_webhook_secret_check() == []
    settings.DEBUG, settings.ANYMAIL = True, {}
    assert anymail_webhook_secret_check() == []


def test_trips_are_listed(client, superuser):
    CircuitBreakerTripFactory()
    client.force_login(superuser)

    response = client.get("/admin/sequences/circuitbreakertrip/")

    assert response.status_code == 200 and CircuitBreakerTrip.objects.count() == 1


@pytest.mark.django_db
def test_marketing_may_review_and_resume_a_tripped_breaker_and_sales_may_only_look(
    marketer, salesperson
):
    assert marketer.has_perm("sequences.view_espevent")
    assert marketer.has_perm("sequences.change_circuitbreakertrip")
    assert salesperson.has_perm("sequences.view_circuitbreakertrip")
    assert not salesperson.has_perm("sequences.change_circuitbreakertrip")
    assert not salesperson.has_perm("sequences.view_espevent")
