"""Signal adapters: crm's activities drive enrollments (connected in SequencesConfig.ready)."""

from crm.models import Activity
from sequences.services.matching import enrollments_react
from sequences.services.running import enqueue_run


def react_to_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Enroll, convert, exit or resume in this transaction; run what is due after commit."""
    enqueue_run(enrollments_react(activities=activities))
