"""Sequence lifecycle: activate (a new version), pause, resume, archive; previews and tests."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from crm.services.mail import SystemEmailFailed, SystemEmailKind, system_email_send
from sequences.models import EmailTemplate, Sequence, SequenceVersion
from sequences.rendering import RenderedEmail, render_email
from sequences.review import review_errors, sequence_findings

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
    Sequence.objects.filter(pk=sequence.pk).update(status=Status.ACTIVE, current_version=version)
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
