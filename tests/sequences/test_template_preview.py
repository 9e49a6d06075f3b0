"""The template preview: a contact picked by search, inbox line with preheader, desktop and
mobile widths, wrapped plain text, links on SITE_URL."""

import pytest
from django.urls import reverse

from tests.factories import ContactFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(db):
    return EmailTemplateFactory(
        subject="Hi {{ contact.first_name }}",
        preheader="Three tips for {{ contact.first_name }}",
        text="A very long line " * 20 + "\n{{ unsubscribe_url }}",
    )


def _url(template) -> str:
    return reverse("admin:sequences_emailtemplate_preview", args=[template.pk])


def test_a_contact_is_found_by_name_and_offered_as_a_link(client, marketer, template):
    ada = ContactFactory(first_name="Adaline", last_name="Quist", email="ada@example.com")
    ContactFactory(first_name="Bert", last_name="Other")
    client.force_login(marketer)

    body = client.get(_url(template), {"q": "Adaline"}).content.decode()

    matches = body[
        body.index('id="preview-matches"') : body.index("</ul>", body.index("preview-matches"))
    ]
    assert f"?contact={ada.pk}&amp;q=Adaline" in matches
    assert "ada@example.com" in matches
    assert "Bert" not in matches


def test_the_preview_shows_preheader_both_widths_and_wrapped_text(
    client, marketer, template, settings
):
    settings.SITE_URL = "http://127.0.0.1:8123"
    contact = ContactFactory(first_name="Adaline")
    client.force_login(marketer)

    body = client.get(_url(template), {"contact": contact.pk}).content.decode()

    inbox = body[body.index('id="preview-inbox"') :]
    assert "Hi Adaline" in inbox
    assert "Three tips for Adaline" in inbox
    assert "Desktop (600 px)" in body and "Mobile (375 px)" in body
    assert body.count("<iframe") == 2
    assert 'class="preview-text"' in body and "sequences/template_preview.css" in body
    assert "http://127.0.0.1:8123/" in body[body.index('id="preview-text"') :]


def test_an_unknown_contact_id_says_so(client, marketer, template):
    client.force_login(marketer)

    body = client.get(_url(template), {"contact": "999999"}).content.decode()

    assert "That contact does not exist" in body
