"""sequences' part of privacy requests (crm.privacy_hooks; registered in apps.ready).

Enrollments, their history and the contact's send-ledger rows cascade with the contact.
The webhook inbox does not: its rows hold the recipient address and the ESP's raw
payload, keyed by address rather than by contact, and they must stay countable for the
deliverability report and the circuit breaker. So erasure anonymises them (address,
payload, metadata, user agent, click URL and the ESP's event id, which together with
the stored event key could confirm a guessed address), and keeps kind, domain and time.
"""

from django.db.models import Q

from crm.emails import email_hash, normalise_email
from crm.models import Suppression
from sequences.models import Enrollment, EnrollmentEvent, EspEvent, OutboundMessage

#: What erasure blanks on an ESP event; what is left says only "an event of this kind".
ANONYMISED_EVENT = {
    "recipient": "",
    "event_id": "",
    "metadata": {},
    "raw": {},
    "description": "",
    "user_agent": "",
    "click_url": "",
}


def _events_of(contact) -> Q:
    return Q(recipient=normalise_email(contact.email)) | Q(message__contact=contact)


def export_contact_messages(contact) -> dict:
    """Return the contact's enrollments with their history, every email the ledger holds
    for their address, and every ESP event about them, raw payload included."""
    recipient_hash = email_hash(contact.email)
    return {
        "enrollments": list(Enrollment.objects.filter(contact=contact).order_by("pk").values()),
        "enrollment_events": list(
            EnrollmentEvent.objects.filter(enrollment__contact=contact).order_by("pk").values()
        ),
        "messages": list(
            OutboundMessage.objects.filter(Q(contact=contact) | Q(recipient_hash=recipient_hash))
            .order_by("pk")
            .values()
        ),
        "esp_events": list(EspEvent.objects.filter(_events_of(contact)).order_by("pk").values()),
    }


def erase_contact_email_traces(contact) -> int:
    """Anonymise every stored ESP event for the contact's address; return how many."""
    return EspEvent.objects.filter(_events_of(contact)).update(**ANONYMISED_EVENT)


def esp_events_forget_erased(events: list[EspEvent]) -> int:
    """Anonymise events that arrived after their recipient was erased (2 queries a batch).

    ESPs report opens and bounces for weeks after a send, so erasure alone cannot stop
    the address coming back into the inbox; processing calls this for every batch.
    """
    by_hash: dict[str, list[int]] = {}
    for event in events:
        if event.recipient:
            by_hash.setdefault(email_hash(event.recipient), []).append(event.pk)
    if not by_hash:
        return 0
    erased = Suppression.objects.filter(
        email_hash__in=by_hash, reason=Suppression.Reason.ERASED
    ).values_list("email_hash", flat=True)
    pks = [pk for hashed in erased for pk in by_hash[hashed]]
    if not pks:
        return 0
    return EspEvent.objects.filter(pk__in=pks).update(**ANONYMISED_EVENT)
