"""Every state change in crm goes through these functions (STYLE.md, section 4).

Import from here: `from crm.services import activity_record, contact_upsert`.
"""

from crm.services.activities import (
    ActivityBatchResult,
    ActivityInput,
    activity_record,
    activity_record_batch,
)
from crm.services.companies import company_upsert
from crm.services.consent import consent_grant, consent_text_publish, consent_withdraw
from crm.services.contacts import ContactUpsertResult, contact_update, contact_upsert
from crm.services.deals import deal_create, deal_move_stage
from crm.services.lifecycle import lifecycle_stage_change
from crm.services.suppressions import suppression_add, suppression_lift
from crm.services.work import note_add, task_complete, task_create

__all__ = [
    "ActivityBatchResult",
    "ActivityInput",
    "ContactUpsertResult",
    "activity_record",
    "activity_record_batch",
    "company_upsert",
    "consent_grant",
    "consent_text_publish",
    "consent_withdraw",
    "contact_update",
    "contact_upsert",
    "deal_create",
    "deal_move_stage",
    "lifecycle_stage_change",
    "note_add",
    "suppression_add",
    "suppression_lift",
    "task_complete",
    "task_create",
]
