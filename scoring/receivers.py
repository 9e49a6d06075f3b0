"""Adapters from crm's domain signals to scoring's services, connected in ScoringConfig.ready()."""

from crm.models import Activity, Contact
from scoring.services import scores_apply, scoring_side_effects_running


def score_recorded_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Score a recorded batch inside its transaction, in a fixed number of queries.

    Activities that scoring itself records while opening a handoff (`handed_off`,
    the stage change) are not scored again.
    """
    if scoring_side_effects_running():
        return
    scores_apply(activities=activities)


def score_attached_activities(
    sender, contact: Contact, activities: list[Activity], **kwargs
) -> None:
    """Score a visitor's anonymous history once identify gives it to a contact.

    The same batch path as recorded activities; the (rule, activity) ledger
    constraint makes identifying again score nothing twice.
    """
    scores_apply(activities=activities)
