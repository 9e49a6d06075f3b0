"""Sign-up with double opt-in: the hosted page, the embeddable endpoint, the confirmation."""

import re

import pytest
from django.core import mail
from django.test import Client

from crm.models import ConsentEntry, ConsentText, ConsentTopic, Contact, Suppression
from crm.services import consent_text_publish, suppression_add
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (Test)"


@pytest.fixture
def wording(db):
    topic = ConsentTopic.objects.get(key="newsletter")
    return consent_text_publish(topic=topic, text="Yes, send me the monthly newsletter.")


def sign_up(client, email="new@example.com", **extra):
    data = {"email": email, "first_name": "Nia", "topic": "newsletter", **extra}
    return client.post("/subscribe/", data, HTTP_USER_AGENT=UA)


def confirm_path() -> str:
    [message] = mail.outbox
    return re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", message.body).group(1)


def test_hosted_page_shows_the_topics_current_wording(client, wording):
    response = client.get("/subscribe/?topic=newsletter")

    assert response.status_code == 200
    assert wording.text in response.content.decode()


def test_sign_up_mails_only_a_confirmation_and_grants_nothing(wording):
    response = sign_up(Client(enforce_csrf_checks=True))  # embedded forms carry no CSRF token

    assert response.status_code == 200
    [message] = mail.outbox
    assert "confirm" in message.subject.lower()
    assert wording.text in message.body
    assert not ConsentEntry.objects.exists()
    assert not Contact.objects.exists()


def test_confirmation_get_shows_a_button_and_changes_nothing(client, wording):
    sign_up(client)
    path = confirm_path()

    responses = [client.get(path) for _ in range(3)]

    assert all(r.status_code == 200 for r in responses)
    assert '<form method="post">' in responses[0].content.decode()
    assert wording.text in responses[0].content.decode()
    assert not ConsentEntry.objects.exists()


def test_confirmation_post_grants_with_wording_ip_user_agent_and_time(client, wording):
    sign_up(client, email="  New@Example.com ")
    path = confirm_path()

    response = client.post(path, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 200
    entry = ConsentEntry.objects.get()
    assert entry.contact.email == "new@example.com"
    assert entry.method == ConsentEntry.Method.DOUBLE_OPT_IN and entry.is_granted
    assert entry.consent_text == wording
    assert entry.ip_address == "203.0.113.9" and entry.user_agent == UA
    assert entry.occurred_at is not None
    assert len(mail.outbox) == 1  # no subscription mail beyond the confirmation request


def test_confirmation_keeps_the_wording_shown_even_if_it_changed_since(client, wording):
    sign_up(client)
    consent_text_publish(topic=wording.topic, text="New wording.")

    client.post(confirm_path())

    assert ConsentEntry.objects.get().consent_text == wording


def test_answer_is_identical_for_known_unknown_and_suppressed_addresses(client, wording):
    ContactFactory(email="known@example.com")
    suppression_add(email="gone@example.com", reason=Suppression.Reason.ERASED, source="test")

    bodies = {
        sign_up(client, email=email).content
        for email in ("known@example.com", "unknown@example.com", "GONE@example.com")
    }

    assert len(bodies) == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["known@example.com", "unknown@example.com"]


def test_honeypot_gets_the_same_answer_and_no_mail(client, wording):
    normal = sign_up(client, email="a@example.com").content
    mail.outbox.clear()

    bot = sign_up(client, email="b@example.com", website="http://spam.example").content

    assert bot == normal
    assert mail.outbox == []


def test_tampered_confirmation_token_is_404(client, wording):
    sign_up(client)
    path = confirm_path()

    response = client.post(path[:-3] + "xx/")

    assert response.status_code == 404
    assert not ConsentEntry.objects.exists()


def test_sign_up_is_rate_limited(client, wording):
    statuses = [sign_up(client, email=f"p{n}@example.com").status_code for n in range(100)]

    assert statuses[0] == 200 and statuses[-1] == 429
    assert ConsentText.objects.exists()
