"""Sequence lifecycle: review, activate (a new version), pause, resume, archive; previews."""

import datetime
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone
from django_q.tasks import async_task

from crm.conditions.evaluator import definition_is_empty
from crm.segment_selectors import segment_contacts, segment_current_memberships
from crm.segments.compiler import SegmentCompileError
from crm.services.mail import SystemEmailFailed, SystemEmailKind, system_email_send
from sequences.models import EmailTemplate, Sequence, SequenceVersion, Step, Trigger
from sequences.rendering import RenderedEmail, render_email
from sequences.review import Finding, review_errors, sequence_findings
from sequences.services.existing_members import TASK as EXISTING_MEMBERS_TASK
from sequences.services.existing_members import existing_members, existing_members_pending
from sequences.services.steps import wait_end

Status = Sequence.Status


def steps_snapshot(sequence: Sequence) -> list[dict]:
    """The sequence's steps as plain data, as a version stores them."""
    return [
        {
            "key": step.key,
            "type": step.type,
            "config": step.config,
            "template_id": step.template_id,
            "template_key": step.template.key if step.template else "",
        }
        for step in sequence.steps.select_related("template").order_by("position", "pk")
    ]


# --- The activation review --------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerEntry:
    """Who one trigger lets in: a count of those entering at activation (None: nobody now)."""

    trigger: str
    enters_now: int | None
    explanation: str


@dataclass(frozen=True)
class ActivationReview:
    """What activating would do: the quality review, who enters now, when the first email goes."""

    sequence: Sequence
    findings: list[Finding]
    entries: list[TriggerEntry]
    first_send: str
    quiet_hours: str

    @property
    def blockers(self) -> list[str]:
        return review_errors(self.findings)

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.is_error]

    @property
    def enters_now(self) -> int:
        return sum(entry.enters_now or 0 for entry in self.entries)

    @property
    def only_future(self) -> bool:
        return all(entry.enters_now is None for entry in self.entries)

    @property
    def can_activate(self) -> bool:
        return not self.blockers and self.sequence.status != Status.ARCHIVED


def sequence_activation_review(*, sequence: Sequence) -> ActivationReview:
    """Review the sequence as it would be published now, without changing anything."""
    steps = list(sequence.steps.order_by("position", "pk"))
    quiet = (
        ""
        if sequence.is_transactional
        else (
            f"Marketing emails are held during quiet hours ({settings.SEQUENCES_QUIET_HOURS} in "
            "each contact's time zone) and by the frequency cap; the send gate still decides "
            "every email."
        )
    )
    triggers = sequence.triggers.select_related("segment").order_by("pk")
    return ActivationReview(
        sequence=sequence,
        findings=sequence_findings(sequence),
        entries=[_trigger_entry(sequence, trigger) for trigger in triggers]
        or [TriggerEntry("none", None, "No trigger: contacts enter only by hand or the API.")],
        first_send=_first_send(steps),
        quiet_hours=quiet,
    )


def _trigger_entry(sequence: Sequence, trigger: Trigger) -> TriggerEntry:
    label = str(trigger)
    if trigger.type == Trigger.Type.ACTIVITY:
        return TriggerEntry(
            label,
            None,
            f"Future behaviour only: a contact enters when a {trigger.activity_kind} activity "
            "is recorded after activation; nobody enters at activation.",
        )
    if trigger.type == Trigger.Type.LIFECYCLE_STAGE:
        return TriggerEntry(
            label,
            None,
            f"Future behaviour only: contacts who move into the {trigger.lifecycle_stage} stage "
            "after activation; contacts already in it do not enter.",
        )
    if trigger.type == Trigger.Type.DATE_PROPERTY:
        return TriggerEntry(
            label,
            None,
            f"Each day at the 06:00 run: contacts whose {trigger.date_property} is "
            f"{trigger.days_before} days away; nobody enters at activation itself.",
        )
    if trigger.type == Trigger.Type.SEGMENT_ENTERED and trigger.segment is not None:
        return _segment_entry(sequence, trigger, label)
    if trigger.type == Trigger.Type.CHURN_RISK_ROSE:
        return TriggerEntry(
            label,
            None,
            f"At the nightly predictions refit: customers whose churn risk moves from below "
            f"{trigger.churn_risk_above}% to at least it; nobody enters at activation.",
        )
    return TriggerEntry(label, None, "Manual: contacts enter only by hand (admin) or the API.")


def _segment_entry(sequence: Sequence, trigger: Trigger, label: str) -> TriggerEntry:
    segment = trigger.segment
    future = f"Future behaviour only: contacts who enter segment “{segment}” after activation"
    if not trigger.include_existing_members:
        return TriggerEntry(
            label, None, f"{future}; its {segment.member_count} current members do not enter."
        )
    if segment.last_evaluated_at is not None:
        # The segment's first evaluation already ran: the first activation enrolls its
        # current members instead (services/existing_members.py).
        if sequence.current_version_id is not None:
            return TriggerEntry(
                label,
                None,
                f"{future}. Its current members were included when the sequence was first "
                "activated; activating again does not enroll them a second time.",
            )
        count = existing_members(trigger).count()
        caveat = (
            " (before the audience conditions and re-enrollment policy, checked per contact)"
            if sequence.audience_conditions or sequence.reenrollment != "never"
            else ""
        )
        return TriggerEntry(
            label,
            count,
            f"Activating enrolls the segment's {count} current members{caveat} "
            f"(evaluated {segment.last_evaluated_at:%Y-%m-%d %H:%M} UTC), then anyone who "
            "enters it later.",
        )
    try:
        matching = segment_contacts(segment=segment)
    except SegmentCompileError as exc:
        return TriggerEntry(label, 0, f"The segment cannot be evaluated: {exc}")
    if sequence.audience_segment_id:
        audience = segment_current_memberships(sequence.audience_segment_id)
        matching = matching.filter(Exists(audience.filter(contact_id=OuterRef("pk"))))
    count = matching.count()
    caveat = (
        " (before the audience conditions, checked for each contact at entry)"
        if not definition_is_empty(sequence.audience_conditions)
        else ""
    )
    return TriggerEntry(
        label,
        count,
        f"The segment's first evaluation will enroll the {count} contacts who match it "
        f"now{caveat}, then anyone who enters it later.",
    )


def _first_send(steps: list[Step], now: datetime.datetime | None = None) -> str:
    """When the first email step runs after entry, following the steps in order.

    While only fixed waits come first, it also says when someone entering now would get
    it (before quiet hours and the frequency cap, which the send gate applies).
    """
    waits: list[str] = []
    earliest = now or timezone.now()
    for step in steps:
        config = step.config or {}
        if step.type == Step.Type.SEND_EMAIL:
            when = "right after entry" if not waits else "after " + ", then ".join(waits)
            at = f" Someone entering now: {earliest:%Y-%m-%d %H:%M} UTC." if earliest else ""
            return f"First email: step {step.key}, {when}.{at}"
        if step.type == Step.Type.WAIT_DURATION:
            duration = config.get("duration")
            waits.append(_wait_text(duration))
            earliest = wait_end(earliest, duration) if earliest and _is_duration(duration) else None
            continue
        if step.type in (Step.Type.WAIT_UNTIL_TIME, Step.Type.WAIT_UNTIL_DATE, "wait_for_event"):
            earliest = None  # depends on the contact's zone, data or behaviour
        if step.type == Step.Type.WAIT_UNTIL_TIME:
            waits.append(f"at the next {config.get('time')} in the contact's time zone")
        elif step.type == Step.Type.WAIT_UNTIL_BEST_TIME:
            waits.append(
                f"at the contact's best send time within {config.get('within_hours')} hours"
            )
        elif step.type == Step.Type.WAIT_UNTIL_DATE:
            waits.append(
                f"on the date in {config.get('property')} "
                f"{config.get('offset_days', 0):+d} days at {config.get('time', '09:00')}"
            )
        elif step.type == Step.Type.WAIT_FOR_EVENT:
            event = (config.get("event") or {}).get("activity", "the event")
            timeout = _wait_text(config.get("timeout"))
            waits.append(f"when {event} happens or {timeout} pass")
        elif step.type == Step.Type.BRANCH_IF:
            return f"The first email depends on the branch at step {step.key}."
        elif step.type == Step.Type.END:
            break
    return "The sequence sends no email."


def _is_duration(duration) -> bool:
    return isinstance(duration, dict) and all(
        isinstance(value, int) and value >= 0 for value in duration.values()
    )


def _wait_text(duration) -> str:
    """A wait in words, business days included: “2 business days, 3 hours”."""
    text = _duration_text(_timedelta(duration))
    business = duration.get("business_days") if isinstance(duration, dict) else None
    if not business:
        return text
    words = f"{business} business day{'s' if business != 1 else ''}"
    return words if text == "0 minutes" else f"{words}, {text}"


def _timedelta(duration) -> datetime.timedelta:
    if not isinstance(duration, dict):
        return datetime.timedelta()
    units = {unit: duration[unit] for unit in ("days", "hours", "minutes") if unit in duration}
    try:
        return datetime.timedelta(**units)
    except TypeError:
        return datetime.timedelta()


def _duration_text(delay: datetime.timedelta) -> str:
    hours, seconds = divmod(int(delay.total_seconds()) % 86400, 3600)
    parts = [(delay.days, "day"), (hours, "hour"), (seconds // 60, "minute")]
    words = [f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in parts if count]
    return ", ".join(words) or "0 minutes"


# --- Status changes ------------------------------------------------------------------------------


@transaction.atomic
def sequence_activate(*, sequence: Sequence, user=None) -> SequenceVersion:
    """Review, then publish the current steps as a new version and start taking contacts.

    Contacts already enrolled stay on the version they entered; only new
    enrollments use the new version, so no one is sent a step twice or stranded.
    """
    sequence = Sequence.objects.select_for_update().get(pk=sequence.pk)
    if sequence.status == Status.ARCHIVED:
        raise ValidationError("An archived sequence cannot be activated.")
    errors = review_errors(sequence_findings(sequence))
    if errors:
        raise ValidationError(errors)
    snapshot = steps_snapshot(sequence)
    current = sequence.current_version
    if current is not None and current.steps == snapshot:
        version = current
    else:
        number = (sequence.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        version = SequenceVersion.objects.create(
            sequence=sequence, number=number, steps=snapshot, created_by=user
        )
    first_time = sequence.current_version_id is None
    Sequence.objects.filter(pk=sequence.pk).update(status=Status.ACTIVE, current_version=version)
    if first_time:
        # "Include existing members" of an already evaluated segment: enrolled in the
        # background once this activation commits (the review counted them).
        triggers = sequence.triggers.select_related("segment")
        for trigger in triggers:
            if existing_members_pending(trigger):
                transaction.on_commit(partial(async_task, EXISTING_MEMBERS_TASK, trigger.pk))
    return version


@transaction.atomic
def sequence_pause(*, sequence: Sequence) -> Sequence:
    """Hold every contact where they are; goals and exits still end enrollments."""
    return _set_status(sequence, Status.PAUSED, allowed_from={Status.ACTIVE})


@transaction.atomic
def sequence_resume(*, sequence: Sequence) -> Sequence:
    """Continue where contacts were held; the send ledger stops any step being sent twice."""
    return _set_status(sequence, Status.ACTIVE, allowed_from={Status.PAUSED})


@transaction.atomic
def sequence_archive(*, sequence: Sequence) -> Sequence:
    """Stop taking contacts and stop running; enrollments stay visible with their history."""
    return _set_status(sequence, Status.ARCHIVED, allowed_from=set(Status))


def _set_status(sequence: Sequence, status: str, *, allowed_from: set) -> Sequence:
    changed = Sequence.objects.filter(pk=sequence.pk, status__in=allowed_from).update(status=status)
    if not changed:
        raise ValidationError(f"“{sequence}” cannot become {status} from {sequence.status}.")
    sequence.refresh_from_db()
    return sequence


def template_preview(*, template: EmailTemplate, contact, sequence: Sequence | None = None):
    """Render the template for a real contact, as the engine would (nothing is sent)."""
    from sequences.models import Enrollment
    from sequences.services.sending import email_context

    sequence = sequence or Sequence(name="Preview", key="preview", owner=contact.owner)
    enrollment = Enrollment(contact=contact, sequence=sequence, trigger_properties={})
    return render_email(template, email_context(enrollment, template))


def template_send_test(*, template: EmailTemplate, contact, user) -> RenderedEmail:
    """Email the preview for `contact` to the staff user, marked as a test.

    It goes through the system email path like every other email: a ledger row of kind
    template_test (never counted as marketing), and nothing to a suppressed address.
    """
    if not user.email:
        raise ValidationError("Your user has no email address to send the test to.")
    rendered = template_preview(template=template, contact=contact)
    try:
        result = system_email_send(
            to=user.email,
            subject=f"[TEST] {rendered.subject}",
            body=rendered.text,
            html=rendered.html,
            kind=SystemEmailKind.TEMPLATE_TEST,
            metadata={"template_id": str(template.pk)},
        )
    except SystemEmailFailed as exc:
        raise ValidationError(f"The test email was not sent: {exc.reason}") from None
    if not result.is_sent:
        raise ValidationError(
            f"The test email was not sent: your address is suppressed ({result.reason})."
        )
    return rendered
