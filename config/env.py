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


#: How anymail expects each ANYMAIL_<NAME> value (docs/deliverability.md, "Value types").
#: Names match exactly or by suffix; any other name is text, except that true/false
#: become booleans and a JSON object or list is decoded (e.g. ANYMAIL_WEBHOOK_SECRET).
#: Numbers are never guessed: a token or password made of digits stays text.
ANYMAIL_BOOLEANS = (
    "DEBUG_API_REQUESTS",
    "IGNORE_RECIPIENT_STATUS",
    "IGNORE_UNSUPPORTED_FEATURES",
    "_GENERATE_MESSAGE_ID",
    "_AUTO_CONFIRM_SNS_SUBSCRIPTIONS",
    "_TRACK_INITIAL_OPEN_AS_OPENED",
    "_USE_BULK_API",
    "_PREVENT_HEADER_ENCODING_BUGS",
    "_WORKAROUND_DISPLAY_NAME_BUGS",
)
ANYMAIL_OBJECTS = ("SEND_DEFAULTS", "_CLIENT_PARAMS", "_SESSION_PARAMS")
ANYMAIL_INTEGERS = ("_DOWNLOAD_CHUNK_SIZE",)
#: Seconds, or a JSON pair [connect, read] (requests' timeout tuple).
ANYMAIL_TIMEOUTS = ("REQUESTS_TIMEOUT",)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or (p.startswith("_") and name.endswith(p)) for p in patterns)


def parse_anymail_value(name: str, raw: str) -> object:
    """Turn ANYMAIL_<name>'s text into the type anymail expects, or say what is wrong."""
    var = f"{ANYMAIL_PREFIX}{name}"
    if _matches(name, ANYMAIL_BOOLEANS):
        return env_bool(var, False, {var: raw})
    if _matches(name, ANYMAIL_INTEGERS):
        return env_int(var, 0, {var: raw})
    if _matches(name, ANYMAIL_TIMEOUTS):
        return _timeout(var, raw)
    if _matches(name, ANYMAIL_OBJECTS):
        value = _json(var, raw)
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f'{var} must be a JSON object, e.g. {{"tags": ["x"]}}.')
        return value
    return parse_setting_value(raw, name=var)


def _timeout(var: str, raw: str) -> float | int | tuple:
    word = raw.strip()
    value = _json(var, word) if word.startswith("[") else _number(word)
    if isinstance(value, list) and len(value) == 2:
        value = tuple(_number(str(part)) for part in value)
    parts = value if isinstance(value, tuple) else (value,)
    if any(not isinstance(part, int | float) or part <= 0 for part in parts):
        raise ImproperlyConfigured(
            f"{var}={raw!r} is not a timeout: give seconds (5, 2.5) or [connect, read]."
        )
    return value


def _number(word: str) -> float | int | None:
    try:
        number = float(word)
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in word else number


def _json(var: str, raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"Cannot read {var} as JSON: {error}") from None


def parse_setting_value(raw: str, name: str = "the value") -> object:
    """Turn an env var's text into the value anymail expects.

    true/false become booleans, JSON objects and lists are decoded (for settings
    such as ANYMAIL_WEBHOOK_SECRET), anything else stays a string.
    """
    word = raw.strip()
    if word.lower() in {"true", "false"}:
        return word.lower() == "true"
    if word[:1] in "{[":
        return _json(name, word)
    return raw


def anymail_settings(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """Collect every ANYMAIL_<NAME> env var into the ANYMAIL setting as NAME, typed."""
    return {
        name.removeprefix(ANYMAIL_PREFIX): parse_anymail_value(
            name.removeprefix(ANYMAIL_PREFIX), value
        )
        for name, value in environ.items()
        if name.startswith(ANYMAIL_PREFIX) and len(name) > len(ANYMAIL_PREFIX)
    }


def webhook_esps_for(email_backend: str) -> list[str]:
    """The ESP whose webhooks to mount for this EMAIL_BACKEND: anymail's ESP, else none."""
    match = re.fullmatch(r"anymail\.backends\.(\w+)\.EmailBackend", email_backend)
    if match is None or match[1] in ("console", "test"):
        return []
    return [match[1]]


#: HOST values that mean "every interface": links still need one address to open.
ANY_INTERFACE = {"0.0.0.0", "::", "[::]"}


def site_url(environ: Mapping[str, str] = os.environ) -> str:
    """SITE_URL, or else the address `make run` serves: http://HOST:PORT (127.0.0.1:8000).

    Local mode sets no SITE_URL, so links in emails and previews follow the port the
    server really listens on (`make run PORT=8001`). Production sets SITE_URL.
    """
    explicit = environ.get("SITE_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    host = environ.get("HOST", "").strip() or "127.0.0.1"
    if host in ANY_INTERFACE:
        host = "127.0.0.1"
    port = env_int("PORT", 8000, environ)
    if not 0 < port < 65536:
        raise ImproperlyConfigured(f"PORT={port} is not a TCP port (1-65535).")
    return f"http://{host}:{port}"
