"""The condition builder on the scoring rule page, in Chromium: the reusable widget at work.

A marketer builds an engagement rule's condition (an activity property) with the same
builder as segments, through its data-condition-builder entry point, and saves it.
"""

import pytest
from playwright.sync_api import expect

from scoring.models import ScoringRule
from tests.crm.segments.test_builder_browser import (  # noqa: F401  (fixtures)
    browser_page,
    migrated_rows_restored,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TOP = '.condition-builder .sb-group[data-position=""]'


def test_a_marketer_builds_an_engagement_rule_with_the_condition_builder(
    browser_page,  # noqa: F811
    live_server,
):
    page = browser_page
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    UserFactory(username="mara", groups=["Marketing"])
    page.goto(f"{live_server.url}/admin/login/?next=/admin/scoring/scoringrule/add/")
    page.fill("#id_username", "mara")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector(TOP)
    page.fill("#id_key", "pricing")
    page.fill("#id_name", "Pricing page viewed")
    page.fill("#id_points", "20")
    page.fill("#id_activity_kind", "page_viewed")

    page.click(f"{TOP} > .sb-group-actions > .sb-add-condition")
    condition = page.locator('.condition-builder .sb-condition[data-position="1"]')
    condition.locator("select.sb-field").select_option("property")
    condition.locator("input.sb-key").fill("path")
    condition.locator("select.sb-operator").select_option("contains")
    condition.locator(".sb-value input").fill("/pricing")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist .success")).to_be_visible()
    assert ScoringRule.objects.get(key="pricing").conditions == {
        "match": "all",
        "conditions": [
            {"field": "property", "operator": "contains", "value": "/pricing", "key": "path"}
        ],
    }
    assert errors == []
