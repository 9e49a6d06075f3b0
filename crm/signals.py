"""crm's public domain signals. crm's services send them; scoring and sequences listen.

Receivers run inside the sender's transaction: do a bounded number of queries per
call (not per activity), or enqueue a task on commit.
"""

from django.dispatch import Signal

#: Sent once per recorded batch, after the rows are written.
#: kwargs: activities (list[crm.Activity], only the newly created ones, in input order).
activities_recorded = Signal()

#: Sent when a contact moves to another lifecycle stage.
#: kwargs: contact (crm.Contact, already updated), change (crm.LifecycleStageChange).
lifecycle_stage_changed = Signal()

#: Sent when a consent ledger row is appended.
#: kwargs: contact (crm.Contact), entry (crm.ConsentEntry).
consent_changed = Signal()

#: Sent by contact_identify when a visitor's earlier anonymous activities become a
#: contact's (they were recorded, and activities_recorded sent, while anonymous).
#: kwargs: contact (crm.Contact), activities (list[crm.Activity], the merged rows, oldest
#: first, contact already set). Not sent when there was nothing to merge.
activities_attached = Signal()
