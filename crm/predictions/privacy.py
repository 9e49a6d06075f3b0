"""Predictions' part of a contact's data export: profiling is personal data too.

Erasure needs no hook: a prediction cascades with its contact.
"""

from crm.predictions.models import ContactPrediction


def export_contact_predictions(contact) -> dict:
    """Return the contact's purchase prediction with its inputs (a list: none or one)."""
    return {
        "purchase_predictions": list(ContactPrediction.objects.filter(contact=contact).values())
    }
