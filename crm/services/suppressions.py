"""The suppression list: addresses that get no marketing, whatever else says."""

import datetime
import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from crm.emails import email_hash, normalise_email
from crm.models import Suppression

logger = logging.getLogger(__name__)

#: Reasons no one may lift: the person complained or asked to be forgotten.
PERMANENT_REASONS = frozenset({Suppression.Reason.COMPLAINT, Suppression.Reason.ERASED})


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
    """Suppress the address for this reason; adding the same reason again changes nothing.

    Suppressions are sticky: an existing row is returned as it is, never shortened.
    """
    email = normalise_email(email)
    if reason not in Suppression.Reason.values:
        raise ValidationError({"reason": f"Unknown suppression reason {reason!r}."})
    if expires_at is not None and reason != Suppression.Reason.SOFT_BOUNCE:
        raise ValidationError({"expires_at": "Only soft-bounce suppressions can end."})
    hashed = email_hash(email)
    existing = Suppression.objects.filter(email_hash=hashed, reason=reason).first()
    if existing is not None:
        return existing
    suppression = Suppression(
        email="" if reason == Suppression.Reason.ERASED else email,
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
        return Suppression.objects.get(email_hash=hashed, reason=reason)
    return suppression


@transaction.atomic
def suppression_lift(*, suppression: Suppression, lifted_by: AbstractBaseUser | None) -> None:
    """Remove a suppression staff added in error; complaints and erasures can never be lifted."""
    if suppression.reason in PERMANENT_REASONS:
        raise ValidationError(
            f"A suppression for “{suppression.get_reason_display()}” can never be lifted."
        )
    Suppression.objects.filter(pk=suppression.pk).delete()
    logger.info(
        "suppression %s (%s) lifted by user %s",
        suppression.pk,
        suppression.reason,
        lifted_by.pk if lifted_by else None,
    )
