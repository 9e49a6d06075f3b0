"""The revenue view in Chromium: a marketer opens the reports and a sequence's results.

Saves the screenshots docs/reporting.md shows (docs/img/reporting-*.png). Runs Debian's
Chromium like the segment builder's browser test, whose fixtures it uses.
"""

import random

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Contact
from sequences.reports.demo import demo_seed_revenue
from tests.crm.segments.test_builder_browser import (  # noqa: F401  (fixtures)
    browser_page,
    migrated_rows_restored,
)
from tests.factories import UserFactory
from tests.screenshots import screenshots_folder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
IMAGES = screenshots_folder()


def test_a_marketer_reads_the_dashboard_and_a_sequences_results(browser_page, live_server):  # noqa: F811
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1600})
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(email=f"buyer{n}@example.com", vouched_at=now, vouched_by="staff")
        for n in range(240)
    )
    lifted, _ = demo_seed_revenue(now=now, rng=random.Random(7), contacts=contacts)
    UserFactory(username="mara", groups=["Marketing"])
    page.goto(f"{live_server.url}/admin/login/?next=/admin/reports/dashboard/")
    page.fill("#id_username", "mara")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    expect(page.locator("#panel-revenue-per-day svg")).to_be_visible()
    page.get_by_role("link", name="Sequence results").first.click()
    expect(page.locator(".nschart").first).to_be_visible()
    page.screenshot(path=str(IMAGES / "reporting-overview.png"))
    page.get_by_role("link", name=lifted.name).first.click()

    expect(page.locator("#revenue-lift")).to_contain_text("significant")
    expect(page.locator("figure", has_text="Funnel").first.locator("svg")).to_be_visible()
    page.screenshot(path=str(IMAGES / "reporting-results.png"))
    attribution = page.locator("figure", has_text="Attribution, two ways")
    attribution.scroll_into_view_if_needed()
    page.screenshot(path=str(IMAGES / "reporting-attribution.png"))
    expect(attribution.locator("table")).to_contain_text("Touch-based")
