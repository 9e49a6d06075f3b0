"""The sequence builder's read side: the flow as words and edges, live counts, problems per step.

The admin (sequences/admin.py, templates/admin/sequences/sequence/builder.html) draws
what `sequence_flow` returns; sequences/builder_forms.py edits one step, trigger or
rule set at a time. Nothing here writes.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.utils import timezone

from sequences.builder_conditions import (
    ACTIVITIES,
    BRANCH,
    CONTACTS,
    EVENT,
    NotRepresentable,
    builder_shape,
)
from sequences.conditions import STEP_TARGET_KEYS
from sequences.models import Enrollment, EnrollmentEvent, OutboundMessage, Sequence, Step, Trigger
from sequences.review import Finding, sequence_findings

OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "contains": "contains",
    "in": "is any of",
    "not_in": "is none of",
}
UNIT_WORDS = {
    "minutes": "minute",
    "hours": "hour",
    "days": "day",
    "business_days": "business day",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: How each step type is drawn (a CSS class of builder.css).
STEP_KINDS = {
    Step.Type.SEND_EMAIL: "email",
    Step.Type.WAIT_DURATION: "wait",
    Step.Type.WAIT_UNTIL_TIME: "wait",
    Step.Type.WAIT_UNTIL_DATE: "wait",
    Step.Type.WAIT_UNTIL_BEST_TIME: "wait",
    Step.Type.WAIT_FOR_EVENT: "branch",
    Step.Type.BRANCH_IF: "branch",
    Step.Type.END: "end",
}


@dataclass
class StepCounts:
    """Live numbers for one step: contacts whose next step it is, emails sent, conversions."""

    waiting: int = 0
    sent: int = 0
    converted: int = 0


@dataclass
class Exit:
    """One way out of a step: its label ("yes", "timeout"), the target step's key and number."""

    label: str
    target: str
    number: int | None


@dataclass
class Node:
    step: Step
    number: int
    kind: str
    summary: str
    exits: list[Exit] = field(default_factory=list)
    incoming: list[str] = field(default_factory=list)
    counts: StepCounts = field(default_factory=StepCounts)
    problems: list[str] = field(default_factory=list)


@dataclass
class Flow:
    sequence: Sequence
    triggers: list[tuple[Trigger, str]]
    audience: list[str]
    nodes: list[Node]
    goals: list[str]
    exits: list[str]
    general_problems: list[Finding]
    warnings: list[Finding]

    @property
    def has_errors(self) -> bool:
        return bool(self.general_problems) or any(node.problems for node in self.nodes)


def sequence_flow(sequence: Sequence) -> Flow:
    """The sequence as the builder draws it: triggers, steps with their exits, goals, exits."""
    steps = list(sequence.steps.select_related("template").order_by("position", "pk"))
    numbers = {step.key: number for number, step in enumerate(steps, start=1)}
    counts = step_counts(sequence, steps)
    findings = sequence_findings(sequence)
    per_step, general, warnings = _findings_by_step(findings, steps)
    nodes = []
    for index, step in enumerate(steps):
        following = steps[index + 1].key if index + 1 < len(steps) else ""
        nodes.append(
            Node(
                step=step,
                number=index + 1,
                kind=STEP_KINDS.get(step.type, "action"),
                summary=step_words(step, sequence),
                exits=_exits(step, following, numbers),
                counts=counts.get(step.key, StepCounts()),
                problems=per_step.get(step.key, []),
            )
        )
    by_key = {node.step.key: node for node in nodes}
    for node in nodes:
        for exit_ in node.exits:
            if exit_.label and exit_.target in by_key:
                by_key[exit_.target].incoming.append(f"{node.number} ({exit_.label})")
    triggers = [(trigger, trigger_words(trigger)) for trigger in sequence.triggers.all()]
    audience = conditions_words(sequence.audience_conditions, CONTACTS)
    if sequence.audience_segment_id:
        audience.insert(0, f"member of segment “{sequence.audience_segment}”")
    return Flow(
        sequence=sequence,
        triggers=triggers,
        audience=audience,
        nodes=nodes,
        goals=conditions_words(sequence.goal_conditions, ACTIVITIES),
        exits=conditions_words(sequence.exit_conditions, ACTIVITIES),
        general_problems=general,
        warnings=warnings,
    )


def _exits(step: Step, following: str, numbers: dict[str, int]) -> list[Exit]:
    """Where a contact goes after the step (an empty target: the next step, or the end)."""
    config = step.config if isinstance(step.config, dict) else {}
    if step.type == Step.Type.END:
        return []
    labels = {"yes_step": "yes", "no_step": "no", "timeout_step": "timeout"}
    if step.type == Step.Type.WAIT_FOR_EVENT:
        labels["yes_step"] = "it happened"
    targets = STEP_TARGET_KEYS.get(step.type, ())
    if not targets:
        return [Exit("", following, numbers.get(following))]
    result = []
    for name in targets:
        target = config.get(name) or following
        result.append(Exit(labels[name], target, numbers.get(target)))
    return result


def _findings_by_step(findings: list[Finding], steps: list[Step]):
    """Errors that name a step go on that step; the rest are the sequence's own."""
    per_step: dict[str, list[str]] = {}
    general, warnings = [], []
    for finding in findings:
        for step in steps:
            prefix = f"Step {step.key}"
            if finding.message.startswith((prefix + ":", prefix + " (", prefix + ",")):
                if finding.is_error:
                    text = finding.message.removeprefix(prefix).lstrip(":, ")
                    per_step.setdefault(step.key, []).append(text)
                else:
                    warnings.append(finding)
                break
        else:
            (general if finding.is_error else warnings).append(finding)
    return per_step, general, warnings


def step_counts(sequence: Sequence, steps: list[Step] | None = None) -> dict[str, StepCounts]:
    """Three aggregate queries, whatever the number of steps or contacts.

    - waiting: live enrollments at this step. The engine stores the step to run next,
      so a contact held by a timed wait (duration, time of day, date property) has the
      step after the wait, due later: those are counted on the wait. A contact waiting
      for an event is counted on its wait_for_event step. The rest (due now, or held
      by the send gate's quiet hours or cap) count on the step they will run;
    - sent: emails of this step the ESP accepted;
    - converted: enrollments that ran this step and later converted.
    """
    steps = steps if steps is not None else list(sequence.steps.order_by("position", "pk"))
    counts: dict[str, StepCounts] = {}
    live = (
        Enrollment.objects.filter(sequence=sequence, state__in=Enrollment.LIVE_STATES)
        .values_list("state", "current_step")
        .annotate(n=Count("pk"), later=Count("pk", filter=Q(due_at__gt=timezone.now())))
        .order_by()
    )
    event_waits, timed_waits = _event_waits(steps), _timed_waits(steps)
    for state, current, n, later in live:
        if state == Enrollment.State.WAITING:
            counts.setdefault(event_waits.get(current, current), StepCounts()).waiting += n
            continue
        wait = timed_waits.get(current)
        if wait and later:
            counts.setdefault(wait, StepCounts()).waiting += later
            n -= later
        if n:
            counts.setdefault(current, StepCounts()).waiting += n
    sent = (
        OutboundMessage.objects.filter(
            enrollment__sequence=sequence, state=OutboundMessage.State.SENT
        )
        .values_list("step")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for key, n in sent:
        counts.setdefault(key, StepCounts()).sent = n
    converted = (
        EnrollmentEvent.objects.filter(
            enrollment__sequence=sequence, enrollment__state=Enrollment.State.CONVERTED
        )
        .exclude(step="")
        .values_list("step")
        .annotate(n=Count("enrollment", distinct=True))
        .order_by()
    )
    for key, n in converted:
        counts.setdefault(key, StepCounts()).converted = n
    return counts


TIMED_WAITS = (Step.Type.WAIT_DURATION, Step.Type.WAIT_UNTIL_TIME, Step.Type.WAIT_UNTIL_DATE)


def _timed_waits(steps: list[Step]) -> dict[str, str]:
    """The step after each timed wait → the wait's key (where its waiting contacts are)."""
    return {
        steps[index + 1].key: step.key
        for index, step in enumerate(steps[:-1])
        if step.type in TIMED_WAITS
    }


def _event_waits(steps: list[Step]) -> dict[str, str]:
    """A waiting enrollment's current step is its timeout target: map it back to the wait."""
    waits = {}
    for index, step in enumerate(steps):
        if step.type == Step.Type.WAIT_FOR_EVENT:
            following = steps[index + 1].key if index + 1 < len(steps) else ""
            waits.setdefault((step.config or {}).get("timeout_step") or following, step.key)
    return waits


# --- Words --------------------------------------------------------------------------------------


def duration_words(duration) -> str:
    if not isinstance(duration, dict) or not duration:
        return "(no duration set)"
    parts = []
    for unit, word in UNIT_WORDS.items():
        value = duration.get(unit)
        if value:
            parts.append(f"{value} {word}{'s' if value != 1 else ''}")
    return ", ".join(parts) or "0 minutes"


def conditions_words(stored, shape: str) -> list[str]:
    """Stored conditions (a tree or the builder's shapes) as sentences, one per condition."""
    try:
        shaped = builder_shape(stored, shape)
    except NotRepresentable:
        return ["(conditions shown in the advanced view)"]
    if shaped in (None, [], {}):
        return []
    return [condition_words(item) for item in (shaped if isinstance(shaped, list) else [shaped])]


def condition_words(condition) -> str:
    """A stored condition in words: “order_placed where value is at least 20”."""
    if not isinstance(condition, dict):
        return str(condition)
    if "activity" in condition:
        where = [
            f"{w.get('field')} {_op_words(w.get('op', 'eq'), w.get('value'))}"
            for w in condition.get("where") or []
            if isinstance(w, dict)
        ]
        return condition["activity"] + (" where " + " and ".join(where) if where else "")
    name = str(condition.get("contact", "?")).replace("properties.", "property ")
    return (
        f"{name.replace('_', ' ')} {_op_words(condition.get('op', 'eq'), condition.get('value'))}"
    )


def _op_words(op: str, value) -> str:
    if op == "exists":
        return "is set" if value in (None, True, 1) else "is empty"
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
    return f"{OP_WORDS.get(op, op)} {shown}"


def trigger_words(trigger: Trigger) -> str:
    if trigger.type == Trigger.Type.ACTIVITY:
        where = conditions_words(
            {"activity": trigger.activity_kind, "where": trigger.conditions}, EVENT
        )
        return f"When {where[0]} is recorded"
    if trigger.type == Trigger.Type.LIFECYCLE_STAGE:
        return f"When the contact becomes {trigger.lifecycle_stage}"
    if trigger.type == Trigger.Type.SEGMENT_ENTERED:
        existing = " (and its current members, at the first activation)"
        return f"When the contact enters segment “{trigger.segment}”" + (
            existing if trigger.include_existing_members else ""
        )
    if trigger.type == Trigger.Type.DATE_PROPERTY:
        days = trigger.days_before
        when = f"{days} days before" if days >= 0 else f"{-days} days after"
        yearly = " (every year)" if trigger.is_yearly else ""
        return f"{when} the contact's {trigger.date_property}{yearly}"
    if trigger.type == Trigger.Type.CHURN_RISK_ROSE:
        return f"When the contact's churn risk rises above {trigger.churn_risk_above}%"
    return "Only when enrolled by hand or through the API"


def step_words(step: Step, sequence: Sequence | None = None) -> str:
    """What the step does, in a sentence."""
    config = step.config if isinstance(step.config, dict) else {}
    describe = _WORDS.get(step.type)
    return describe(step, config, sequence) if describe else step.get_type_display()


def _email_words(step, config, sequence) -> str:
    name = f"“{step.template}”" if step.template else "(no template chosen)"
    variants = config.get("variants") or []
    if not variants:
        return f"Send {name}"
    shares = ", ".join(
        f"{v.get('key')} {v.get('split')}% {v.get('template')}"
        for v in variants
        if isinstance(v, dict)
    )
    by = "clicks" if config.get("winner_by", "click") == "click" else "conversions"
    winner = (sequence.variant_winners or {}).get(step.key) if sequence else None
    decided = f"; winner: {winner}" if winner else ""
    return f"A/B test ({shares}), winner by {by}{decided}"


def _wait_time_words(step, config, sequence) -> str:
    days = config.get("weekdays") or []
    on = f" on {', '.join(WEEKDAYS[d] for d in days if d in range(7))}" if days else ""
    return f"Wait until {config.get('time', '?')}{on}, in the contact's time zone"


def _wait_date_words(step, config, sequence) -> str:
    offset = config.get("offset_days", 0) or 0
    when = f"{-offset} days before" if offset < 0 else (f"{offset} days after" if offset else "on")
    at = config.get("time", "09:00")
    return f"Wait until {when} the contact's {config.get('property', '?')}, at {at}"


def _event_words(step, config, sequence) -> str:
    return (
        f"Wait up to {duration_words(config.get('timeout'))} for "
        f"{' '.join(conditions_words(config.get('event'), EVENT))}"
    )


def _branch_words(step, config, sequence) -> str:
    if config.get("event") or (
        isinstance(config.get("condition"), dict) and "activity" in config["condition"]
    ):
        did = " ".join(conditions_words(config.get("event") or config["condition"], EVENT))
        return f"If they did {did} since entering"
    return f"If {' '.join(conditions_words(config.get('condition'), BRANCH))}"


def _update_words(step, config, sequence) -> str:
    parts = []
    if config.get("lifecycle_stage"):
        parts.append(f"stage → {config['lifecycle_stage']}")
    if config.get("add_tags"):
        parts.append("add tags " + ", ".join(config["add_tags"]))
    if config.get("properties"):
        parts.append("set " + ", ".join(sorted(config["properties"])))
    return "Update the contact: " + ("; ".join(parts) or "(nothing)")


_WORDS = {
    Step.Type.SEND_EMAIL: _email_words,
    Step.Type.WAIT_DURATION: lambda s, c, q: f"Wait {duration_words(c.get('duration'))}",
    Step.Type.WAIT_UNTIL_TIME: _wait_time_words,
    Step.Type.WAIT_UNTIL_DATE: _wait_date_words,
    Step.Type.WAIT_UNTIL_BEST_TIME: lambda s, c, q: (
        f"Wait for the contact's best send time, at most {c.get('within_hours', '?')} hours"
    ),
    Step.Type.WAIT_FOR_EVENT: _event_words,
    Step.Type.BRANCH_IF: _branch_words,
    Step.Type.NOTIFY_OWNER: lambda s, c, q: (
        f"Notify the owner: {c.get('title') or '(default title)'}"
    ),
    Step.Type.CREATE_TASK: lambda s, c, q: (
        f"Task for the {str(c.get('assignee', 'contact_owner')).replace('_', ' ')}: "
        f"{c.get('title', '?')}, due in {c.get('due_in_days', 1)} day(s)"
    ),
    Step.Type.UPDATE_CONTACT: _update_words,
    Step.Type.END: lambda s, c, q: "End: the enrollment completes",
}
