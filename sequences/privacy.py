"""sequences' part of a contact's data export (crm.privacy_hooks; registered in apps.ready).

Erasure needs no hook: enrollments and the send ledger cascade with the contact.
"""

from sequences.models import Enrollment, OutboundMessage


def export_contact_messages(contact) -> dict:
    """Return the contact's enrollments and every email the send ledger holds for them."""
    return {
        "enrollments": list(Enrollment.objects.filter(contact=contact).order_by("pk").values()),
        "messages": list(OutboundMessage.objects.filter(contact=contact).order_by("pk").values()),
    }
