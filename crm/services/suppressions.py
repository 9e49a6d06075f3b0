"""The suppression list: addresses that get no marketing, whatever else says.

Suppressions are sticky. Lifting one is rare, needs a reason, and leaves an
append-only SuppressionLift row:
- an objection (complaint, unsubscribe from all, erasure) is the person's: no staff
  user lifts it, superusers included. Their own new consent lifts "unsubscribed";
  a complaint or an erasure is never lifted (not even a confirmation mail reaches them);
- the inactivity sunset is lifted by the person's own new consent as well;
- a bounce, a soft-bounce cool-down or staff's manual entry may be lifted by staff,
  with a reason.
"""

import datetime
import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from crm.emails import email_hash, normalise_email
from crm.models import ConsentEntry, Suppression, SuppressionLift

logger = logging.getLogger(__name__)
Reason = Suppression.Reason

#: Reasons no one may lift: the person complained or asked to be forgotten.
PERMANENT_REASONS = frozenset({Reason.COMPLAINT, Reason.ERASED})
#: The person objected to direct marketing: only they can take that back.
OBJECTIONS = frozenset({Reason.COMPLAINT, Reason.UNSUBSCRIBED, Reason.ERASED})
#: What the person's own, proven new consent (double opt-in, preference centre) lifts.
LIFTED_BY_OWN_CONSENT = frozenset({Reason.UNSUBSCRIBED, Reason.INACTIVE})
MIN_REASON_LENGTH = 10


@transaction.atomic
def suppression_add(
    *,
    email: str,
    reason: str,
    source: str,
    detail: str = "",
    expires_at: datetime.datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Suppression:
    """Suppress the address for this reason; adding the same reason again never shortens it.

    Only a soft-bounce cool-down ends. A new one for an address whose earlier cool-down
    has ended (or ends sooner) moves the end out; an active, longer one stays as it is.
    """
    email = normalise_email(email)
    if reason not in Reason.values:
        raise ValidationError({"reason": f"Unknown suppression reason {reason!r}."})
    if expires_at is not None and reason != Reason.SOFT_BOUNCE:
        raise ValidationError({"expires_at": "Only soft-bounce suppressions can end."})
    hashed = email_hash(email)
    existing = Suppression.objects.filter(email_hash=hashed, reason=reason).first()
    if existing is not None:
        return _extended(existing, expires_at=expires_at, source=source, detail=detail)
    suppression = Suppression(
        email="" if reason == Reason.ERASED else email,
        email_hash=hashed,
        reason=reason,
        source=source,
        detail=detail,
        expires_at=expires_at,
        created_by=created_by,
    )
    try:
        with transaction.atomic():
            suppression.save()
    except IntegrityError:
        existing = Suppression.objects.get(email_hash=hashed, reason=reason)
        return _extended(existing, expires_at=expires_at, source=source, detail=detail)
    return suppression


def _extended(existing: Suppression, *, expires_at, source: str, detail: str) -> Suppression:
    """Push an ending suppression's end out to `expires_at` (None: never ends); never in."""
    if existing.expires_at is None:
        return existing  # permanent already
    longer = Q(expires_at__lt=expires_at) if expires_at is not None else Q()
    # A conditional UPDATE, so two bounces processed at once cannot shorten each other.
    changed = Suppression.objects.filter(longer, pk=existing.pk, expires_at__isnull=False).update(
        expires_at=expires_at, source=source, detail=detail
    )
    if changed:
        existing.refresh_from_db()
    return existing


@transaction.atomic
def suppression_lift(
    *, suppression: Suppression, lifted_by: AbstractBaseUser, reason: str
) -> SuppressionLift:
    """Staff lift a suppression, giving a reason; objections are never theirs to lift."""
    reason = (reason or "").strip()
    if suppression.reason in OBJECTIONS:
        raise ValidationError(
            f"A suppression for “{suppression.get_reason_display()}” is the person's "
            "objection: only their own new consent can lift it, never staff."
        )
    if lifted_by is None or not lifted_by.pk:
        raise ValidationError("Say who lifts the suppression.")
    if len(reason) < MIN_REASON_LENGTH:
        raise ValidationError(
            f"Give the reason for lifting the suppression (at least {MIN_REASON_LENGTH} "
            "characters); it is kept with the record of the lift."
        )
    lift = _lift(suppression, via=SuppressionLift.Via.STAFF, note=reason, lifted_by=lifted_by)
    logger.info(
        "suppression %s (%s) lifted by user %s", suppression.pk, suppression.reason, lifted_by.pk
    )
    return lift


@transaction.atomic
def suppressions_lift_by_consent(*, entry: ConsentEntry) -> list[SuppressionLift]:
    """The person's own new consent (`entry`, a grant) lifts their unsubscribe and sunset."""
    if not entry.is_granted:
        raise ValueError("Only a grant of consent lifts a suppression.")
    note = f"New consent: {entry.get_method_display()} ({entry.source}), topic {entry.topic.key}"
    suppressions = Suppression.objects.select_for_update().filter(
        email_hash=email_hash(entry.email_at_time), reason__in=LIFTED_BY_OWN_CONSENT
    )
    return [
        _lift(suppression, via=SuppressionLift.Via.OWN_CONSENT, note=note, entry=entry)
        for suppression in suppressions.order_by("pk")
    ]


def _lift(
    suppression: Suppression,
    *,
    via: str,
    note: str,
    lifted_by: AbstractBaseUser | None = None,
    entry: ConsentEntry | None = None,
) -> SuppressionLift:
    # The delete is the claim: of two lifts at once, one finds the row gone.
    deleted, _ = Suppression.objects.filter(pk=suppression.pk).delete()
    if not deleted:
        raise ValidationError("That suppression was lifted already.")
    return SuppressionLift.objects.create(
        email_hash=suppression.email_hash,
        reason=suppression.reason,
        suppression_source=suppression.source[:300],
        suppressed_at=suppression.created_at,
        via=via,
        note=note,
        consent_entry_pk=entry.pk if entry else None,
        lifted_by=lifted_by,
        lifted_at=timezone.now(),
    )
