"""Rising intent in a real browser: the handoff queue's badge and the contact page's panel.

Also how docs/img/intent-*.png are made: `SCREENSHOTS_DIR=docs/img pytest
tests/scoring/test_intent_browser.py`.
"""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from scoring.models import RisingIntent
from tests.crm.segments import test_builder_browser as builder
from tests.factories import ContactFactory, HandoffFactory, UserFactory
from tests.screenshots import screenshots_folder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
migrated_rows_restored = builder.migrated_rows_restored
browser_page = builder.browser_page


def test_sales_sees_rising_intent_in_the_queue_and_on_the_contact(browser_page, live_server):
    page = browser_page
    now = timezone.now()
    contact = ContactFactory(first_name="Mara", last_name="Jensen", email="mara@example.com")
    HandoffFactory(contact=contact)
    HandoffFactory(contact=ContactFactory(first_name="Tom", last_name="Berg"))
    RisingIntent.objects.create(
        contact=contact,
        recent_points=100,
        weekly_baseline=6.3,
        behaviours=[
            {"rule": "pricing-page", "label": "Pricing page viewed", "count": 4, "points": 40},
            {"rule": "demo-request", "label": "Demo requested", "count": 1, "points": 40},
            {"rule": "email-click", "label": "Email link clicked", "count": 4, "points": 20},
        ],
        flagged_at=now - datetime.timedelta(hours=5),
        computed_at=now,
    )
    UserFactory(username="sam", is_superuser=True, is_staff=True)
    page.set_viewport_size({"width": 1366, "height": 700})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/scoring/handoff/?assigned=everyone")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    badge = page.locator("#result_list .intent-badge")
    expect(badge).to_have_count(1)
    expect(page.locator("#changelist-filter")).to_contain_text("Rising intent")
    page.locator("#changelist").screenshot(path=screenshots_folder() / "intent-queue.png")

    page.goto(f"{live_server.url}/admin/crm/contact/{contact.pk}/change/")
    panel = page.locator(".rising-intent").first
    expect(panel).to_contain_text("Engagement rose from 6.3 points a week to 100 in the last 7")
    expect(panel).to_contain_text("Pricing page viewed ×4, Demo requested, Email link clicked ×4")
    section = page.locator(".rising-intent").locator("xpath=..")
    section.scroll_into_view_if_needed()
    section.screenshot(path=screenshots_folder() / "intent-contact.png")
