"""The dashboards: the panel registry, the role-aware admin home and the reports dashboard."""

import datetime

import pytest
from django.urls import reverse
from django.utils.html import format_html

from crm.admin_hooks import (
    dashboard_panels,
    register_dashboard_panel,
    register_report,
    report_links,
    unregister_dashboard_panel,
    unregister_report,
)
from crm.charts import Series, line_chart
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _marketing_chart(request):
    return line_chart(
        key="test-opens",
        title="Test opens",
        series=[
            Series("Opens", [(datetime.date(2026, 11, 1), 3), (datetime.date(2026, 11, 2), 5)])
        ],
    )


def _sales_html(request):
    return format_html("<p id='test-sales'>Queue for {}</p>", request.user.username)


def _broken(request):
    raise RuntimeError("boom")


@pytest.fixture
def test_panels():
    keys = ["test-marketing", "test-sales", "test-reports", "test-hidden"]
    register_dashboard_panel(
        "test-marketing", "Test marketing", _marketing_chart, roles=["Marketing"], order=1
    )
    register_dashboard_panel("test-sales", "Test sales", _sales_html, roles=["Sales"], order=2)
    register_dashboard_panel(
        "test-reports", "Test report", _marketing_chart, dashboard="reports", order=1
    )
    register_dashboard_panel("test-hidden", "Nothing today", lambda request: [], order=3)
    yield
    for key in keys:
        unregister_dashboard_panel(key)


def _get(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params, secure=True)


# --- The registry ------------------------------------------------------------------------------


def test_panels_are_ordered_and_filtered_by_role(test_panels, marketer, salesperson, superuser):
    def keys(user):
        return [p.key for p in dashboard_panels("home", user) if p.key.startswith("test-")]

    assert keys(marketer) == ["test-marketing", "test-hidden"]
    assert keys(salesperson) == ["test-sales", "test-hidden"]
    assert keys(superuser) == ["test-marketing", "test-sales", "test-hidden"]
    assert [p.key for p in dashboard_panels("reports") if p.key.startswith("test-")] == [
        "test-reports"
    ]


def test_a_panel_can_also_require_a_permission(marketer, salesperson):
    register_dashboard_panel("test-perm", "Segments", _sales_html, permission="crm.change_segment")
    try:
        assert "test-perm" in [p.key for p in dashboard_panels("home", marketer)]
        assert "test-perm" not in [p.key for p in dashboard_panels("home", salesperson)]
    finally:
        unregister_dashboard_panel("test-perm")


def test_non_staff_users_see_no_panel(test_panels):
    user = UserFactory(username="outsider", is_staff=False)

    assert dashboard_panels("home", user) == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"dashboard": "sidebar"}, "Dashboard must be one of"), ({"permission": "x"}, "app_label")],
)
def test_a_bad_registration_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        register_dashboard_panel("test-bad", "Bad", _sales_html, **kwargs)


def test_report_links_follow_permissions(marketer):
    register_report("Test report", "admin:index", permission="crm.delete_contact", order=1)
    try:
        assert "Test report" not in [link.title for link in report_links(marketer)]
        assert "Test report" in [link.title for link in report_links()]
    finally:
        unregister_report("admin:index")


# --- The admin home ----------------------------------------------------------------------------


def test_a_marketer_sees_marketing_panels_on_the_home_and_the_app_list(
    client, test_panels, marketer
):
    response = _get(client, marketer, reverse("admin:index"))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="panel-test-marketing"' in html
    assert 'id="nschart-test-opens"' in html
    assert 'id="panel-test-sales"' not in html
    assert 'id="panel-test-hidden"' not in html  # an empty panel is not shown
    assert reverse("admin:crm_contact_changelist") in html  # the app list stays
    assert "crm/charts.css" in html


def test_a_salesperson_sees_the_sales_panels(client, test_panels, salesperson):
    response = _get(client, salesperson, reverse("admin:index"))

    html = response.content.decode()
    assert "<p id='test-sales'>Queue for seller</p>" in html
    assert 'id="panel-test-marketing"' not in html


def test_a_failing_panel_shows_an_error_and_the_rest_of_the_home(
    client, test_panels, superuser, caplog
):
    register_dashboard_panel("test-broken", "Broken", _broken, order=0)
    try:
        response = _get(client, superuser, reverse("admin:index"))
    finally:
        unregister_dashboard_panel("test-broken")

    html = response.content.decode()
    assert response.status_code == 200
    assert "This panel could not be shown." in html
    assert 'id="panel-test-marketing"' in html
    assert "Dashboard panel test-broken failed" in caplog.text


def test_the_home_downloads_a_panels_chart_as_csv(client, test_panels, marketer):
    response = _get(client, marketer, reverse("admin:index"), csv="test-opens")

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert body.splitlines() == ["Day,Opens", "2026-11-01,3", "2026-11-02,5"]
    assert _get(client, marketer, reverse("admin:index"), csv="nope").status_code == 404


def test_the_reports_menu_entry_is_listed_first_for_every_staff_role(client, salesperson):
    response = _get(client, salesperson, reverse("admin:index"))

    app_list = response.context["app_list"]
    assert app_list[0]["name"] == "Reports"
    assert app_list[0]["models"][0]["admin_url"] == reverse("admin:reports_dashboard")


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("admin:reports_dashboard"), secure=True)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- The reports dashboard ---------------------------------------------------------------------


def test_the_reports_dashboard_shows_reports_panels_and_the_period(client, test_panels, marketer):
    response = _get(client, marketer, reverse("admin:reports_dashboard"), days="90")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="panel-test-reports"' in html
    assert 'id="panel-test-marketing"' not in html
    assert '<strong aria-current="true">last 90 days</strong>' in html
    assert "?days=90&amp;csv=test-opens" in html


def test_an_unknown_period_falls_back_to_30_days(client, marketer):
    response = _get(client, marketer, reverse("admin:reports_dashboard"), days="1000")

    assert response.context["days"] == 30
