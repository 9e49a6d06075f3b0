"""What a failed ESP call says about the message: never received, answered, or unknowable.

Only one of these may become `unknown` (never resent automatically): a request that may
have reached the ESP. A message the ESP certainly never got — the connection was
refused or timed out while connecting, or the error came before any request was made
(a bad setting, a bad value) — is retried like a 5xx, then fails with its reason.

anymail wraps every `requests` exception in an AnymailRequestsAPIError that is also an
instance of the original class and chains it (`raise ... from err`); the connect-phase
errors underneath are urllib3's (NewConnectionError is a ConnectTimeoutError there).
"""

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from urllib3.exceptions import ConnectTimeoutError

SENT = "sent"
#: The ESP certainly did not get it: retry with backoff (bounded), then fail.
UNSENT = "unsent"
TRANSIENT = "transient"
PERMANENT = "permanent"
UNKNOWN = "unknown"
RETRIED = frozenset({UNSENT, TRANSIENT})

#: Exceptions that can only happen before a request's first byte left this machine.
NEVER_CONNECTED = (
    requests.exceptions.ConnectTimeout,
    ConnectTimeoutError,  # urllib3: also NewConnectionError (refused) and NameResolutionError
    ConnectionRefusedError,
    ssl.SSLCertVerificationError,
)
#: Modules that talk to the network: an exception raised inside one of them may have
#: come after the request went out. One raised elsewhere came before it.
TRANSPORT_MODULES = ("http.client", "socket", "ssl", "smtplib", "urllib3.connection")


@dataclass(frozen=True)
class Delivery:
    status: str  # sent | unsent | transient | permanent | unknown
    esp_message_id: str = ""
    reason: str = ""


def delivery_from_error(exc: BaseException, message) -> Delivery:
    """Classify an exception raised while handing `message` to the ESP."""
    if isinstance(exc, AnymailRecipientsRefused):
        return Delivery(PERMANENT, reason=f"recipient refused: {short(exc)}")
    status = getattr(exc, "status_code", None)
    if isinstance(exc, AnymailAPIError) and status is not None:
        return _answered(status, exc)
    if getattr(getattr(message, "anymail_status", None), "esp_response", None) is not None:
        # The ESP answered and something failed while reading the answer: it may have
        # accepted the message.
        return Delivery(UNKNOWN, reason=f"unreadable ESP answer: {short(exc)}")
    if any(isinstance(link, NEVER_CONNECTED) for link in _chain(exc)):
        return Delivery(UNSENT, reason=f"could not connect to the ESP: {short(exc)}")
    if isinstance(exc, requests.RequestException | AnymailAPIError):
        # Read timeout, connection reset or closed after the request was written, ...
        return Delivery(UNKNOWN, reason=f"no answer from the ESP: {short(exc)}")
    if isinstance(exc, AnymailError):
        # anymail's own checks of the message (invalid address, unsupported feature,
        # unserialisable data) run before the request: this message can never go.
        return Delivery(PERMANENT, reason=f"{type(exc).__name__}: {short(exc)}")
    if _reached_transport(exc):
        return Delivery(UNKNOWN, reason=f"{type(exc).__name__} while sending")
    return Delivery(UNSENT, reason=f"error before the request: {type(exc).__name__}: {short(exc)}")


def _answered(status: int, exc: BaseException) -> Delivery:
    if 200 <= status < 300:
        # anymail raises on a 2xx it cannot parse: the ESP accepted something.
        return Delivery(UNKNOWN, reason=f"ESP {status} with an unreadable answer: {short(exc)}")
    kind = TRANSIENT if status == 429 or status >= 500 else PERMANENT
    return Delivery(kind, reason=f"ESP {status}: {short(exc)}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions carried in args or `reason`."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        link = todo.pop()
        if not isinstance(link, BaseException) or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo.extend((link.__cause__, link.__context__, getattr(link, "reason", None)))
        todo.extend(link.args)


def _reached_transport(exc: BaseException) -> bool:
    for link in _chain(exc):
        traceback = link.__traceback__
        while traceback is not None:
            module = traceback.tb_frame.f_globals.get("__name__", "")
            if module.startswith(TRANSPORT_MODULES):
                return True
            traceback = traceback.tb_next
    return False


def short(exc: BaseException) -> str:
    """The first line of an exception's text, at most 200 characters."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text.splitlines()[0][:200] if text else type(exc).__name__
