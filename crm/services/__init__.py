"""Every state change in crm goes through these functions (STYLE.md, section 4).

Import from here: `from crm.services import activity_record, contact_upsert`.
"""

from crm.services.activities import (
    ActivityBatchResult,
    ActivityInput,
    activity_record,
    activity_record_batch,
)
from crm.services.api_keys import ApiKeyCreated, api_key_create, api_key_revoke
from crm.services.companies import company_upsert
from crm.services.consent import consent_grant, consent_text_publish, consent_withdraw
from crm.services.contacts import (
    ContactUpsertResult,
    contact_update,
    contact_upsert,
    contacts_vouch,
)
from crm.services.deals import deal_create, deal_move_stage
from crm.services.events import EventOutcome, IncomingEvent, events_ingest
from crm.services.identity import (
    IdentifyResult,
    contact_identify,
    contacts_resolve_for_events,
    visitor_identify,
)
from crm.services.lifecycle import lifecycle_stage_change, lifecycle_stage_change_many
from crm.services.preferences import (
    Visitor,
    contact_pause,
    opt_in_confirm,
    opt_in_request_send,
    preferences_save,
    unsubscribe_all,
    unsubscribe_one_click,
)
from crm.services.privacy import contact_erase, contact_export
from crm.services.segments import (
    MembershipChanges,
    SegmentEvaluation,
    segment_create,
    segment_delete,
    segment_evaluate,
    segment_memberships_refresh,
    segment_update,
)
from crm.services.suppressions import suppression_add, suppression_lift
from crm.services.work import TaskInput, note_add, task_complete, task_create, tasks_create

__all__ = [
    "ActivityBatchResult",
    "ActivityInput",
    "ApiKeyCreated",
    "ContactUpsertResult",
    "EventOutcome",
    "IdentifyResult",
    "IncomingEvent",
    "MembershipChanges",
    "SegmentEvaluation",
    "Visitor",
    "activity_record",
    "activity_record_batch",
    "api_key_create",
    "api_key_revoke",
    "company_upsert",
    "consent_grant",
    "consent_text_publish",
    "consent_withdraw",
    "contact_erase",
    "contact_export",
    "contact_identify",
    "visitor_identify",
    "contact_pause",
    "contact_update",
    "contact_upsert",
    "contacts_resolve_for_events",
    "contacts_vouch",
    "deal_create",
    "deal_move_stage",
    "events_ingest",
    "lifecycle_stage_change",
    "lifecycle_stage_change_many",
    "note_add",
    "opt_in_confirm",
    "opt_in_request_send",
    "preferences_save",
    "segment_create",
    "segment_delete",
    "segment_evaluate",
    "segment_memberships_refresh",
    "segment_update",
    "suppression_add",
    "suppression_lift",
    "task_complete",
    "task_create",
    "tasks_create",
    "TaskInput",
    "unsubscribe_all",
    "unsubscribe_one_click",
]
