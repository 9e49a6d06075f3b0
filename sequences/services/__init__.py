"""Every state change in sequences goes through these functions.

Import from here: `from sequences.services import sequence_activate, enrollments_run_due`.
"""

from sequences.services.dates import date_triggers_enroll
from sequences.services.enrollments import enrollment_create, enrollment_end
from sequences.services.ledger import (
    ledger_mark_stale_unknown,
    outbound_reconcile,
    outbound_resolve,
    unknown_messages_check,
)
from sequences.services.matching import enrollments_react
from sequences.services.running import RunResult, enrollments_run_due
from sequences.services.sequences import (
    ActivationReview,
    sequence_activate,
    sequence_activation_review,
    sequence_archive,
    sequence_pause,
    sequence_resume,
    template_preview,
    template_send_test,
)
from sequences.services.variants import variant_winners_decide

__all__ = [
    "ActivationReview",
    "RunResult",
    "date_triggers_enroll",
    "enrollment_create",
    "enrollment_end",
    "enrollments_react",
    "enrollments_run_due",
    "ledger_mark_stale_unknown",
    "outbound_reconcile",
    "outbound_resolve",
    "sequence_activate",
    "sequence_activation_review",
    "sequence_archive",
    "sequence_pause",
    "sequence_resume",
    "template_preview",
    "template_send_test",
    "unknown_messages_check",
    "variant_winners_decide",
]
