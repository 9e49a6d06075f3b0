"""Telling salespeople about their handoffs, and managers about missed SLAs.

These are transactional emails to staff, sent from django-q2 tasks, never from a
receiver, through crm's one system email path (send ledger, suppressions, message id).
Each is claimed with a conditional UPDATE in the same transaction as the send: a failed
send raises, which rolls the claim back for a retry, and a sent one is never repeated.
A suppressed staff address (it bounced or complained) gets nothing; the claim stays,
since retrying cannot help, and the ledger row says why.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from crm.services.mail import SystemEmailKind, system_email_send
from scoring.models import Handoff
from scoring.services.handoffs import handoff_reassign
from scoring.services.routing import contact_route

logger = logging.getLogger(__name__)
BATCH_SIZE = 200


def handoff_url(handoff: Handoff) -> str:
    """The absolute admin URL of the handoff, for links in emails."""
    return settings.SITE_URL + reverse("admin:scoring_handoff_change", args=[handoff.pk])


def handoff_notify_owner(*, handoff_id: int) -> str:
    """Email the handoff's owner once; return what happened."""
    with transaction.atomic():
        handoff = (
            Handoff.objects.select_related("contact", "contact__company", "owner", "rule")
            .filter(pk=handoff_id)
            .first()
        )
        if handoff is None:
            return "handoff gone"
        if handoff.owner is None or not handoff.owner.email:
            return "no owner to notify"
        claimed = Handoff.objects.filter(pk=handoff_id, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )
        if not claimed:
            return "already notified"
        sent = _send(
            handoff,
            to=handoff.owner.email,
            subject=f"New lead for you: {handoff.contact} (score {handoff.score})",
            template="scoring/email/handoff_owner.txt",
            kind=SystemEmailKind.HANDOFF_NOTICE,
        )
    if not sent:
        logger.warning(
            "handoff %s: owner %s not notified (suppressed)", handoff_id, handoff.owner_id
        )
        return "owner's address is suppressed"
    logger.info("handoff %s: owner %s notified", handoff_id, handoff.owner_id)
    return "sent"


def handoff_sla_check(*, now: datetime.datetime | None = None) -> int:
    """Escalate open handoffs nobody contacted in time; each breach is handled once."""
    now = now or timezone.now()
    overdue = (
        Handoff.objects.filter(
            status__in=Handoff.UNTOUCHED_STATUSES,
            sla_due_at__lt=now,
            sla_breached_at__isnull=True,
        )
        .select_related("contact", "contact__company", "contact__owner", "owner", "rule")
        .select_related("rule__sla_manager")
        .order_by("sla_due_at")[:BATCH_SIZE]
    )
    escalated = 0
    for handoff in overdue:
        try:
            escalated += _sla_breach_handle(handoff, now)
        except Exception:
            # One failing email must not hold up the other escalations; the next run retries.
            logger.exception("handoff %s: SLA escalation failed", handoff.pk)
    return escalated


def _sla_breach_handle(handoff: Handoff, now: datetime.datetime) -> bool:
    with transaction.atomic():
        claimed = Handoff.objects.filter(
            pk=handoff.pk, sla_breached_at__isnull=True, status__in=Handoff.UNTOUCHED_STATUSES
        ).update(sla_breached_at=now)
        if not claimed:
            return False
        handoff.sla_breached_at = now
        reassigning = handoff.rule.on_sla_breach == handoff.rule.SlaBreachAction.REASSIGN
        if reassigning:
            _reassign(handoff)
        if handoff.rule.sla_manager is not None or not reassigning:
            _notify_manager(handoff)
    logger.info("handoff %s missed its SLA", handoff.pk)
    return True


def _reassign(handoff: Handoff) -> None:
    exclude = [handoff.owner_id] if handoff.owner_id else []
    # The contact's own owner is the one who missed it, so skip straight to the pools.
    route = contact_route(contact=handoff.contact, exclude=exclude)
    if route.owner is None:
        return
    reassigned = handoff_reassign(
        handoff=handoff, owner=route.owner, routed_by=f"SLA missed; {route.routed_by}"
    )
    handoff.owner, handoff.routed_by = reassigned.owner, reassigned.routed_by


def _notify_manager(handoff: Handoff) -> None:
    manager = handoff.rule.sla_manager
    if manager is None or not manager.email:
        logger.warning(
            "handoff %s missed its SLA and rule %s has no manager", handoff.pk, handoff.rule.key
        )
        return
    _send(
        handoff,
        to=manager.email,
        subject=f"Missed SLA: {handoff.contact} waited {handoff.rule.sla_minutes}+ minutes",
        template="scoring/email/handoff_sla_breached.txt",
        kind=SystemEmailKind.SLA_NOTICE,
    )


def _send(handoff: Handoff, *, to: str, subject: str, template: str, kind: str) -> bool:
    """Send through the system email path; False when the address is suppressed."""
    body = render_to_string(template, {"handoff": handoff, "url": handoff_url(handoff)})
    result = system_email_send(
        to=to,
        subject=subject,
        body=body,
        kind=kind,
        # Ids only, never names or emails: the ESP stores metadata.
        metadata={"handoff_id": str(handoff.pk)},
    )
    return result.is_sent
