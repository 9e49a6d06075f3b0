"""scoring's part of a contact's data export (crm.privacy_hooks; registered in apps.ready).

Erasure needs no hook: score changes, handoffs and the rising-intent flag cascade with
the contact.
"""

from scoring.models import Handoff, RisingIntent, ScoreChange


def export_contact_scores(contact) -> dict:
    """Return the contact's score history, handoffs and rising-intent flag."""
    return {
        "score_changes": list(ScoreChange.objects.filter(contact=contact).order_by("pk").values()),
        "handoffs": list(Handoff.objects.filter(contact=contact).order_by("pk").values()),
        "rising_intent": list(RisingIntent.objects.filter(contact=contact).values()),
    }
