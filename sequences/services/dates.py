"""Date-property triggers: enroll contacts whose date (renewal, birthday) is some days away.

A daily task runs date_triggers_enroll. Each trigger finds its contacts in one query
over the JSON property (crm.segments' JsonText, the same on SQLite and PostgreSQL),
and the enrollment records the date it was for (`trigger_on`): the unique constraint
enrollment_once_per_trigger_date makes a re-run, or a second run the same day, a no-op.
"""

import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from crm.models import Contact
from crm.segments.compiler import DATE_PATTERN, JsonText
from sequences.conditions import contact_facts
from sequences.models import Enrollment, Sequence, Trigger
from sequences.services.enrollments import (
    audience_admits,
    audience_segment_members,
    enrollment_build,
    enrollments_bulk_save,
    in_audience_segment,
    reenrollment_allows,
)
from sequences.services.moves import enqueue_run

BATCH = 500


def date_triggers_enroll(*, now: datetime.datetime | None = None) -> int:
    """Enroll every contact whose trigger date is due today; return how many entered."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    triggers = Trigger.objects.filter(
        type=Trigger.Type.DATE_PROPERTY,
        sequence__status=Sequence.Status.ACTIVE,
        sequence__current_version__isnull=False,
    ).select_related("sequence__current_version", "sequence__topic")
    return sum(_trigger_enroll(trigger, today, now) for trigger in triggers)


def _trigger_enroll(trigger: Trigger, today: datetime.date, now: datetime.datetime) -> int:
    target = today + datetime.timedelta(days=trigger.days_before)
    candidates = _contacts_due(trigger, target).order_by("pk")
    entered, after = 0, 0
    while True:
        batch = list(
            candidates.filter(pk__gt=after)
            .select_related("company")
            .prefetch_related("tags")[:BATCH]
        )
        if not batch:
            return entered
        entered += _enroll_batch(trigger.sequence, batch, target, now)
        after = batch[-1].pk


def _contacts_due(trigger: Trigger, target: datetime.date) -> QuerySet[Contact]:
    """Contacts whose date property falls on `target`, not yet enrolled for it nor live."""
    day = Substr(JsonText("properties", trigger.date_property), 1, 10)
    contacts = Contact.objects.alias(trigger_day=day).filter(trigger_day__regex=DATE_PATTERN)
    if trigger.is_yearly:
        contacts = contacts.alias(month_day=Substr("trigger_day", 6, 5)).filter(
            month_day__in=_month_days(target)
        )
    else:
        contacts = contacts.filter(trigger_day=target.isoformat())
    taken = Enrollment.objects.filter(sequence=trigger.sequence, contact=OuterRef("pk")).filter(
        Q(trigger_on=target) | Q(state__in=Enrollment.LIVE_STATES)
    )
    return contacts.exclude(Exists(taken))


def _month_days(target: datetime.date) -> list[str]:
    """Month-days celebrated on `target`: 29 February falls on 1 March in other years."""
    days = [target.strftime("%m-%d")]
    is_leap = target.year % 4 == 0 and (target.year % 100 != 0 or target.year % 400 == 0)
    if target.month == 3 and target.day == 1 and not is_leap:
        days.append("02-29")
    return days


@transaction.atomic
def _enroll_batch(sequence: Sequence, contacts: list[Contact], target, now) -> int:
    previous: dict[int, Enrollment] = {}
    rows = Enrollment.objects.filter(sequence=sequence, contact__in=contacts)
    for enrollment in rows.order_by("-enrolled_at", "-pk"):
        previous.setdefault(enrollment.contact_id, enrollment)
    members = audience_segment_members([sequence], [contact.pk for contact in contacts])
    properties = {"kind": "date_property", "date": target.isoformat()}
    new = [
        enrollment_build(
            contact=contact,
            sequence=sequence,
            now=now,
            trigger_properties=properties,
            trigger_on=target,
        )
        for contact in contacts
        if reenrollment_allows(sequence, previous.get(contact.pk), now)
        and audience_admits(sequence, contact_facts(contact))
        and in_audience_segment(sequence, contact.pk, members)
    ]
    saved = enrollments_bulk_save(new, now)
    enqueue_run([enrollment.pk for enrollment in saved])
    return len(saved)
