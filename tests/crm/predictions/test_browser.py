"""Predictions in a real browser: the contact panel and the calibration chart.

Also how docs/img/predictions-*.png are made: `SCREENSHOTS_DIR=docs/img pytest
tests/crm/predictions/test_browser.py` writes them there (otherwise to a temporary folder).
"""

import random
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.predictions import services
from crm.predictions.demo import demo_seed_orders
from crm.predictions.models import ContactPrediction
from tests.crm.segments import test_builder_browser as builder
from tests.factories import ContactFactory, UserFactory
from tests.screenshots import screenshots_folder

from .conftest import NOW

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# The segment builder's browser fixtures: Debian's Chromium against the live server.
migrated_rows_restored = builder.migrated_rows_restored
browser_page = builder.browser_page
DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"


def _shots(tmp_path: Path) -> Path:
    return screenshots_folder()


def test_customer_success_reads_a_prediction_and_its_calibration(
    browser_page, live_server, tmp_path
):
    page = browser_page
    contacts = ContactFactory.create_batch(300)
    demo_seed_orders(now=NOW, rng=random.Random(11), contacts=contacts)
    services.predictions_refit(now=NOW)
    services.calibration_run(holdout_days=90, now=NOW)
    prediction = ContactPrediction.objects.filter(reason="", frequency__gte=3).first()
    UserFactory(username="cass", groups=["Customer success"])
    page.set_viewport_size({"width": 1200, "height": 900})

    page.goto(
        f"{live_server.url}/admin/login/?next=/admin/crm/contact/{prediction.contact_id}/change/"
    )
    page.fill("#id_username", "cass")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    panel = page.locator(".prediction-panel")

    expect(panel).to_contain_text(f"{prediction.churn_risk_percent}%")
    expect(panel).to_contain_text("Predicted 12-month value")
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=_shots(tmp_path) / "predictions-contact.png")

    panel.get_by_role("link", name="How accurate is it?").click()
    chart = page.locator("#nschart-calibration")

    expect(chart.locator("svg")).to_be_visible()
    expect(page.locator("#calibration-error")).to_contain_text("%")
    page.locator("#calibration").screenshot(path=_shots(tmp_path) / "predictions-calibration.png")
