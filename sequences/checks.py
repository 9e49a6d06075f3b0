"""System checks: webhooks must be authenticated in production (reliability.md §8, 20)."""

from importlib.util import find_spec

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core.checks import Error, register

WEBHOOK_SECRET_MISSING = "nextstep.E001"
ESP_WEBHOOK_KEY_MISSING = "nextstep.E002"


@register()
def anymail_webhook_secret_check(app_configs=None, **kwargs) -> list[Error]:
    """Without WEBHOOK_SECRET anyone can post fake bounces and complaints: fail closed."""
    if settings.DEBUG:
        return []
    secret = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET")
    if secret:
        return []
    return [
        Error(
            "ANYMAIL_WEBHOOK_SECRET is not set: anyone could post fake ESP events.",
            hint="Set ANYMAIL_WEBHOOK_SECRET=user:password (random) and put it in the "
            "webhook URLs at the ESP (docs/deliverability.md).",
            id=WEBHOOK_SECRET_MISSING,
        )
    ]


@register()
def esp_webhook_key_check(app_configs=None, **kwargs) -> list[Error]:
    """The ESP we send with must have its own webhook verification configured too.

    Basic auth is one shared password; the ESP's signature (or, for SES, the expected
    SNS topic) is what ties an event to our account. Missing it fails closed.
    """
    if settings.DEBUG:
        return []
    problem = WEBHOOK_KEY_PROBLEMS.get(enabled_esp(), _no_problem)()
    if not problem:
        return []
    return [
        Error(
            problem,
            hint="See 'Connecting an ESP' in docs/deliverability.md.",
            id=ESP_WEBHOOK_KEY_MISSING,
        )
    ]


def enabled_esp() -> str:
    """anymail.backends.mailgun.EmailBackend → "mailgun"; "" for any non-anymail backend."""
    parts = settings.EMAIL_BACKEND.split(".")
    if len(parts) == 4 and parts[:2] == ["anymail", "backends"]:
        return parts[2]
    return ""


def _no_problem() -> str:
    return ""


def _mailgun_problem() -> str:
    # The same lookup as anymail's Mailgun webhook view: the API key is its fallback.
    api_key = get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default=None)
    signing_key = get_anymail_setting("webhook_signing_key", esp_name="Mailgun", default=api_key)
    if signing_key:
        return ""
    return "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY is not set: Mailgun webhooks are unsigned."


def _sendgrid_problem() -> str:
    key = get_anymail_setting(
        "tracking_webhook_verification_key", esp_name="SendGrid", allow_bare=True, default=None
    )
    if not key:
        return (
            "ANYMAIL_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY is not set: SendGrid "
            "events are not signature-checked."
        )
    if find_spec("cryptography") is None:
        # anymail needs it to load the key; without it every SendGrid webhook fails.
        return "SendGrid webhook signing needs django-anymail[sendgrid] (cryptography)."
    return ""


def _amazon_ses_problem() -> str:
    if not settings.SES_SNS_VERIFY_SIGNATURES:
        return "SES_SNS_VERIFY_SIGNATURES is off: anyone could forge SES events."
    if settings.SES_SNS_TOPIC_ARNS:
        return ""
    return (
        "SES_SNS_TOPIC_ARNS is not set: Amazon SNS signs every AWS account's messages, "
        "so without the expected topic any account's SES events would be accepted."
    )


WEBHOOK_KEY_PROBLEMS = {
    "mailgun": _mailgun_problem,
    "sendgrid": _sendgrid_problem,
    "amazon_ses": _amazon_ses_problem,
}


# --- What every marketing email carries (finding 18) ----------------------------------------

POSTAL_ADDRESS_MISSING = "nextstep.E003"
SITE_URL_NOT_HTTPS = "nextstep.E004"


@register()
def marketing_footer_check(app_configs=None, **kwargs) -> list[Error]:
    """Production mail needs a postal address and HTTPS links (unsubscribe, preferences).

    CAN-SPAM requires the address in every marketing email, and RFC 8058 one-click
    unsubscribe requires an HTTPS URL; both come from settings, so check them at start.
    """
    if settings.DEBUG:
        return []
    errors = []
    if not (settings.POSTAL_ADDRESS or "").strip():
        errors.append(
            Error(
                "POSTAL_ADDRESS is empty: marketing emails would go out without the "
                "sender's postal address.",
                hint='Set POSTAL_ADDRESS="Company Ltd, Street 1, City, Country".',
                id=POSTAL_ADDRESS_MISSING,
            )
        )
    if not (settings.SITE_URL or "").lower().startswith("https://"):
        errors.append(
            Error(
                f"SITE_URL must be an https:// URL in production (it is {settings.SITE_URL!r}): "
                "unsubscribe and preference links are built from it.",
                hint="Set SITE_URL=https://crm.example.com (the public address of this site).",
                id=SITE_URL_NOT_HTTPS,
            )
        )
    return errors
