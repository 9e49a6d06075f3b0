"""Moving contacts through the customer journey."""

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Activity, Contact, LifecycleStage, LifecycleStageChange
from crm.services.activities import activity_record
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
