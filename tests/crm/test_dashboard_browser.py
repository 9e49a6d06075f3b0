"""The admin home per role and the reports dashboard in Chromium at 1,366 px, light and dark.

Checks that nothing scrolls sideways and saves the screenshots docs/admin.md and
docs/reporting.md show (docs/img/dashboard-*.png). Runs Debian's Chromium; without
/usr/bin/chromium the test is skipped locally and fails under CI=true.
"""

import datetime
import os

import pytest
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from crm.models import LifecycleStage
from scoring.models import Handoff
from sequences.models import Enrollment, EspEvent, Sequence
from tests.crm.segments.test_builder_browser import (  # noqa: F401 (fixture)
    CHROMIUM,
    LAUNCH_ARGS,
    migrated_rows_restored,
)
from tests.factories import (
    ContactFactory,
    EnrollmentFactory,
    EspEventFactory,
    HandoffFactory,
    OutboundMessageFactory,
    SegmentCountSnapshotFactory,
    SegmentFactory,
    SequenceVersionFactory,
    UserFactory,
)
from tests.screenshots import screenshots_folder

IMAGES = screenshots_folder()
WIDTH, HEIGHT = 1366, 900

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _ago(days: float = 0, minutes: float = 0) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days, minutes=minutes)


@pytest.fixture
def browser(migrated_rows_restored, live_server, settings, monkeypatch):  # noqa: F811
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # imported here: optional locally

    # Playwright's sync API keeps an event loop running (stack.md, pitfall 3).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    cache.clear()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        connections.close_all()
        browser.close()


def _demo_data(seller) -> None:
    """A few weeks of everything the dashboards show, in known amounts."""
    for name, growth in (("Trial users", 6), ("Newsletter readers", 3), ("Customers", 1)):
        segment = SegmentFactory(name=name, member_count=100 + 30 * growth)
        for day in range(30, -1, -3):
            SegmentCountSnapshotFactory(
                segment=segment, counted_at=_ago(day), member_count=100 + (30 - day) * growth
            )
    for name, sends in (("Welcome series", 12), ("Cart recovery", 6)):
        version = SequenceVersionFactory(sequence__name=name, sequence__status="active")
        for n in range(sends):
            enrollment = EnrollmentFactory(
                version=version,
                enrolled_at=_ago(n % 6),
                state=Enrollment.State.CONVERTED if n % 4 == 0 else Enrollment.State.ACTIVE,
                ended_at=_ago(n % 6) if n % 4 == 0 else None,
            )
            message = OutboundMessageFactory(
                enrollment=enrollment, claimed_at=_ago(n % 6), sent_at=_ago(n % 6)
            )
            EspEventFactory(message=message, kind=EspEvent.Kind.DELIVERED, occurred_at=_ago(n % 6))
            if n % 3 == 0:
                EspEventFactory(
                    message=message, kind=EspEvent.Kind.CLICKED, occurred_at=_ago(n % 6)
                )
    # A 14-day complaint history: one bad day above 0.3%, the rest below 0.1%.
    for day in range(14):
        for _ in range(20):
            message = OutboundMessageFactory(claimed_at=_ago(day), sent_at=_ago(day))
            EspEventFactory(message=message, kind=EspEvent.Kind.DELIVERED, occurred_at=_ago(day))
        if day == 4:
            EspEventFactory(message=message, kind=EspEvent.Kind.COMPLAINT, occurred_at=_ago(day))
    for n, (owner, minutes_left) in enumerate(
        ((seller, -12), (None, 25), (seller, 240), (None, 7))
    ):
        HandoffFactory(
            owner=owner,
            status=Handoff.Status.CLAIMED if owner else Handoff.Status.NEW,
            sla_due_at=_ago(minutes=-minutes_left),
            score=55 + n * 9,
            contact=ContactFactory(
                first_name=f"Lead{n}", last_name="Example", lead_score=55 + n * 9
            ),
        )
    for week in range(8):
        handoff = HandoffFactory(sla_due_at=_ago(days=week * 7 + 1))
        contacted = _ago(days=week * 7 + 1, minutes=30 if week % 3 else -30)
        Handoff.objects.filter(pk=handoff.pk).update(
            created_at=_ago(days=week * 7 + 1, minutes=60),
            contacted_at=contacted,
            status=Handoff.Status.CONTACTED,
        )
    for n in range(40):
        ContactFactory(lead_score=(n * 13) % 120)
    for n in range(5):
        ContactFactory(
            first_name=f"Customer{n}",
            last_name="Quiet",
            lifecycle_stage_id=LifecycleStage.Key.ACTIVE_CUSTOMER,
            last_engaged_at=_ago(days=15 + n * 8),
            lead_score=20 + n,
        )
    assert Sequence.objects.filter(status="active").count() == 2


def _open(browser, base_url: str, username: str, path: str, *, dark: bool):
    page = browser.new_page(
        viewport={"width": WIDTH, "height": HEIGHT}, color_scheme="dark" if dark else "light"
    )
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/admin/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    return page


def _fits(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_the_home_and_reports_fit_1366px_for_every_role_in_light_and_dark(browser, live_server):
    # One test: a second transactional test would start without the roles' permissions.
    seller = UserFactory(username="sam", first_name="Sam", groups=["Sales"])
    UserFactory(username="mara", groups=["Marketing"])
    UserFactory(username="cleo", groups=["Customer success"])
    _demo_data(seller)
    IMAGES.mkdir(parents=True, exist_ok=True)
    pages = [
        ("mara", "/admin/", "home-marketing", "#panel-sequence-results"),
        ("sam", "/admin/", "home-sales", "#panel-handoff-queue"),
        ("cleo", "/admin/", "home-success", "#panel-customers-at-risk"),
        ("mara", "/admin/reports/dashboard/", "reports", "#panel-deliverability-trend"),
    ]

    for username, path, name, panel in pages:
        for dark in (False, True):
            page = _open(browser, live_server.url, username, path, dark=dark)

            assert page.locator(panel).is_visible(), (name, dark)
            assert page.locator(".nsdash-error").count() == 0, (name, dark)
            assert _fits(page), f"{name} scrolls sideways at {WIDTH} px (dark={dark})"
            suffix = "-dark" if dark else ""
            page.screenshot(path=str(IMAGES / f"dashboard-{name}{suffix}.png"), full_page=True)
            page.close()

    # The deliverability report has its own entry in the Reports menu.
    page = _open(browser, live_server.url, "mara", "/admin/", dark=False)
    page.click(".app-reports th a:text('Deliverability')")
    page.wait_for_selector("#nschart-complaint-rate")
    assert "Reports" in page.locator(".breadcrumbs").inner_text()
    assert _fits(page)
    page.close()
