"""What a batch of recorded activities does to sequences, in a fixed number of queries.

Runs inside the recording transaction (the activities_recorded receiver): existing
enrollments meet goals, exits and awaited events first, then triggers enroll new
contacts. Enrollments due now are run by one task per batch, on commit.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, CharField, DateTimeField, JSONField, Value, When
from django.utils import timezone

from crm.conditions.evaluator import definition_is_empty
from crm.models import Activity, Contact
from crm.selectors import activity_sources_from_browser_keys
from sequences.conditions import activity_matches, contact_facts, properties_match
from sequences.models import Enrollment, Sequence, Trigger
from sequences.reports.facts import report_counts_add_ended
from sequences.services.enrollments import (
    audience_admits,
    audience_segment_members,
    enrollment_build,
    enrollments_attach_sequences,
    enrollments_bulk_save,
    events_bulk_add,
    in_audience_segment,
    reenrollment_allows,
)

State = Enrollment.State
K = Activity.Kind
#: Activities that end every marketing enrollment of the contact at once.
ALWAYS_EXIT_KINDS = frozenset({K.EMAIL_COMPLAINED})
# crm.services.segments records these kinds; their properties name the segment by key.
SEGMENT_ENTERED = "segment_entered"
#: Recorded by crm.predictions' refit when a contact's churn risk crosses a 5-point step.
CHURN_RISK_ROSE = "churn_risk_rose"
SEGMENT_EXITED = "segment_exited"


@dataclass
class _Changes:
    ended: dict[int, tuple[str, str]] = field(default_factory=dict)  # pk → (state, reason)
    resumed: dict[int, str] = field(default_factory=dict)  # pk → step key
    events: list[tuple[Enrollment, str, str]] = field(default_factory=list)


def enrollments_react(*, activities: list[Activity]) -> list[int]:
    """Apply goals, exits, awaited events and triggers; return enrollment pks due now."""
    activities = sorted(
        (activity for activity in activities if activity.contact_id is not None),
        key=lambda activity: (activity.occurred_at, activity.pk),
    )
    if not activities:
        return []
    now = timezone.now()
    contact_ids = {activity.contact_id for activity in activities}
    # Not the trigger's properties: no reaction reads them, and decoding them for every
    # live enrollment of a batch's contacts was most of this query's CPU.
    live = list(
        Enrollment.objects.filter(
            contact_id__in=contact_ids, state__in=Enrollment.LIVE_STATES
        ).defer("trigger_properties")
    )
    enrollments_attach_sequences(live, related=("topic", "audience_segment"))
    changes = _Changes()
    # Grouped by contact: a 1,000-event batch against 1,000 live enrollments is 1,000
    # look-ups, not a million comparisons.
    live_by_contact: dict[int, list[Enrollment]] = defaultdict(list)
    for enrollment in live:
        live_by_contact[enrollment.contact_id].append(enrollment)
    for activity in activities:
        for enrollment in live_by_contact.get(activity.contact_id, ()):
            if enrollment.pk not in changes.ended:
                _react(enrollment, activity, changes)
    _audience_recheck(activities, live, changes)
    _write(changes, now)
    new = _enroll(activities, live, changes, contact_ids, now)
    return [*changes.resumed, *(enrollment.pk for enrollment in new)]


def _react(enrollment: Enrollment, activity: Activity, changes: _Changes) -> None:
    if activity.occurred_at < enrollment.enrolled_at:
        return
    sequence = enrollment.sequence
    exit_reason = "audience_left" if _leaves_audience(sequence, activity) else ""
    exit_reason = exit_reason or _exit_reason(sequence, activity)
    if exit_reason:
        changes.ended[enrollment.pk] = (State.EXITED, exit_reason)
        changes.events.append((enrollment, State.EXITED, exit_reason))
    elif _meets(sequence.goal_conditions, activity):
        reason = f"goal:{activity.kind}"
        changes.ended[enrollment.pk] = (State.CONVERTED, reason)
        changes.events.append((enrollment, State.CONVERTED, reason))
    elif enrollment.state == State.WAITING and _meets(enrollment.waiting_for, activity):
        changes.resumed[enrollment.pk] = enrollment.waiting_for["yes_step"]
        changes.events.append((enrollment, "event_arrived", activity.kind))


def _audience_recheck(activities, live, changes: _Changes) -> None:
    """A contact who changed stage and no longer fits a sequence's audience leaves it now."""
    moved = {a.contact_id for a in activities if a.kind == K.LIFECYCLE_STAGE_CHANGED}
    checked = [
        e
        for e in live
        if e.contact_id in moved
        and not definition_is_empty(e.sequence.audience_conditions)
        and e.pk not in changes.ended
    ]
    if not checked:
        return
    contacts = Contact.objects.filter(pk__in={e.contact_id for e in checked})
    facts = {
        contact.pk: contact_facts(contact)
        for contact in contacts.select_related("company").prefetch_related("tags")
    }
    for enrollment in checked:
        if not audience_admits(enrollment.sequence, facts[enrollment.contact_id]):
            changes.ended[enrollment.pk] = (State.EXITED, "audience_left")
            changes.events.append((enrollment, State.EXITED, "audience_left"))


def _leaves_audience(sequence: Sequence, activity: Activity) -> bool:
    segment = sequence.audience_segment
    return (
        segment is not None
        and activity.kind == SEGMENT_EXITED
        and (activity.properties or {}).get("segment") == segment.key
    )


def _meets(condition: dict, activity: Activity) -> bool:
    return activity_matches(condition, activity.kind, activity.properties or {})


def _exit_reason(sequence: Sequence, activity: Activity) -> str:
    if activity.kind in ALWAYS_EXIT_KINDS:
        return activity.kind
    if not sequence.is_transactional and _withdraws_topic(sequence, activity):
        return activity.kind
    if _meets(sequence.exit_conditions, activity):
        return f"exit:{activity.kind}"
    return ""


def _withdraws_topic(sequence: Sequence, activity: Activity) -> bool:
    if activity.kind not in (K.UNSUBSCRIBED, K.CONSENT_WITHDRAWN):
        return False
    topic = (activity.properties or {}).get("topic", "")
    # An unsubscribe without a topic is from all marketing.
    return not topic or (sequence.topic is not None and topic == sequence.topic.key)


def _write(changes: _Changes, now: datetime.datetime) -> None:
    """End and resume enrollments with one UPDATE each, guarded on still being live."""
    if changes.ended:
        pks = list(changes.ended)
        Enrollment.objects.filter(pk__in=pks, state__in=Enrollment.LIVE_STATES).update(
            state=_case(pks, lambda pk: changes.ended[pk][0], CharField()),
            reason=_case(pks, lambda pk: changes.ended[pk][1], CharField()),
            ended_at=now,
            due_at=None,
            waiting_for=Value({}, output_field=JSONField()),
        )
    resumed = [pk for pk in changes.resumed if pk not in changes.ended]
    changes.resumed = {pk: changes.resumed[pk] for pk in resumed}
    if resumed:
        Enrollment.objects.filter(pk__in=resumed, state=State.WAITING).update(
            state=State.ACTIVE,
            current_step=_case(resumed, changes.resumed.__getitem__, CharField()),
            due_at=Value(now, output_field=DateTimeField()),
            waiting_for=Value({}, output_field=JSONField()),
        )
    events_bulk_add(changes.events, now)
    report_counts_add_ended(rows=changes.events, now=now)


def _case(pks: list[int], value_for, output_field) -> Case:
    return Case(*(When(pk=pk, then=Value(value_for(pk))) for pk in pks), output_field=output_field)


# --- Triggers -------------------------------------------------------------------------------


def _enroll(activities, live, changes, contact_ids, now) -> list[Enrollment]:
    triggers = _active_triggers()
    matches = _trigger_matches(activities, triggers)
    if not matches:
        return []
    contacts = Contact.objects.filter(pk__in={contact_id for contact_id, _ in matches})
    contacts = {c.pk: c for c in contacts.select_related("company").prefetch_related("tags")}
    previous = _previous_enrollments(matches)
    members = audience_segment_members(
        (sequence for sequence, _ in matches.values()), contacts.keys()
    )
    still_live = {(e.contact_id, e.sequence_id) for e in live if e.pk not in changes.ended}
    # What a browser key sent is public input: it may start a sequence for a known
    # contact, but its properties never reach an email (DESIGN.md invariant 8).
    public = activity_sources_from_browser_keys({a.source for _, a in matches.values()})
    new = []
    for (contact_id, sequence_id), (sequence, activity) in matches.items():
        contact = contacts[contact_id]
        if (contact_id, sequence_id) in still_live:
            continue
        if not reenrollment_allows(sequence, previous.get((contact_id, sequence_id)), now):
            continue
        if not audience_admits(sequence, contact_facts(contact)):
            continue
        if not in_audience_segment(sequence, contact_id, members):
            continue
        new.append(
            enrollment_build(
                contact=contact,
                sequence=sequence,
                now=now,
                trigger_properties=_trigger_properties(activity, public),
            )
        )
    return enrollments_bulk_save(new, now)


def _trigger_properties(activity: Activity, public_sources: set[str]) -> dict:
    """What an email may show of the activity that started the enrollment (`trigger.*`)."""
    if activity.source in public_sources:
        return {"kind": activity.kind}
    return {"kind": activity.kind, **(activity.properties or {})}


def _active_triggers() -> list[Trigger]:
    return list(
        Trigger.objects.filter(
            sequence__status=Sequence.Status.ACTIVE, sequence__current_version__isnull=False
        )
        .exclude(type__in=[Trigger.Type.MANUAL, Trigger.Type.DATE_PROPERTY])
        .select_related("sequence__current_version", "sequence__topic", "segment")
    )


def _trigger_matches(activities, triggers) -> dict[tuple[int, int], tuple[Sequence, Activity]]:
    """The first activity of the batch that triggers each (contact, sequence)."""
    matches: dict[tuple[int, int], tuple[Sequence, Activity]] = {}
    # Only the triggers that can fire on an activity's kind are tried: a segment's first
    # evaluation announces 50,000 entries per range, and trying every trigger on each
    # was a visible share of it. trigger_fires() still decides.
    by_kind: dict[str, list[Trigger]] = defaultdict(list)
    for trigger in triggers:
        by_kind[_trigger_kind(trigger)].append(trigger)
    any_kind = by_kind.pop("", [])
    for activity in activities:
        candidates = by_kind.get(activity.kind, [])
        for trigger in [*candidates, *any_kind] if any_kind else candidates:
            pair = (activity.contact_id, trigger.sequence_id)
            if pair not in matches and trigger_fires(trigger, activity):
                matches[pair] = (trigger.sequence, activity)
    return matches


def _trigger_kind(trigger: Trigger) -> str:
    """The one activity kind the trigger can fire on ("" when it could be any)."""
    if trigger.type == Trigger.Type.LIFECYCLE_STAGE:
        return K.LIFECYCLE_STAGE_CHANGED
    if trigger.type == Trigger.Type.SEGMENT_ENTERED:
        return SEGMENT_ENTERED
    if trigger.type == Trigger.Type.ACTIVITY:
        return trigger.activity_kind or ""
    return ""  # a type this index does not know: tried on every activity, as before


def trigger_fires(trigger: Trigger, activity: Activity) -> bool:
    """Does this activity start the trigger's sequence?"""
    properties = activity.properties or {}
    if trigger.type == Trigger.Type.LIFECYCLE_STAGE:
        return (
            activity.kind == K.LIFECYCLE_STAGE_CHANGED
            and properties.get("to") == trigger.lifecycle_stage
        )
    if trigger.type == Trigger.Type.SEGMENT_ENTERED:
        return (
            activity.kind == SEGMENT_ENTERED
            and trigger.segment is not None
            and properties.get("segment") == trigger.segment.key
            # Members found by a new segment's first evaluation were there all along.
            and (trigger.include_existing_members or not properties.get("initial"))
        )
    if trigger.type == Trigger.Type.CHURN_RISK_ROSE:
        return _churn_risk_rose_above(trigger.churn_risk_above, activity.kind, properties)
    return activity.kind == trigger.activity_kind and properties_match(
        trigger.conditions, activity.kind, properties
    )


def _churn_risk_rose_above(percent: int | None, kind: str, properties: dict) -> bool:
    """A predictions refit moved the contact's churn risk from below percent to at least it."""
    if kind != CHURN_RISK_ROSE or percent is None:
        return False
    previous, current = properties.get("previous"), properties.get("churn_risk")
    if not isinstance(previous, int | float) or not isinstance(current, int | float):
        return False
    return previous < percent <= current


def _previous_enrollments(matches) -> dict[tuple[int, int], Enrollment]:
    contact_ids = {contact_id for contact_id, _ in matches}
    sequence_ids = {sequence_id for _, sequence_id in matches}
    latest: dict[tuple[int, int], Enrollment] = {}
    rows = Enrollment.objects.filter(
        contact_id__in=contact_ids, sequence_id__in=sequence_ids
    ).order_by("-enrolled_at", "-pk")
    for enrollment in rows:
        latest.setdefault((enrollment.contact_id, enrollment.sequence_id), enrollment)
    return defaultdict(lambda: None, latest)
