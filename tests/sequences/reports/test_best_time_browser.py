"""The best-time table on a sequence's results page, in a real browser.

Also how docs/img/best-time-results.png is made: `SCREENSHOTS_DIR=docs/img pytest
tests/sequences/reports/test_best_time_browser.py`.
"""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.crm.segments import test_builder_browser as builder
from tests.factories import SequenceFactory, SequenceVersionFactory, UserFactory
from tests.screenshots import screenshots_folder
from tests.sequences.reports.test_best_time import STEPS, _mailed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
migrated_rows_restored = builder.migrated_rows_restored
browser_page = builder.browser_page


def test_marketing_reads_best_time_vs_not(browser_page, live_server, monkeypatch):
    page = browser_page
    monkeypatch.setattr(
        "tests.sequences.reports.test_best_time.NOW", timezone.now() - datetime.timedelta(days=2)
    )
    version = SequenceVersionFactory(sequence=SequenceFactory(name="Trial nurture"), steps=STEPS)
    for n in range(40):
        _mailed(version, "best_time_contact", opened=n < 22, clicked=n < 7, converted=n < 3)
    for n in range(12):
        _mailed(version, "best_time_audience", opened=n < 5, clicked=n < 1)
    for n in range(25):
        _mailed(version, "best_time_outside_window", opened=n < 10, clicked=n < 2, converted=n < 1)
    UserFactory(username="mia", is_superuser=True, is_staff=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    url = f"/admin/revenue/sequenceresult/{version.sequence.pk}/change/"
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    table = page.locator("#nschart-best-time")
    expect(table).to_contain_text("At the contact's own best hour")
    expect(table).to_contain_text("55.0%")
    table.scroll_into_view_if_needed()
    table.screenshot(path=screenshots_folder() / "best-time-results.png")
