"""ESP doubles: anymail's test backend plus scripted failures per recipient."""

from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused


class Unavailable(AnymailAPIError):
    """What anymail raises for an HTTP 503 from the ESP."""

    def __init__(self):
        super().__init__("ESP unavailable")
        self.status_code = 503

    def __str__(self):
        return "ESP unavailable"


#: recipient address → list of outcomes to play in order ("refuse", "503", "crash").
SCRIPT: dict[str, list[str]] = {}
CALLS: list[str] = []


class ScriptedBackend(AnymailTestBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            recipient = message.to[0]
            CALLS.append(recipient)
            outcome = SCRIPT.get(recipient, []).pop(0) if SCRIPT.get(recipient) else ""
            if outcome == "refuse":
                raise AnymailRecipientsRefused("recipient refused by the ESP")
            if outcome == "503":
                raise Unavailable()
        return super().send_messages(email_messages)


#: (enrollment id, step) of every message handed to the guarded backend.
HANDED: list[tuple[str, str]] = []
VIOLATIONS: list[str] = []


class GuardedBackend(AnymailTestBackend):
    """Checks, at the moment of hand-over, that the recipient may get marketing at all."""

    def send_messages(self, email_messages):
        from crm.models import ConsentTopic, Contact
        from crm.selectors import consent_current, suppressions_active_for

        topic = ConsentTopic.objects.get(key="newsletter")
        for message in email_messages:
            HANDED.append((message.metadata["enrollment_id"], message.metadata["step"]))
            contact = Contact.objects.get(email=message.to[0])
            if suppressions_active_for(email=contact.email).exists():
                VIOLATIONS.append(f"suppressed contact {contact.pk}")
            entry = consent_current(contact=contact, topic=topic)
            if entry is None or not entry.is_granted:
                VIOLATIONS.append(f"no consent for contact {contact.pk}")
        return super().send_messages(email_messages)
