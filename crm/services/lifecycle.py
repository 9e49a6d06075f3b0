"""Moving contacts through the customer journey."""

import datetime
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Activity, Contact, LifecycleStage, LifecycleStageChange
from crm.services.activities import ActivityInput, activity_record, activity_record_batch
from crm.set_inserts import model_new, rows_insert
from crm.signals import lifecycle_stage_changed


@transaction.atomic
def lifecycle_stage_change(
    *,
    contact: Contact,
    stage: str,
    source: str,
    reason: str = "",
    changed_by: AbstractBaseUser | None = None,
    occurred_at: datetime.datetime | None = None,
) -> LifecycleStageChange | None:
    """Move the contact to `stage`, recording who or what did it and why; None if already there."""
    if not LifecycleStage.objects.filter(key=stage).exists():
        raise ValidationError({"lifecycle_stage": f"There is no lifecycle stage {stage!r}."})
    locked = Contact.objects.select_for_update().only("lifecycle_stage").get(pk=contact.pk)
    if locked.lifecycle_stage_id == stage:
        return None
    at = occurred_at or timezone.now()
    Contact.objects.filter(pk=contact.pk).update(
        lifecycle_stage=stage, lifecycle_stage_changed_at=at, updated_at=timezone.now()
    )
    change = LifecycleStageChange.objects.create(
        contact=contact,
        from_stage_id=locked.lifecycle_stage_id,
        to_stage_id=stage,
        changed_by=changed_by,
        source=source,
        reason=reason,
        changed_at=at,
    )
    contact.lifecycle_stage_id = stage
    contact.lifecycle_stage_changed_at = at
    activity_record(
        kind=Activity.Kind.LIFECYCLE_STAGE_CHANGED,
        source="crm",
        contact=contact,
        occurred_at=at,
        properties={"from": locked.lifecycle_stage_id, "to": stage, "by": source},
    )
    lifecycle_stage_changed.send(sender=Contact, contact=contact, change=change)
    return change


@transaction.atomic
def lifecycle_stage_change_many(
    *,
    contacts: Sequence[Contact],
    stage: str,
    source: str,
    reason: str = "",
    occurred_at: datetime.datetime | None = None,
) -> list[LifecycleStageChange]:
    """lifecycle_stage_change for many contacts, in a fixed number of queries.

    Contacts already at `stage` are skipped. Their rows are locked in pk order, so two
    batches moving overlapping contacts wait for each other instead of deadlocking.
    """
    if not contacts:
        return []
    if not LifecycleStage.objects.filter(key=stage).exists():
        raise ValidationError({"lifecycle_stage": f"There is no lifecycle stage {stage!r}."})
    by_pk = {contact.pk: contact for contact in contacts}
    locked = dict(
        Contact.objects.select_for_update()
        .filter(pk__in=sorted(by_pk))
        .order_by("pk")
        .values_list("pk", "lifecycle_stage")
    )
    moving = [pk for pk in sorted(by_pk) if pk in locked and locked[pk] != stage]
    if not moving:
        return []
    at = occurred_at or timezone.now()
    Contact.objects.filter(pk__in=moving).update(
        lifecycle_stage=stage, lifecycle_stage_changed_at=at, updated_at=timezone.now()
    )
    changes = [
        _stage_change_new(
            contact_id=pk,
            from_stage_id=locked[pk],
            to_stage_id=stage,
            source=source,
            reason=reason,
            changed_at=at,
        )
        for pk in moving
    ]
    rows_insert(LifecycleStageChange, changes)
    for pk in moving:
        by_pk[pk].lifecycle_stage_id = stage
        by_pk[pk].lifecycle_stage_changed_at = at
    activity_record_batch(
        items=[
            ActivityInput(
                kind=Activity.Kind.LIFECYCLE_STAGE_CHANGED,
                source="crm",
                contact_id=pk,
                occurred_at=at,
                properties={"from": locked[pk], "to": stage, "by": source},
            )
            for pk in moving
        ]
    )
    for pk, change in zip(moving, changes, strict=True):
        change.contact = by_pk[pk]
        lifecycle_stage_changed.send(sender=Contact, contact=by_pk[pk], change=change)
    return changes


_stage_change_new = model_new(LifecycleStageChange)
