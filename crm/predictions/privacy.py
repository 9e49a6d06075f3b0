"""Predictions' part of a contact's data export: profiling is personal data too.

Erasure needs no hook: predictions, send times and missed milestones cascade with the
contact.
"""

from crm.predictions.models import ContactPrediction, ContactSendTime, MissedMilestone


def export_contact_predictions(contact) -> dict:
    """Return the contact's purchase prediction, best send time and missed milestones."""
    return {
        "purchase_predictions": list(ContactPrediction.objects.filter(contact=contact).values()),
        "send_times": list(ContactSendTime.objects.filter(contact=contact).values()),
        "missed_milestones": list(
            MissedMilestone.objects.filter(contact=contact).order_by("pk").values()
        ),
    }
