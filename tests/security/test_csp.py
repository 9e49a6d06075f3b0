"""Finding 11: a Content-Security-Policy on admin, API docs and public pages, and they work.

The header test runs everywhere; the browser test loads the pages in Debian's Chromium
(as the segment builder test does) and fails on any CSP violation or script error.
"""

import re

import pytest
from django.urls import reverse

from tests.crm.segments.test_builder_browser import (  # noqa: F401  (fixtures)
    browser_page,
    migrated_rows_restored,
)
from tests.factories import ContactFactory, EmailTemplateFactory, UserFactory

PAGES = ("/admin/", "/admin/crm/contact/", "/api/v1/docs/", "/subscribe/")


def script_src(response) -> str:
    policy = response["Content-Security-Policy"]
    return next(part for part in policy.split(";") if part.strip().startswith("script-src"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_policy_without_inline_scripts(client, superuser, path):
    client.force_login(superuser)

    response = client.get(path, secure=True)

    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in script_src(response)
    assert "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


@pytest.mark.django_db
def test_the_api_docs_inline_script_carries_the_responses_nonce(client):
    response = client.get("/api/v1/docs/", secure=True)

    nonce = re.search(r"'nonce-([^']+)'", script_src(response)).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
    assert inline and all(f'nonce="{nonce}"' in attributes for attributes in inline)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_docs_and_public_pages_work_under_the_policy(browser_page, live_server):  # noqa: F811
    page = browser_page
    problems = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text
            or (message.type == "error" and "Failed to load resource" not in message.text)
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    UserFactory(username="root", is_superuser=True)
    contact = ContactFactory()
    template = EmailTemplateFactory()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")

    for path in (
        reverse("admin:crm_contact_change", args=[contact.pk]),
        reverse("admin:crm_segment_add"),
        reverse("admin:crm_contact_export"),
        reverse("admin:sequences_emailtemplate_preview", args=[template.pk])
        + f"?contact={contact.pk}",
        reverse("admin:sequences_emailtemplate_change", args=[template.pk]),
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")
    page.goto(f"{live_server.url}/subscribe/")
    page.wait_for_load_state("load")
    zone = page.locator('input[name="time_zone"]').input_value()

    assert problems == []
    assert zone  # filled by crm/static/crm/timezone.js, which the policy allows
