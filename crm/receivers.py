"""crm's own signal adapters, connected in CrmConfig.ready()."""

from functools import partial

from django.db import transaction
from django_q.tasks import async_task

from crm.models import Activity
from crm.services.segments import SEGMENT_KINDS

REFRESH_TASK = "crm.tasks.refresh_segment_memberships_task"


def refresh_segments_for_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Re-check the batch's contacts against segments in one task, once the batch commits.

    No query here: the recording transaction stays as fast as before. Batches made only
    of segment_entered / segment_exited (recorded by that very task) are skipped, or
    every entry would trigger another refresh.
    """
    contact_ids = sorted(
        {
            activity.contact_id
            for activity in activities
            if activity.contact_id is not None and activity.kind not in SEGMENT_KINDS
        }
    )
    if contact_ids:
        transaction.on_commit(partial(async_task, REFRESH_TASK, contact_ids))
