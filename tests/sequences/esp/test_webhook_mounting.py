"""Only the configured ESP's tracking webhook is mounted, and a malformed body it sends is a
logged 400, never a 500 the ESP would retry forever (issue 9, finding 8)."""

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import webhook_esps_for
from sequences.models import EspEvent
from sequences.webhooks import esp_tracking_urls
from tests.sequences.esp.conftest import AUTH

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/anymail/mailgun/tracking/x/",
        "/anymail/mandrill/tracking/",
        "/anymail/postal/tracking/",
        "/anymail/sparkpost/tracking/",
        "/anymail/postmark/inbound/",
        "/anymail/amazon_ses/inbound/",
    ],
)
def test_webhooks_of_esps_that_are_not_configured_are_not_there(client, path):
    # The test settings mount postmark, mailgun, sendgrid and amazon_ses (ESP_WEBHOOKS).
    response = client.post(path, data="{}", content_type="application/json", **AUTH)

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("backend", "esps"),
    [
        ("anymail.backends.postmark.EmailBackend", ["postmark"]),
        ("anymail.backends.amazon_ses.EmailBackend", ["amazon_ses"]),
        ("anymail.backends.console.EmailBackend", []),
        ("anymail.backends.test.EmailBackend", []),
        ("django.core.mail.backends.smtp.EmailBackend", []),
    ],
)
def test_the_mounted_webhook_follows_the_email_backend(backend, esps):
    assert webhook_esps_for(backend) == esps


def test_only_the_named_esps_get_a_url():
    names = [pattern.name for pattern in esp_tracking_urls(["postmark"])]

    assert names == ["postmark_tracking_webhook"]


def test_an_esp_anymail_does_not_know_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="ESP_WEBHOOKS names postmarc"):
        esp_tracking_urls(["postmarc"])


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '"just a string"', '{"RecordType": "Bounce", "BouncedAt": 7}', "\xff"],
)
def test_a_malformed_but_authenticated_postmark_body_is_a_logged_400(client, caplog, body):
    with caplog.at_level(logging.WARNING, logger="sequences.webhooks"):
        response = client.post(
            "/anymail/postmark/tracking/", data=body, content_type="application/json", **AUTH
        )

    assert response.status_code == 400
    assert "malformed Postmark webhook" in caplog.text
    assert not EspEvent.objects.exists()


def test_a_body_that_fails_authentication_is_still_refused_as_before(client):
    response = client.post(
        "/anymail/postmark/tracking/", data="{}", content_type="application/json"
    )

    assert response.status_code == 400
