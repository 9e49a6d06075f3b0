"""crm's dashboard panels: segment growth and customers at risk; the pages' query budgets."""

import datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import LifecycleStage
from crm.selectors import customer_at_risk_list, segment_growth
from tests.factories import (
    ContactFactory,
    HandoffFactory,
    SegmentCountSnapshotFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db
Key = LifecycleStage.Key


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def test_segment_growth_reads_the_count_history_per_day():
    segment = SegmentFactory(name="Trials", member_count=130)
    SegmentCountSnapshotFactory(
        segment=segment, counted_at=_ago(40), member_count=50
    )  # before the period
    SegmentCountSnapshotFactory(
        segment=segment, counted_at=_ago(20), member_count=100, entered=10, exited=0
    )
    SegmentCountSnapshotFactory(segment=segment, counted_at=_ago(5), member_count=110)
    SegmentCountSnapshotFactory(segment=segment, counted_at=_ago(4.99), member_count=120)

    (growth,) = segment_growth(days=30)

    assert [count for _, count in growth.points] == [100, 120]  # the day's last count
    assert growth.change == 130 - 90  # members before the period's first evaluation: 100 - 10


def test_customers_at_risk_are_quiet_customers_longest_quiet_first():
    quiet_long = ContactFactory(lifecycle_stage_id=Key.ACTIVE_CUSTOMER, last_engaged_at=_ago(50))
    quiet = ContactFactory(lifecycle_stage_id=Key.NEW_CUSTOMER, last_engaged_at=_ago(20))
    staged = ContactFactory(lifecycle_stage_id=Key.AT_RISK_CUSTOMER, last_engaged_at=_ago(2))
    ContactFactory(lifecycle_stage_id=Key.ACTIVE_CUSTOMER, last_engaged_at=_ago(3))  # active
    ContactFactory(lifecycle_stage_id=Key.ACTIVE_CUSTOMER, last_engaged_at=_ago(200))  # gone
    ContactFactory(lifecycle_stage_id=Key.ENGAGED_LEAD, last_engaged_at=_ago(20))  # no customer

    assert list(customer_at_risk_list()) == [quiet_long, quiet, staged]


def test_customer_success_sees_customers_at_risk_on_the_home(client, success_manager):
    contact = ContactFactory(
        first_name="Quiet",
        last_name="Customer",
        lifecycle_stage_id=Key.ACTIVE_CUSTOMER,
        last_engaged_at=_ago(20),
    )
    client.force_login(success_manager)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert 'id="panel-customers-at-risk"' in html
    link = reverse("admin:crm_contact_change", args=[contact.pk])
    assert f'<a href="{link}">Quiet Customer</a>' in html
    assert 'id="panel-segment-growth"' not in html


def test_a_marketer_sees_segment_growth_on_the_home(client, marketer):
    segment = SegmentFactory(name="Trials", member_count=12)
    SegmentCountSnapshotFactory(segment=segment, counted_at=_ago(1), member_count=12)
    client.force_login(marketer)

    html = client.get(reverse("admin:index"), secure=True).content.decode()

    assert 'id="nschart-segment-growth"' in html
    assert 'id="panel-customers-at-risk"' not in html


@pytest.mark.parametrize("page", ["admin:index", "admin:reports_dashboard"])
def test_every_panel_renders_on_an_empty_database(client, superuser, page):
    client.force_login(superuser)

    response = client.get(reverse(page), secure=True)

    assert response.status_code == 200
    assert "This panel could not be shown." not in response.content.decode()


# --- Query budgets: a page view's queries do not grow with the data ------------------------


def _some_data(count: int) -> None:
    for n in range(count):
        segment = SegmentFactory(member_count=n)
        SegmentCountSnapshotFactory(segment=segment, counted_at=_ago(n % 20))
        ContactFactory(lifecycle_stage_id=Key.ACTIVE_CUSTOMER, last_engaged_at=_ago(15 + n))
        HandoffFactory(contact=ContactFactory(lead_score=n * 7))


def _queries(client, url: str) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, secure=True)
    assert response.status_code == 200
    assert "This panel could not be shown." not in response.content.decode()
    return len(queries)


@pytest.mark.parametrize("role", ["superuser", "marketer", "salesperson", "success_manager"])
@pytest.mark.parametrize("page", ["admin:index", "admin:reports_dashboard"])
def test_a_dashboard_reads_a_fixed_number_of_queries(client, request, role, page):
    client.force_login(request.getfixturevalue(role))
    url = reverse(page)
    _some_data(2)
    few = _queries(client, url)

    _some_data(8)

    assert _queries(client, url) == few
    assert few <= 20  # the budget: session, user, permissions, and a few per panel
