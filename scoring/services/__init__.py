"""Every state change in scoring goes through these functions (STYLE.md, section 4).

Import from here: `from scoring.services import scores_apply, handoff_accept`.
"""

from scoring.services.decay import (
    DecayResult,
    score_decay_apply,
    score_decay_apply_range,
    score_decay_ranges,
)
from scoring.services.handoffs import (
    DEMO_TASK_SOURCE,
    demo_request_tasks_create,
    handoff_accept,
    handoff_claim,
    handoff_mark_contacted,
    handoff_may_act,
    handoff_may_reassign,
    handoff_open,
    handoff_reassign,
    handoff_recycle,
    handoff_reject,
    handoffs_evaluate,
    handoffs_rearm,
)
from scoring.services.notifications import handoff_notify_owner, handoff_sla_check
from scoring.services.routing import (
    Route,
    contact_route,
    demo_segment_routes,
    round_robin_next,
    territory_for,
)
from scoring.services.scores import (
    FitRefresh,
    ScoringResult,
    fit_scores_refresh,
    fit_scores_refresh_changed,
    fit_scores_refresh_range,
    scores_apply,
)
from scoring.services.side_effects import scoring_side_effects, scoring_side_effects_running

__all__ = [
    "DEMO_TASK_SOURCE",
    "DecayResult",
    "FitRefresh",
    "Route",
    "ScoringResult",
    "contact_route",
    "demo_request_tasks_create",
    "demo_segment_routes",
    "fit_scores_refresh",
    "fit_scores_refresh_changed",
    "fit_scores_refresh_range",
    "handoff_accept",
    "handoff_claim",
    "handoff_mark_contacted",
    "handoff_notify_owner",
    "handoff_open",
    "handoff_may_act",
    "handoff_may_reassign",
    "handoff_reassign",
    "handoff_recycle",
    "handoff_reject",
    "handoff_sla_check",
    "handoffs_evaluate",
    "handoffs_rearm",
    "round_robin_next",
    "score_decay_apply",
    "score_decay_apply_range",
    "score_decay_ranges",
    "scores_apply",
    "scoring_side_effects",
    "scoring_side_effects_running",
    "territory_for",
]
