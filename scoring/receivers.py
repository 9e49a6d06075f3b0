"""Adapters from crm's domain signals to scoring's services, connected in ScoringConfig.ready()."""

from crm.models import Activity
from scoring.services import scores_apply, scoring_side_effects_running


def score_recorded_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Score a recorded batch inside its transaction, in a fixed number of queries.

    Activities that scoring itself records while opening a handoff (`handed_off`,
    the stage change) are not scored again.
    """
    if scoring_side_effects_running():
        return
    scores_apply(activities=activities)
