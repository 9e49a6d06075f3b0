"""Read Nextstep's configuration from environment variables.

Every setting that differs between a laptop and production comes from the
environment (DESIGN.md, "Configuration"); these helpers parse it with errors an
ops engineer can act on.
"""

import json
import os
import re
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
ANYMAIL_PREFIX = "ANYMAIL_"


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Return the boolean value of an env var such as DEBUG=1 or DEBUG=false."""
    raw = environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false or yes/no.")


def env_int(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    """Return the integer value of an env var."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """Return a comma-separated env var as a list, without blanks."""
    raw = environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_setting_value(raw: str) -> object:
    """Turn an env var's text into the value anymail expects.

    true/false become booleans, JSON objects and lists are decoded (for settings
    such as ANYMAIL_SEND_DEFAULTS), anything else stays a string.
    """
    word = raw.strip()
    if word.lower() in {"true", "false"}:
        return word.lower() == "true"
    if word[:1] in "{[":
        try:
            return json.loads(word)
        except json.JSONDecodeError as error:
            raise ImproperlyConfigured(f"Cannot read JSON value {raw!r}: {error}") from None
    return raw


def anymail_settings(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """Collect every ANYMAIL_<NAME> env var into the ANYMAIL setting as NAME."""
    return {
        name.removeprefix(ANYMAIL_PREFIX): parse_setting_value(value)
        for name, value in environ.items()
        if name.startswith(ANYMAIL_PREFIX) and len(name) > len(ANYMAIL_PREFIX)
    }


def webhook_esps_for(email_backend: str) -> list[str]:
    """The ESP whose webhooks to mount for this EMAIL_BACKEND: anymail's ESP, else none."""
    match = re.fullmatch(r"anymail\.backends\.(\w+)\.EmailBackend", email_backend)
    if match is None or match[1] in ("console", "test"):
        return []
    return [match[1]]
