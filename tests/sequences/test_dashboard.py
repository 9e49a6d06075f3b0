"""sequences' dashboard panels: last-7-day results, deliverability health and trend."""

import datetime

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from sequences.models import Enrollment, EspEvent, Sequence
from sequences.selectors import sequence_results_recent
from tests.factories import (
    CircuitBreakerTripFactory,
    EnrollmentFactory,
    EspEventFactory,
    OutboundMessageFactory,
    SequenceVersionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def _sequence(name: str, status=Sequence.Status.ACTIVE):
    version = SequenceVersionFactory(sequence__name=name, sequence__status=status)
    return version


def _sent(version, *, days_ago: float = 1):
    return OutboundMessageFactory(
        enrollment=EnrollmentFactory(version=version, enrolled_at=_ago(30)),
        claimed_at=_ago(days_ago),
        sent_at=_ago(days_ago),
    )


def _event(message, kind, *, days_ago: float = 1):
    return EspEventFactory(message=message, kind=kind, occurred_at=_ago(days_ago))


@pytest.fixture
def welcome():
    """An active sequence with known results in the last 7 days, and older ones."""
    version = _sequence("Welcome")
    EnrollmentFactory(version=version, enrolled_at=_ago(1))
    EnrollmentFactory(version=version, enrolled_at=_ago(2))
    EnrollmentFactory(
        version=version,
        enrolled_at=_ago(3),
        state=Enrollment.State.CONVERTED,
        ended_at=_ago(1),
    )
    EnrollmentFactory(version=version, enrolled_at=_ago(10))  # before the period
    first, second = _sent(version), _sent(version)
    _sent(version, days_ago=10)  # before the period
    _event(first, EspEvent.Kind.DELIVERED)
    _event(second, EspEvent.Kind.DELIVERED)
    _event(first, EspEvent.Kind.CLICKED)
    _event(first, EspEvent.Kind.CLICKED)  # the same email clicked again: counted once
    _event(second, EspEvent.Kind.COMPLAINT)
    return version.sequence


def test_results_count_the_last_7_days_of_each_active_sequence(welcome):
    _sequence("Paused one", status=Sequence.Status.PAUSED)

    results = sequence_results_recent(days=7)

    assert [r.sequence.name for r in results] == ["Welcome"]
    result = results[0]
    # The 3 enrollments of the ledger's messages started 30 days ago: not counted.
    assert (result.enrolled, result.converted) == (3, 1)
    assert (result.sent, result.delivered, result.clicked, result.complaints) == (2, 2, 1, 1)
    assert result.click_rate == 0.5


def test_results_take_four_queries_however_many_sequences(welcome, django_assert_num_queries):
    for name in ("Second", "Third"):
        _sent(_sequence(name))

    with django_assert_num_queries(4):
        sequence_results_recent(days=7)


def test_a_marketer_sees_the_results_and_deliverability_on_the_home(client, marketer, welcome):
    client.force_login(marketer)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert 'id="panel-sequence-results"' in html
    change_url = reverse("admin:sequences_sequence_change", args=[welcome.pk])
    assert f'<th scope="row"><a href="{change_url}">Welcome</a></th><td>3</td>' in html
    assert 'id="panel-deliverability-health"' in html
    # 1 complaint in 2 delivered emails: far above the 0.3% line.
    assert "nsdash-status-danger" in html
    assert "Complaints at or above 0.3%" in html


def test_an_open_circuit_breaker_trip_shows_on_the_home(client, marketer):
    CircuitBreakerTripFactory()
    client.force_login(marketer)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert "Marketing sends are paused" in html


def test_sales_do_not_get_the_marketing_panels(client, salesperson, welcome):
    client.force_login(salesperson)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert 'id="panel-sequence-results"' not in html
    assert 'id="panel-deliverability-health"' not in html


def test_the_deliverability_report_has_its_own_reports_menu_entry(client, marketer):
    client.force_login(marketer)

    response = client.get(reverse("admin:index"), secure=True)

    reports = response.context["app_list"][0]
    assert [m["name"] for m in reports["models"]][:2] == ["Dashboard", "Deliverability"]
    assert reports["models"][1]["admin_url"] == reverse("admin:sequences_deliverability")


def test_the_deliverability_report_draws_the_complaint_lines_and_exports_csv(
    client, marketer, welcome
):
    client.force_login(marketer)
    url = reverse("admin:sequences_deliverability")

    html = client.get(url, secure=True).content.decode()
    csv = client.get(url, {"csv": "complaint-rate"}, secure=True)

    assert f'<a href="{reverse("admin:reports_dashboard")}">Reports</a> › Deliverability' in html
    assert 'class="nschart-ref nschart-ref-danger"' in html
    lines = b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "Day,Complaint rate"
    assert f"{timezone.localdate() - datetime.timedelta(days=1)},0.5" in lines


def test_the_reports_dashboard_shows_the_deliverability_trend(client, marketer, welcome):
    client.force_login(marketer)

    html = client.get(reverse("admin:reports_dashboard"), secure=True).content.decode()

    assert 'id="nschart-complaint-trend"' in html
    assert 'id="nschart-bounce-rate"' in html
