"""A marketer in a real browser: a nested segment, a sequence built with the builder, activated.

Runs Debian's Chromium like tests/crm/segments/test_builder_browser.py (skipped locally
without /usr/bin/chromium, a failure under CI=true). The window is 1,366 px wide and no
page may scroll sideways. With SCREENSHOTS_DIR set (docs/img to refresh the docs, see
docs/sequences.md), the builder, the email step with its preview and the activation
review are saved there.
"""

import os
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.special import RunPython
from playwright.sync_api import expect

from crm.models import Segment
from sequences.models import Sequence
from tests.crm.segments.test_builder_browser import (  # noqa: F401 (fixture)
    CHROMIUM,
    LAUNCH_ARGS,
    migrated_rows_restored,
)
from tests.factories import ContactFactory, EmailTemplateFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTH = 1366
#: The data migrations that create the staff roles and grant their permissions.
ROLE_FUNCTIONS = {"create_roles", "grant", "grant_view", "add_permissions"}


@pytest.fixture
def roles(default_rows):
    """The staff roles with their permissions, as the migrations grant them.

    pytest-django runs transactional tests last, and each one's teardown flushes every
    table: after one that does not restore the migrations' rows, the Marketing group is
    gone and the marketer below would be refused. The role migrations are idempotent
    (get_or_create, add), so they simply run again, on the migrated state's models.
    """
    loader = MigrationLoader(connection)
    apps = loader.project_state().apps
    done = set()
    for leaf in loader.graph.leaf_nodes():
        for node in loader.graph.forwards_plan(leaf):
            if node in done or node[0] not in ("crm", "scoring", "sequences"):
                continue
            done.add(node)
            for operation in loader.graph.nodes[node].operations:
                if isinstance(operation, RunPython) and operation.code.__name__ in ROLE_FUNCTIONS:
                    operation.code(apps, None)


@pytest.fixture
def wide_page(migrated_rows_restored, roles, live_server, settings, monkeypatch):  # noqa: F811
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM}: apt-get install chromium."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.set_default_timeout(15_000)
        # Script errors and CSP refusals (a missing favicon is another matter).
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.script_errors = errors
        yield page
        connections.close_all()
        browser.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width} px wide"


def autocomplete(page, field: str, text: str) -> None:
    """Pick an option in one of Django's autocomplete (select2) fields by typing."""
    page.locator(f".field-{field} .select2-selection").click()
    page.locator(".select2-search__field").fill(text)
    page.locator(".select2-results__option", has_text=text).first.click()


def widget_condition(page, position: str):
    return page.locator(f'.sb-condition[data-position="{position}"]')


def add_condition(page) -> None:
    page.click('.sb-group[data-position=""] > .sb-group-actions > .sb-add-condition')


def test_a_marketer_builds_segment_and_sequence_previews_and_activates(wide_page, live_server):
    page = wide_page
    UserFactory(username="mara", groups=["Marketing"], email="mara@example.com")
    EmailTemplateFactory(key="welcome-email", name="Welcome email", subject="Welcome aboard")
    ContactFactory(email="keen@example.com", lifecycle_stage_id="engaged_lead", lead_score=60)
    ContactFactory(email="austrian@example.com", lifecycle_stage_id="engaged_lead", country="AT")
    ContactFactory(email="other@example.com", lifecycle_stage_id="new_lead", lead_score=90)
    base = live_server.url

    page.goto(f"{base}/admin/login/?next=/admin/crm/segment/add/")
    page.fill("#id_username", "mara")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")

    # A nested segment: engaged leads with (lead score ≥ 50 or country AT).
    page.fill("#id_name", "Engaged prospects")
    page.fill("#id_key", "engaged-prospects")
    add_condition(page)
    widget_condition(page, "1").locator("select.sb-field").select_option("lifecycle_stage")
    widget_condition(page, "1").get_by_label("Engaged lead").check()
    page.click('.sb-group[data-position=""] > .sb-group-actions > .sb-add-group')
    widget_condition(page, "2.1").locator("select.sb-field").select_option("lead_score")
    widget_condition(page, "2.1").locator("input.sb-number-value").fill("50")
    page.click('.sb-group[data-position="2"] > .sb-group-actions > .sb-add-condition')
    widget_condition(page, "2.2").locator("select.sb-field").select_option("country")
    widget_condition(page, "2.2").locator("input.sb-texts").fill("AT")
    page.click("#segment-preview-button")
    expect(page.locator("#segment-preview-count")).to_have_text("2")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_be_visible()

    # The sequence's settings, then the builder.
    page.goto(f"{base}/admin/sequences/sequence/add/")
    page.fill("#id_name", "Welcome engaged prospects")
    page.fill("#id_key", "welcome-prospects")
    page.select_option("#id_owner", label="mara")
    page.select_option("#id_topic", label="Newsletter")
    page.select_option("#id_on_send_failure", "continue")
    page.click("input[name=_save]")
    expect(page.locator(".seq-flow")).to_be_visible()
    fits(page)

    # Trigger: entering the segment.
    page.click(".seq-add-trigger")
    page.click('.seq-type-menu a[data-type="segment_entered"]')
    autocomplete(page, "segment", "Engaged prospects")
    page.check("#id_include_existing_members")
    page.click("input[name=_save]")
    expect(page.locator(".seq-flow-trigger")).to_contain_text("Engaged prospects")

    # A wait of two days.
    page.locator(".seq-add-step").first.click()
    page.click('.seq-type-menu a[data-type="wait_duration"]')
    page.fill("#id_key", "pause")
    page.fill("#id_amount", "2")
    page.select_option("#id_unit", "days")
    page.click("input[name=_save]")
    expect(page.locator("#step-pause .seq-summary")).to_have_text("Wait 2 days")

    # The email, its template found by search.
    page.locator(".seq-add-step").last.click()
    page.click('.seq-type-menu a[data-type="send_email"]')
    page.fill("#id_key", "welcome")
    autocomplete(page, "template", "Welcome email")
    page.click("input[name=_save]")
    expect(page.locator("#step-welcome .seq-summary")).to_have_text("Send “Welcome email”")

    # A branch on the lead score, built with the segment builder widget.
    page.locator(".seq-add-step").last.click()
    page.click('.seq-type-menu a[data-type="branch_if"]')
    page.fill("#id_key", "hot-lead")
    add_condition(page)
    widget_condition(page, "1").locator("select.sb-field").select_option("lead_score")
    widget_condition(page, "1").locator("select.sb-operator").select_option("gte")
    widget_condition(page, "1").locator("input.sb-number-value").fill("80")
    page.click("input[name=_save]")
    expect(page.locator("#step-hot-lead .seq-summary")).to_have_text("If lead score is at least 80")
    expect(page.locator("#step-hot-lead .seq-exit")).to_have_count(2)

    # The goal: an order.
    page.click('a[href$="?edit=goals"]')
    add_condition(page)
    widget_condition(page, "1").locator("select.sb-field").select_option("activity")
    widget_condition(page, "1").locator("input.sb-kind").fill("order_placed")
    page.click("input[name=_save]")
    expect(page.locator(".seq-flow-end")).to_contain_text("order_placed")
    expect(page.locator(".seq-invalid")).to_have_count(0)
    fits(page)
    shot(page, "sequence-builder.png")
    page.emulate_media(color_scheme="dark")  # the admin's own colours: dark mode works too
    shot(page, "sequence-builder-dark.png")
    page.emulate_media(color_scheme="light")

    # Preview the email from its step.
    page.locator("#step-welcome .seq-edit").click()
    expect(page.locator(".seq-preview-subject")).to_have_text("Welcome aboard")
    fits(page)
    shot(page, "sequence-builder-email.png")

    # Activate, with the review first.
    page.click(".seq-activate-link")
    expect(page.locator(".review-first-send")).to_contain_text(
        "First email: step welcome, after 2 days."
    )
    expect(page.locator(".review-entries")).to_contain_text("Engaged prospects")
    expect(page.locator(".review-enter-now")).to_have_text("2 contacts would enter now.")
    fits(page)
    shot(page, "sequence-activate-review.png")
    page.click("input[name=confirm]")
    expect(page.locator(".messagelist .success")).to_contain_text("is active, version 1")

    # Back on the sequence's own page: settings and the read-only flow, no trigger table.
    expect(page.locator("#sequence-flow")).to_be_visible()
    fits(page)

    sequence = Sequence.objects.get(key="welcome-prospects")
    assert sequence.status == Sequence.Status.ACTIVE
    assert [s["key"] for s in sequence.current_version.steps] == ["pause", "welcome", "hot-lead"]
    assert sequence.goal_conditions == {
        "match": "any",
        "conditions": [
            {
                "match": "all",
                "conditions": [{"field": "kind", "operator": "in", "value": ["order_placed"]}],
            }
        ],
    }
    assert sequence.triggers.get().segment == Segment.objects.get(key="engaged-prospects")
    assert sequence.steps.get(key="hot-lead").config == {
        "condition": {
            "match": "all",
            "conditions": [{"field": "lead_score", "operator": "gte", "value": 80}],
        }
    }
    assert sequence.enrollments.count() == 2  # the segment's members, at activation
    assert page.script_errors == []
