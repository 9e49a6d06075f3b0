"""Production fails closed on unauthenticated ESP webhooks (reliability.md §8, 20)."""

import pytest

from sequences.checks import (
    ESP_WEBHOOK_KEY_MISSING,
    WEBHOOK_SECRET_MISSING,
    anymail_webhook_secret_check,
    esp_webhook_key_check,
)

MAILGUN = "anymail.backends.mailgun.EmailBackend"
SENDGRID = "anymail.backends.sendgrid.EmailBackend"
SES = "anymail.backends.amazon_ses.EmailBackend"
POSTMARK = "anymail.backends.postmark.EmailBackend"


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    settings.SES_SNS_TOPIC_ARNS = []
    return settings


def key_error_ids(settings, backend: str) -> list[str]:
    settings.EMAIL_BACKEND = backend
    return [error.id for error in esp_webhook_key_check()]


def test_a_missing_webhook_secret_is_an_error(production):
    production.ANYMAIL = {}

    assert [error.id for error in anymail_webhook_secret_check()] == [WEBHOOK_SECRET_MISSING]


@pytest.mark.parametrize("backend", [MAILGUN, SENDGRID, SES])
def test_an_enabled_esp_without_its_webhook_key_is_an_error(production, backend):
    assert key_error_ids(production, backend) == [ESP_WEBHOOK_KEY_MISSING]


def test_mailgun_with_a_signing_key_passes(production):
    production.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"] = "key-signing"

    assert key_error_ids(production, MAILGUN) == []


def test_mailgun_falls_back_to_the_api_key_as_anymail_does(production):
    production.ANYMAIL["MAILGUN_API_KEY"] = "key-api"

    assert key_error_ids(production, MAILGUN) == []


def test_sendgrid_with_a_verification_key_needs_cryptography_to_use_it(production, monkeypatch):
    production.ANYMAIL["SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"] = "MFkwEwYH..."
    monkeypatch.setattr("sequences.checks.find_spec", lambda name: object())
    assert key_error_ids(production, SENDGRID) == []

    monkeypatch.setattr("sequences.checks.find_spec", lambda name: None)
    assert key_error_ids(production, SENDGRID) == [ESP_WEBHOOK_KEY_MISSING]


def test_ses_with_expected_topics_passes(production):
    production.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:us-east-1:123456789012:ses-events"]

    assert key_error_ids(production, SES) == []


def test_ses_with_signature_checks_turned_off_is_an_error(production):
    production.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:us-east-1:123456789012:ses-events"]
    production.SES_SNS_VERIFY_SIGNATURES = False

    assert key_error_ids(production, SES) == [ESP_WEBHOOK_KEY_MISSING]


@pytest.mark.parametrize(
    "backend",
    [
        POSTMARK,
        "anymail.backends.console.EmailBackend",
        "django.core.mail.backends.smtp.EmailBackend",
    ],
)
def test_esps_with_basic_auth_only_need_nothing_more(production, backend):
    assert key_error_ids(production, backend) == []


def test_debug_skips_the_key_check(production):
    production.DEBUG = True

    assert key_error_ids(production, MAILGUN) == []
