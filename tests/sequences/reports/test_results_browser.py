"""The revenue view in Chromium: a marketer opens the reports and a sequence's results.

Saves the screenshots docs/reporting.md shows (docs/img/reporting-*.png). Runs Debian's
Chromium like the segment builder's browser test, whose fixtures it uses.
"""

import random

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Contact, SegmentMembership
from sequences.reports.demo import demo_seed_revenue
from tests.crm.segments.test_builder_browser import (  # noqa: F401  (fixtures)
    browser_page,
    migrated_rows_restored,
)
from tests.factories import SegmentFactory, UserFactory
from tests.screenshots import screenshots_folder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
IMAGES = screenshots_folder()


def test_a_marketer_reads_the_dashboard_and_a_sequences_results(browser_page, live_server):  # noqa: F811
    page = browser_page
    # 1,366 px: the most common laptop width the admin is used at.
    page.set_viewport_size({"width": 1366, "height": 900})
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(email=f"buyer{n}@example.com", vouched_at=now, vouched_by="staff")
        for n in range(240)
    )
    lifted, _ = demo_seed_revenue(now=now, rng=random.Random(7), contacts=contacts)
    segment = SegmentFactory(key="early-buyers", name="Early buyers")
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, contact=contact, entered_at=now)
        for contact in contacts[:120]
    )
    UserFactory(username="mara", groups=["Marketing"])
    page.goto(f"{live_server.url}/admin/login/?next=/admin/reports/dashboard/")
    page.fill("#id_username", "mara")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    expect(page.locator("#panel-revenue-per-day svg")).to_be_visible()
    page.get_by_role("link", name="Sequence results").first.click()
    expect(page.locator(".nschart").first).to_be_visible()
    assert_fits_the_width(page)
    page.screenshot(path=str(IMAGES / "reporting-overview.png"), full_page=True)
    page.get_by_role("link", name=lifted.name).first.click()

    expect(page.locator("#revenue-lift")).to_contain_text("significant")
    expect(page.locator("#revenue-lift")).to_contain_text("Revenue per contact")
    expect(page.locator("figure", has_text="Funnel").first.locator("svg")).to_be_visible()
    expect(page.locator("select[name=segment]")).to_be_visible()
    assert_fits_the_width(page)
    page.screenshot(path=str(IMAGES / "reporting-results.png"))
    attribution = page.locator("figure", has_text="Attribution, two ways")
    attribution.scroll_into_view_if_needed()
    page.screenshot(path=str(IMAGES / "reporting-attribution.png"))
    expect(attribution.locator("table")).to_contain_text("Touch-based")
    holdout = page.locator("figure", has_text="never mailed")
    expect(holdout.first).to_contain_text("Revenue per contact")

    page.select_option("select[name=segment]", label="Early buyers")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#revenue-segment")).to_contain_text("Early buyers")

    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("#revenue-lift")).to_contain_text("significant")
    page.screenshot(path=str(IMAGES / "reporting-results-dark.png"))


def assert_fits_the_width(page):
    """Nothing makes the page scroll sideways at this width (wide tables scroll in their box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
