"""System checks: webhooks must be authenticated in production (reliability.md §8, 20)."""

from django.conf import settings
from django.core.checks import Error, register

WEBHOOK_SECRET_MISSING = "nextstep.E001"


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
