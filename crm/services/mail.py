"""The one door for system email: every mail that is not a sequence step goes through here.

Opt-in confirmations, handoff and SLA notices, deliverability alerts and template test
sends are not marketing, but they are still email to a real address: the same
suppressions that stop transactional mail (hard bounce, complaint, erasure, a soft-bounce
cool-down, staff's manual entry) stop them, each one leaves a send-ledger row, and each
carries an opaque message id the ESP's webhooks can be matched by.

crm cannot import sequences, which owns the send ledger and the ESP, so sequences
registers the implementation from its AppConfig.ready() (as with crm.admin_hooks):

    from crm.services.mail import register_system_email_sender
    register_system_email_sender(system_email_deliver)

With nothing registered, a send raises SystemEmailNotConfigured: an email that silently
goes nowhere, or around the ledger, is the failure this module exists to prevent.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import models

from crm.emails import normalise_email
from crm.models import Contact, Suppression

#: Suppressions that stop every email, system mail included: the address cannot or must not
#: get mail. "Unsubscribed" and the inactivity sunset stop marketing only. The send gate's
#: transactional set (sequences.gate.TRANSACTIONAL_BLOCKING) is the same; a test keeps them so.
SYSTEM_MAIL_BLOCKING = frozenset(
    {
        Suppression.Reason.HARD_BOUNCE,
        Suppression.Reason.COMPLAINT,
        Suppression.Reason.ERASED,
        Suppression.Reason.SOFT_BOUNCE,
        Suppression.Reason.MANUAL,
    }
)


class SystemEmailKind(models.TextChoices):
    """What a system email is for; the send ledger's `kind` for rows that are no sequence step."""

    OPT_IN_CONFIRMATION = "opt_in_confirmation", "Sign-up confirmation request"
    HANDOFF_NOTICE = "handoff_notice", "Handoff notice to the owner"
    SLA_NOTICE = "sla_notice", "Missed-SLA notice to the manager"
    BREAKER_ALERT = "breaker_alert", "Circuit breaker alert"
    COMPLAINT_ALERT = "complaint_alert", "Complaint rate warning"
    TEMPLATE_TEST = "template_test", "Template test send"
    UNKNOWN_ALERT = "unknown_alert", "Unknown emails alert"


@dataclass(frozen=True)
class SystemEmail:
    """One system email to one recipient.

    `contact` is the recipient's own contact row, when the recipient is a contact (an
    opt-in confirmation); never the person an email is about, or ESP events (opens,
    complaints) on a staff notice would be credited to that person. `metadata` carries
    opaque ids only, never addresses or names: it is sent to the ESP.
    `idempotency_key` (optional) makes the send happen at most once per (kind, key,
    recipient), so a re-delivered task does not mail anyone twice.
    """

    to: str
    subject: str
    body: str
    kind: str
    html: str = ""
    contact: Contact | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class SystemEmailResult:
    """What happened: `sent`, `suppressed` (nothing sent, by rule) or `duplicate`."""

    status: str
    message_uuid: str = ""
    esp_message_id: str = ""
    reason: str = ""

    @property
    def is_sent(self) -> bool:
        return self.status == "sent"


class SystemEmailFailed(Exception):
    """The ESP refused the message or its answer was lost; the ledger row says which.

    Callers inside a transaction let it propagate so their own claim rolls back and a
    later run retries; the ledger row then rolls back with it.
    """

    def __init__(self, reason: str, message_uuid: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.message_uuid = message_uuid


class SystemEmailNotConfigured(ImproperlyConfigured):
    """No app registered a system email sender (sequences does, in its ready())."""


SystemEmailSender = Callable[[SystemEmail], SystemEmailResult]
_sender: list[SystemEmailSender] = []


def register_system_email_sender(sender: SystemEmailSender) -> None:
    """Make `sender` the one implementation of system_email_send; registering replaces it."""
    _sender[:] = [sender]


def system_email_sender() -> SystemEmailSender | None:
    """The registered implementation, if any."""
    return _sender[0] if _sender else None


def system_email_send(
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    html: str = "",
    contact: Contact | None = None,
    metadata: dict[str, str] | None = None,
    idempotency_key: str = "",
) -> SystemEmailResult:
    """Send one system email through the send ledger, or record why it was not sent.

    Raises SystemEmailFailed when the ESP refused it or the answer was lost, and
    SystemEmailNotConfigured when no sender is registered.
    """
    if kind not in SystemEmailKind.values:
        raise ValueError(f"Unknown system email kind {kind!r}; add it to SystemEmailKind.")
    address = normalise_email(to or "")
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError("A system email needs one valid recipient address.") from None
    sender = system_email_sender()
    if sender is None:
        raise SystemEmailNotConfigured(
            "No system email sender is registered: install the sequences app, which "
            "registers the one that writes the send ledger."
        )
    return sender(
        SystemEmail(
            to=address,
            subject=subject,
            body=body,
            kind=kind,
            html=html,
            contact=contact,
            metadata={key: str(value) for key, value in (metadata or {}).items()},
            idempotency_key=idempotency_key,
        )
    )


@checks.register(checks.Tags.compatibility)
def check_system_email_sender(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Refuse to start quietly without a sender: confirmations and alerts would all fail."""
    if system_email_sender() is not None:
        return []
    return [
        checks.Error(
            "No system email sender is registered, so confirmations and staff notices "
            "cannot be sent.",
            hint="Keep 'sequences' in INSTALLED_APPS; it registers the sender.",
            id="nextstep.E020",
        )
    ]
