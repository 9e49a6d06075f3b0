"""The sunset policy: stop mailing people who stopped reading, after one last try.

A contact is suppressed as `inactive` when all of these hold:
- no engagement (crm's last_engaged_at, which ignores machine opens) for
  DELIVERABILITY_SUNSET_DAYS, and the contact is at least that old;
- a re-engagement attempt: a marketing email sent after their last engagement, at
  least DELIVERABILITY_SUNSET_GRACE_DAYS ago (e.g. the re-engagement playbook's),
  which they did not answer (any answer would have moved last_engaged_at past it);
- no active suppression yet.
One query selects them; suppressions are inserted in bulk (the unique
(email_hash, reason) constraint makes a re-run a no-op).
"""

import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from crm.emails import email_hash
from crm.models import Contact, Suppression
from crm.selectors import contact_is_suppressed_expression
from sequences.models import OutboundMessage

CHUNK = 1000
SOURCE = "sunset policy"


def sunset_candidates(*, now: datetime.datetime):
    quiet_since = now - datetime.timedelta(days=settings.DELIVERABILITY_SUNSET_DAYS)
    attempt_before = now - datetime.timedelta(days=settings.DELIVERABILITY_SUNSET_GRACE_DAYS)
    unanswered_attempt = OutboundMessage.objects.filter(
        Q(contact__last_engaged_at__isnull=True) | Q(sent_at__gt=OuterRef("last_engaged_at")),
        contact=OuterRef("pk"),
        is_marketing=True,
        state=OutboundMessage.State.SENT,
        sent_at__lte=attempt_before,
    )
    return (
        Contact.objects.exclude(email="")
        .filter(Q(last_engaged_at__isnull=True) | Q(last_engaged_at__lt=quiet_since))
        .filter(created_at__lt=quiet_since)
        .filter(Exists(unanswered_attempt))
        .exclude(contact_is_suppressed_expression())
    )


def sunset_inactive(*, now: datetime.datetime | None = None) -> int:
    """Suppress every sunset candidate as `inactive`; return how many rows were added."""
    now = now or timezone.now()
    emails = list(sunset_candidates(now=now).values_list("email", flat=True))
    added = 0
    for start in range(0, len(emails), CHUNK):
        rows = [
            Suppression(
                email=email,
                email_hash=email_hash(email),
                reason=Suppression.Reason.INACTIVE,
                source=SOURCE,
                detail="No engagement after a re-engagement attempt.",
            )
            for email in emails[start : start + CHUNK]
        ]
        added += len(Suppression.objects.bulk_create(rows, ignore_conflicts=True))
    return added
