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
from scoring.services.handoffs import handoffs_reassign_missed
from scoring.services.routing import contacts_route

logger = logging.getLogger(__name__)
#: Breaches handled per run (every minute): a backlog larger than this takes a few runs.
BATCH_SIZE = 2000


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
    """Escalate open handoffs nobody contacted in time; each breach is handled once.

    Set-based, so a backlog costs a few queries per rule rather than ~20 per handoff
    (200 breaches took 16 s at 1M contacts one by one): the overdue handoffs are read in
    one query on the SLA-clock partial index, then each rule's breaches are handled
    together in one transaction: one locking read and one UPDATE claim them, reassigning
    routes them in one pass (contacts_route) and records them in one batch, and the
    rule's SLA manager gets one email listing them. A failing email rolls that rule's
    claims back, so the next run retries them; other rules go on.
    """
    now = now or timezone.now()
    overdue = (
        Handoff.objects.filter(
            status__in=Handoff.UNTOUCHED_STATUSES,
            sla_due_at__lt=now,
            sla_breached_at__isnull=True,
        )
        .order_by("sla_due_at", "pk")
        .values_list("pk", "rule_id")[:BATCH_SIZE]
    )
    by_rule: dict[int, list[int]] = {}
    for pk, rule_id in overdue:
        by_rule.setdefault(rule_id, []).append(pk)
    escalated = 0
    for rule_id, pks in by_rule.items():
        try:
            escalated += _sla_breaches_handle(pks, now)
        except Exception:
            # One failing email must not hold up the other rules; the next run retries.
            logger.exception("handoff rule %s: SLA escalation of %s failed", rule_id, len(pks))
    return escalated


def _sla_breaches_handle(pks: list[int], now: datetime.datetime) -> int:
    """Claim, reassign and report one rule's overdue handoffs, in one transaction."""
    with transaction.atomic():
        handoffs = list(
            Handoff.objects.select_for_update(of=("self",))
            .filter(
                pk__in=pks,
                sla_breached_at__isnull=True,
                status__in=Handoff.UNTOUCHED_STATUSES,
            )
            .select_related(
                "contact__owner",
                "contact__company__owner",
                "owner",
                "rule__sla_manager",
            )
            .order_by("sla_due_at", "pk")
        )
        if not handoffs:
            return 0
        Handoff.objects.filter(pk__in=[handoff.pk for handoff in handoffs]).update(
            sla_breached_at=now
        )
        rule = handoffs[0].rule
        for handoff in handoffs:
            handoff.sla_breached_at = now
        reassigning = rule.on_sla_breach == rule.SlaBreachAction.REASSIGN
        if reassigning:
            # The owner is the one who missed it, so the route skips straight past them.
            routes = contacts_route(
                leads=[
                    (handoff.contact, [handoff.owner_id] if handoff.owner_id else [])
                    for handoff in handoffs
                ]
            )
            handoffs_reassign_missed(handoffs=handoffs, routes=routes)
        if rule.sla_manager is not None or not reassigning:
            _notify_manager(rule, handoffs)
    logger.info("%s handoffs missed their SLA (rule %s)", len(handoffs), rule.key)
    return len(handoffs)


def _notify_manager(rule, handoffs: list[Handoff]) -> None:
    """One email to the rule's SLA manager for all of this run's breaches of the rule."""
    manager = rule.sla_manager
    if manager is None or not manager.email:
        logger.warning(
            "%s handoffs missed their SLA and rule %s has no manager", len(handoffs), rule.key
        )
        return
    if len(handoffs) == 1:
        handoff = handoffs[0]
        _send(
            handoff,
            to=manager.email,
            subject=f"Missed SLA: {handoff.contact} waited {rule.sla_minutes}+ minutes",
            template="scoring/email/handoff_sla_breached.txt",
            kind=SystemEmailKind.SLA_NOTICE,
        )
        return
    body = render_to_string(
        "scoring/email/handoff_sla_breached_digest.txt",
        {"rule": rule, "rows": [(handoff, handoff_url(handoff)) for handoff in handoffs]},
    )
    system_email_send(
        to=manager.email,
        subject=f"Missed SLA: {len(handoffs)} leads waited {rule.sla_minutes}+ minutes",
        body=body,
        kind=SystemEmailKind.SLA_NOTICE,
        # Ids only, never names or emails: the ESP stores metadata.
        metadata={"handoff_rule_id": str(rule.pk), "handoffs": str(len(handoffs))},
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
