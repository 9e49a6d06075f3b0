"""crm's own signal adapters, connected in CrmConfig.ready()."""

from crm.models import Activity
from crm.services.segments import SEGMENT_KINDS
from crm.tasks_queue import enqueue_once_on_commit

REFRESH_TASK = "crm.tasks.refresh_segment_memberships_task"
#: Contacts per refresh task: the task re-checks them in transactions of 500.
REFRESH_CHUNK = 1000


def refresh_segments_for_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Re-check the batch's contacts against segments after commit, one task per transaction.

    No query here: the recording transaction stays as fast as before. Every batch
    recorded in the same transaction (1,000 sends, each recording email_sent) adds its
    contacts to the same task. Batches made only of segment_entered / segment_exited
    (recorded by that very task) are skipped, or every entry would trigger another refresh.
    """
    contact_ids = {
        activity.contact_id
        for activity in activities
        if activity.contact_id is not None and activity.kind not in SEGMENT_KINDS
    }
    enqueue_once_on_commit(REFRESH_TASK, contact_ids, chunk_size=REFRESH_CHUNK)
