"""The XSS corpus: hostile text through every input path, then every admin page showing it.

Each payload goes in through the API (contact fields, event properties and their keys,
identify traits), an ESP webhook, the public sign-up form, the CSV import and a note;
then the admin pages that show that data are fetched as a superuser (who sees the most)
and parsed: no marker may appear where a browser would run it.
"""

import base64
import json
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from crm.models import ApiKey, ConsentEntry, ConsentTopic, Contact
from crm.services import api_key_create, consent_text_publish
from sequences.models import EspEvent
from tests.crm.test_admin import changeform_data
from tests.factories import EmailTemplateFactory
from tests.security.corpus import CONTEXTS, INERT_BY_DESIGN, injected, xss_payloads

pytestmark = pytest.mark.django_db

PAYLOADS = xss_payloads()
MARKERS = [marker for marker, _payload in PAYLOADS]
WEBHOOK_SECRET = "hook:s3cret"


@pytest.fixture(autouse=True)
def open_limits(settings):
    cache.clear()
    settings.PUBLIC_RATE_LIMITS = dict.fromkeys(settings.PUBLIC_RATE_LIMITS, 10_000)
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    yield
    cache.clear()


@pytest.fixture
def staff(client, superuser):
    client.force_login(superuser)
    return client


def api() -> APIClient:
    key = api_key_create(name="Shop backend", kind=ApiKey.Kind.SERVER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.key}")
    return client


def live(html: str) -> list[str]:
    return injected(html, MARKERS)


def page(client, url: str) -> str:
    response = client.get(url, secure=True)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_corpus_is_big_enough_and_the_detector_sees_each_payload_live():
    assert len(PAYLOADS) >= 40
    undetected = [
        marker
        for marker, payload in PAYLOADS
        if not any(injected(context.format(payload), [marker]) for context in CONTEXTS)
    ]
    assert set(undetected) <= INERT_BY_DESIGN


def feed_api(client: APIClient) -> None:
    for n, (_marker, payload) in enumerate(PAYLOADS):
        email = f"api{n}@example.com"
        client.post(
            "/api/v1/contacts/",
            {
                "email": email,
                "first_name": payload[:100],
                "last_name": payload[:100],
                "job_title": payload[:100],
                "properties": {payload: payload, "plan": payload},
            },
            format="json",
        )
        client.post(
            "/api/v1/events/",
            {
                "type": "page_viewed",
                "email": email,
                "properties": {payload: payload, "url": payload, "title": payload},
            },
            format="json",
        )
        client.post(
            "/api/v1/identify/",
            {"email": email, "traits": {"first_name": payload[:100], "job_title": payload[:100]}},
            format="json",
        )


def test_api_input_is_escaped_on_every_admin_page(staff):
    feed_api(api())
    contacts = list(Contact.objects.filter(email__startswith="api"))
    assert len(contacts) == len(PAYLOADS)

    pages = {"contacts": page(staff, reverse("admin:crm_contact_changelist"))}
    pages["activities"] = page(staff, reverse("admin:crm_activity_changelist"))
    for contact in contacts:
        url = reverse("admin:crm_contact_change", args=[contact.pk])
        pages[url] = page(staff, url)
    for activity in contacts[0].activities.all()[:3]:
        url = reverse("admin:crm_activity_change", args=[activity.pk])
        pages[url] = page(staff, url)

    assert {name: live(html) for name, html in pages.items() if live(html)} == {}


def test_webhook_fields_are_escaped_in_the_esp_event_admin(staff):
    client = Client()
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    for n, (_marker, payload) in enumerate(PAYLOADS):
        body = {
            "RecordType": "Bounce",
            "ID": 1000 + n,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Tag": payload,
            "MessageID": f"00000000-0000-0000-0000-{n:012d}",
            "Metadata": {payload: payload},
            "Description": payload,
            "Details": payload,
            "Email": f"hook{n}@example.com",
            "BouncedAt": "2026-03-10T10:05:00Z",
            "Subject": payload,
        }
        response = client.post(
            "/anymail/postmark/tracking/",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
            secure=True,
        )
        assert response.status_code == 200

    pages = {"events": page(staff, reverse("admin:sequences_espevent_changelist"))}
    for event in EspEvent.objects.all():
        url = reverse("admin:sequences_espevent_change", args=[event.pk])
        pages[url] = page(staff, url)

    assert EspEvent.objects.count() == len(PAYLOADS)
    assert {name: live(html) for name, html in pages.items() if live(html)} == {}


def test_sign_up_csv_import_and_notes_are_escaped_on_the_contact_pages(staff):
    topic = ConsentTopic.objects.get(key="newsletter")
    consent_text_publish(topic=topic, text="Yes, send me the newsletter.")
    visitor = Client()
    for n, (_marker, payload) in enumerate(PAYLOADS):
        mail.outbox = []
        visitor.post(
            "/subscribe/",
            {"email": f"form{n}@example.com", "first_name": payload[:100], "topic": "newsletter"},
            secure=True,
        )
        path = re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", mail.outbox[0].body)
        visitor.post(path.group(1), secure=True, HTTP_USER_AGENT=payload)
    rows = "".join(
        f"csv{n}@example.com,{json.dumps(payload[:100])},{json.dumps(payload[:100])}\n"
        for n, (_marker, payload) in enumerate(PAYLOADS)
    )
    upload = SimpleUploadedFile(
        "list.csv", ("email,first_name,job_title\n" + rows).encode(), content_type="text/csv"
    )
    preview = staff.post(
        reverse("admin:crm_contact_import"),
        {
            "import_file": upload,
            "format": "0",
            "resource": "0",
            "source": PAYLOADS[0][1],
            "lawful_basis": ConsentEntry.LawfulBasis.CONSENT,
        },
        secure=True,
    )
    pages = {"import preview": preview.content.decode()}
    assert "confirm_form" in preview.context, re.findall(
        r"errorlist[^<]*<li>([^<]*)", pages["import preview"]
    )
    form = preview.context["confirm_form"]
    confirm = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    staff.post(reverse("admin:crm_contact_process_import"), confirm, secure=True, follow=True)

    contacts = list(Contact.objects.filter(email__regex=r"^(form|csv)"))
    assert ConsentEntry.objects.filter(contact__email__startswith="form").count() == len(PAYLOADS)
    assert len(contacts) == 2 * len(PAYLOADS)
    for contact, (_marker, payload) in zip(contacts, PAYLOADS * 2, strict=True):
        url = reverse("admin:crm_contact_change", args=[contact.pk])
        form_page = staff.get(url, secure=True)

        data = changeform_data(form_page)
        data.update({"notes-TOTAL_FORMS": "1", "notes-0-body": payload})
        staff.post(url, data, secure=True)
        pages[url] = page(staff, url)
    pages["contacts"] = page(staff, reverse("admin:crm_contact_changelist"))
    pages["notes"] = page(staff, reverse("admin:crm_note_changelist"))

    assert {name: live(html) for name, html in pages.items() if live(html)} == {}


def test_contact_data_is_escaped_in_the_template_preview(staff):
    feed_api(api())
    template = EmailTemplateFactory(
        html=EmailTemplateFactory.html
        + "<p>{{ contact.first_name|default:'there' }} {{ contact.properties.plan|default:'-' }}"
        + "</p><a href=\"{{ contact.properties.plan|default:'#' }}\">x</a>"
    )
    url = reverse("admin:sequences_emailtemplate_preview", args=[template.pk])

    pages = {
        contact.email: page(staff, f"{url}?contact={contact.pk}")
        for contact in Contact.objects.filter(email__startswith="api")
    }

    # The email is shown in a sandboxed iframe's srcdoc: escaped once for the attribute,
    # so the document inside must itself hold the payloads escaped.
    inside = {
        email: live(
            re.search(r'srcdoc="([^"]*)"', html)
            .group(1)
            .replace("&quot;", '"')
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
        )
        for email, html in pages.items()
    }
    assert {email: live(html) for email, html in pages.items() if live(html)} == {}
    assert {email: found for email, found in inside.items() if found} == {}


def test_a_template_authors_markup_stays_inside_the_preview_frame(staff):
    """The email is a document of its own: its HTML never becomes the admin page's."""
    contact = Contact.objects.create(email="frame@example.com")
    marker = "xss-frame"
    template = EmailTemplateFactory(
        html=EmailTemplateFactory.html + f'"><img src=x onerror=alert("{marker}")><p title="'
    )
    url = reverse("admin:sequences_emailtemplate_preview", args=[template.pk])

    html = page(staff, f"{url}?contact={contact.pk}")

    assert injected(html, [marker]) == []
    # Not even as raw text: inside srcdoc every < and " of the email is escaped.
    assert f'onerror=alert("{marker}")' not in html
    assert "<iframe sandbox=" in html


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert('xsslink')",
        " JaVaScRiPt:alert('xsslink')",
        "java\tscript:alert('xsslink')",
        "\x01javascript:alert('xsslink')",
        "data:text/html,<script>alert('xsslink')</script>",
        "vbscript:msgbox('xsslink')",
    ],
)
def test_script_urls_never_reach_an_email(link):
    from sequences.rendering import render_email

    template = EmailTemplateFactory.build(
        html="<a href=\"{{ site }}\">site</a><img src='{{ site }}'><a href={{ site }}>x</a>"
    )

    rendered = render_email(template, {"site": link})

    assert injected(rendered.html, ["xsslink"]) == []
    assert rendered.html.count('"#"') >= 2


def test_ordinary_links_are_kept():
    from sequences.rendering import render_email

    template = EmailTemplateFactory.build(
        html='<a href="{{ url }}">go</a> <a href="mailto:a@b.co">'
    )

    rendered = render_email(template, {"url": "https://example.com/a?b=1&c=2"})

    assert 'href="https://example.com/a?b=1&amp;c=2"' in rendered.html
    assert 'href="mailto:a@b.co"' in rendered.html
