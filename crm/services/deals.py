"""Deals and their pipeline."""

import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Activity, Company, Contact, Deal, DealStage
from crm.services.activities import activity_record


@transaction.atomic
def deal_create(
    *,
    name: str,
    stage: DealStage,
    contact: Contact | None = None,
    company: Company | None = None,
    owner: AbstractBaseUser | None = None,
    amount: Decimal | int = 0,
    currency: str = "EUR",
    expected_close_on: datetime.date | None = None,
    lost_reason: str = "",
) -> Deal:
    """Open a deal in `stage` and record it on the contact's timeline."""
    if company is None and contact is not None:
        company = contact.company
    deal = Deal(
        name=name,
        stage=stage,
        contact=contact,
        company=company,
        owner=owner,
        amount=amount,
        currency=currency,
        expected_close_on=expected_close_on,
    )
    _close_if_final(deal, stage, lost_reason)
    deal.full_clean(exclude=["contact", "company", "owner", "stage"])
    deal.save()
    _record_stage(deal, from_stage=None)
    return deal


@transaction.atomic
def deal_move_stage(
    *,
    deal: Deal,
    stage: DealStage,
    lost_reason: str = "",
    occurred_at: datetime.datetime | None = None,
) -> Deal:
    """Move the deal to `stage`; a lost deal needs its reason. Closing stamps closed_at."""
    locked = Deal.objects.select_for_update().select_related("stage").get(pk=deal.pk)
    if locked.stage_id == stage.pk:
        return locked
    from_stage = locked.stage
    locked.stage = stage
    _close_if_final(locked, stage, lost_reason, occurred_at)
    locked.save()
    _record_stage(locked, from_stage=from_stage, occurred_at=occurred_at)
    return locked


def _close_if_final(
    deal: Deal, stage: DealStage, lost_reason: str, at: datetime.datetime | None = None
) -> None:
    if stage.outcome == DealStage.Outcome.LOST and not lost_reason.strip():
        raise ValidationError({"lost_reason": "Say why the deal was lost."})
    if stage.outcome == DealStage.Outcome.OPEN:
        deal.closed_at = None
        deal.lost_reason = ""
    else:
        deal.closed_at = at or timezone.now()
        deal.lost_reason = lost_reason.strip() if stage.outcome == DealStage.Outcome.LOST else ""


def _record_stage(
    deal: Deal, *, from_stage: DealStage | None, occurred_at: datetime.datetime | None = None
) -> None:
    if deal.contact_id is None:
        return
    activity_record(
        kind=Activity.Kind.DEAL_STAGE_CHANGED,
        source="crm",
        contact=deal.contact,
        occurred_at=occurred_at,
        properties={
            "deal_id": deal.pk,
            "from": from_stage.key if from_stage else None,
            "to": deal.stage.key,
            "outcome": deal.stage.outcome,
            "amount": f"{Decimal(deal.amount):.2f}",
            "currency": deal.currency,
        },
    )
