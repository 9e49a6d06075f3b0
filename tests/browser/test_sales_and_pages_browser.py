"""The salesperson's queue, the contact page and the import preview in a real Chromium.

At 1,366 px (a common laptop): a salesperson claims, accepts and recycles from the queue
and cannot work someone else's lead; the contact page and the import preview fit
without horizontal scrolling. Screenshots land in docs/img/ for docs/admin.md.
Runs Debian's Chromium, like tests/crm/segments/test_builder_browser.py (whose fixtures
this reuses): skipped locally without /usr/bin/chromium, a failure under CI=true.
"""

import datetime
import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import ConsentTopic
from crm.services import consent_grant, note_add
from scoring.models import Handoff
from tests.factories import (
    ActivityFactory,
    ConsentTextFactory,
    ConsentTopicFactory,
    ContactFactory,
    HandoffFactory,
    HandoffRuleFactory,
    UserFactory,
)
from tests.screenshots import screenshots_folder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 800
SCREENSHOTS = screenshots_folder()


def _sales_role() -> Group:
    """The Sales group with its migration-granted permissions.

    A transactional test's flush keeps permissions (post_migrate recreates them) but
    empties the groups the data migrations made; put this one back the same way.
    """
    group, _ = Group.objects.get_or_create(name="Sales")
    for app, module in (("crm", "0004_roles"), ("scoring", "0002_role_permissions")):
        roles = importlib.import_module(f"{app}.migrations.{module}").ROLES["Sales"]
        codenames = [f"{action}_{model}" for model, actions in roles.items() for action in actions]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label=app, codename__in=codenames)
        )
    return group


def _log_in(page, base_url: str, username: str, next_url: str) -> None:
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "password")
    page.click("input[type=submit]")


def _no_horizontal_scroll(page) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= WIDTH, f"the page is {scroll_width} px wide at {WIDTH} px"


def test_a_salesperson_claims_accepts_and_recycles_but_not_someone_elses_lead(
    browser_page, live_server
):
    page = browser_page
    _sales_role()
    seller = UserFactory(username="sam", first_name="Sam", last_name="Seller", groups=["Sales"])
    other = UserFactory(username="olga", first_name="Olga", last_name="Other", groups=["Sales"])
    rule = HandoffRuleFactory(name="Hot lead", sla_minutes=60)
    soon = timezone.now() + datetime.timedelta(minutes=25)
    reasons = [
        {"type": "signal", "label": "Pricing page viewed (3× in the last 7 days)"},
        {"type": "score", "label": "+40 Requested a demo of the enterprise plan", "points": 40},
        {"type": "score", "label": "+15 Job title is Head of Marketing", "points": 15},
    ]
    unassigned = HandoffFactory(
        rule=rule,
        owner=None,
        sla_due_at=soon,
        reasons=reasons,
        contact__first_name="Ann",
        contact__last_name="Unassigned",
    )
    mine = HandoffFactory(
        rule=rule,
        owner=seller,
        sla_due_at=soon + datetime.timedelta(minutes=5),
        reasons=reasons,
        contact__first_name="Ben",
        contact__last_name="Mine",
    )
    theirs = HandoffFactory(
        rule=rule,
        owner=other,
        sla_due_at=timezone.now() - datetime.timedelta(minutes=4),
        reasons=reasons,
        contact__first_name="Cid",
        contact__last_name="Theirs",
    )
    queue = "/admin/scoring/handoff/"
    _log_in(page, live_server.url, "sam", queue)

    # The queue: mine and unassigned by default, SLA timers in view, nothing cut off.
    expect(page.locator("#result_list")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("Ann Unassigned")
    expect(page.locator("#result_list")).to_contain_text("Ben Mine")
    expect(page.locator("#result_list")).not_to_contain_text("Cid Theirs")
    sla = page.locator("#result_list td.field-sla_column").first
    box = sla.bounding_box()
    assert box is not None and box["x"] + box["width"] <= WIDTH
    # Every column fits: the results box does not scroll sideways either.
    assert page.evaluate(
        "(() => { const r = document.querySelector('.results');"
        " return r.scrollWidth <= r.clientWidth; })()"
    ), "the queue's table is wider than its box"
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / "handoff-queue.png"))

    # A click anywhere on the row opens the handoff; claim it, then accept it.
    page.locator("#result_list tr", has_text="Ann Unassigned").locator(
        "td.field-score_column"
    ).click()
    page.wait_for_url(f"**/admin/scoring/handoff/{unassigned.pk}/change/")
    page.click("#sales-actions input[value='Claim']")
    expect(page.locator(".messagelist")).to_contain_text("claimed")
    page.click("#sales-actions input[value='Accept (open a deal)']")
    expect(page.locator(".messagelist")).to_contain_text("accepted")

    # Recycle my own lead, with a reason.
    page.goto(f"{live_server.url}/admin/scoring/handoff/{mine.pk}/change/")
    page.click("#sales-actions a:has-text('Recycle to nurture')")
    page.fill("#id_reason", "Budget frozen until Q3; nurture with case studies.")
    page.click("input[type=submit][value='Recycle to nurture']")
    expect(page.locator(".messagelist")).to_contain_text("recycled")

    # Someone else's lead: no buttons, and going round them is refused by the service.
    page.goto(f"{live_server.url}/admin/scoring/handoff/{theirs.pk}/change/")
    expect(page.locator("#handoff-owned-by-other")).to_contain_text("only they can work it")
    expect(page.locator("#sales-actions")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "handoff-someone-elses.png"))
    page.goto(f"{live_server.url}/admin/scoring/handoff/{theirs.pk}/act/recycle/")
    page.fill("#id_reason", "Taking it over")
    page.click("input[type=submit][value='Recycle to nurture']")
    expect(page.locator(".messagelist")).to_contain_text("only they can work it")

    states = dict(Handoff.objects.values_list("pk", "status"))
    assert states == {unassigned.pk: "accepted", mine.pk: "recycled", theirs.pk: "new"}
    assert Handoff.objects.get(pk=unassigned.pk).owner == seller
    assert Handoff.objects.get(pk=theirs.pk).owner == other


def test_the_contact_page_fits_1366_px_with_its_summary_on_top(browser_page, live_server):
    page = browser_page
    UserFactory(username="root", is_staff=True, is_superuser=True)
    owner = UserFactory(first_name="Olivia", last_name="Owner")
    contact = ContactFactory(
        first_name="Ada",
        last_name="Lovelace",
        email="ada.lovelace.with.a.rather.long.address@analytical-engines.example.com",
        owner=owner,
        lifecycle_stage_id="engaged_lead",
        lead_score=55,
        job_title="Head of Marketing Operations and Lifecycle Automation",
    )
    newsletter = ConsentTopic.objects.get(key="newsletter")
    consent_grant(contact=contact, topic=newsletter, method="form", source="pricing page form")
    note_add(contact=contact, body="Called: wants a demo for the whole team in May.")
    for path in ("/pricing", "/docs/sequences/a-very-long-page-name-about-branching-and-waits"):
        ActivityFactory(contact=contact, kind="page_viewed", properties={"path": path})
    _log_in(page, live_server.url, "root", f"/admin/crm/contact/{contact.pk}/change/")

    summary = page.locator("#contact-summary")
    expect(summary).to_contain_text("Engaged lead")
    expect(summary).to_contain_text("Newsletter: granted")
    expect(page.locator("#timeline")).to_contain_text("Viewed /pricing")
    expect(page.locator("#timeline")).to_contain_text("added a note")
    expect(page.locator(".submit-row")).to_have_count(1)
    expect(page.locator(".submit-row")).to_be_in_viewport()  # sticky: in view at the top too
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / "contact-page.png"))
    page.emulate_media(color_scheme="dark")
    page.locator("#consent").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "contact-page-consent-dark.png"))


def test_the_import_preview_fits_1366_px_with_confirm_below_it(browser_page, live_server, tmp_path):
    page = browser_page
    UserFactory(username="root", is_staff=True, is_superuser=True)
    ContactFactory(email="known@example.com", first_name="Known")
    columns = "email,first_name,last_name,job_title,company,country,time_zone,tags"
    rows = [
        "new.person@example.com,New,Person,Head of Growth and Lifecycle Marketing,"
        "Analytical Engines International Holdings,DE,Europe/Berlin,webinar;vip",
        "known@example.com,Known,Again,CTO,Acme,US,America/New_York,webinar",
        "not-an-email,Broken,Row,,,,,",
    ]
    csv_file = tmp_path / "webinar-attendees.csv"
    csv_file.write_text("\n".join([columns, *rows]) + "\n")
    webinars = ConsentTopicFactory(key="webinar-news", name="Webinar news")
    ConsentTextFactory(
        topic=webinars,
        version=1,
        text="Yes, email me about upcoming webinars, monthly. I can unsubscribe at any time.",
    )
    _log_in(page, live_server.url, "root", "/admin/crm/contact/import/")

    page.set_input_files("#id_import_file", str(csv_file))
    page.fill("#id_source", "Webinar 2026-10 attendee list")
    page.select_option("#id_consent_topic", str(webinars.pk))
    page.check("#id_consent_confirmed")
    page.click("input[type=submit][value='Submit']")

    expect(page.locator("#import-summary")).to_contain_text("2 rows will be imported")
    expect(page.locator("#import-summary")).to_contain_text("1 row is left out")
    preview = page.locator("#import-preview").bounding_box()
    confirm = page.locator("#import-confirm input[name=confirm]").bounding_box()
    assert preview is not None and confirm is not None
    assert confirm["y"] > preview["y"] + preview["height"], "Confirm comes after the preview"
    expect(page.locator("#import-preview thead")).to_contain_text("First name")
    expect(page.locator(".import-consent-wording")).to_contain_text("upcoming webinars")
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / "import-preview.png"), full_page=True)
