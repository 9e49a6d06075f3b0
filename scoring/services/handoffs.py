"""The sales handoff: opening handoffs when a rule matches, and what sales does with them."""

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Activity, Contact, Deal, DealStage, LifecycleStage, Task
from crm.services import (
    ActivityInput,
    TaskInput,
    activity_record,
    activity_record_batch,
    contact_update,
    deal_create,
    lifecycle_stage_change,
    lifecycle_stage_change_many,
    tasks_create,
)
from crm.set_inserts import model_new, rows_insert_new
from crm.tasks_queue import enqueue_once_on_commit
from scoring.models import Handoff, HandoffRule
from scoring.selectors import (
    ScoreReason,
    SignalSeen,
    handoff_rules_active,
    recent_signals,
    score_parts,
    score_reasons,
    score_summaries,
)
from scoring.services.routing import Route, contact_route, contacts_route, demo_segment_routes
from scoring.services.side_effects import scoring_side_effects

logger = logging.getLogger(__name__)

NOTIFY_OWNERS_TASK = "scoring.tasks.notify_handoff_owners_task"
#: Owner emails per notification task: each is its own SMTP/ESP call.
NOTIFY_CHUNK = 50
DEMO_TASK_SOURCE = "scoring: demo request"
DEMO_TASK_DUE = datetime.timedelta(hours=1)
#: The Sales manager's permission (the "Sales manager" group has it): reassign a lead.
REASSIGN_PERMISSION = "scoring.reassign_handoff"
#: The activity recorded on the contact whenever a handoff changes owner.
HANDOFF_REASSIGNED = "handoff_reassigned"
Status = Handoff.Status


# --- Opening handoffs ------------------------------------------------------------------------


def handoffs_evaluate(*, candidates: set[int], now: datetime.datetime) -> list[Handoff]:
    """Open a handoff for each candidate whose score and signals now match a handoff rule.

    A few queries for the whole batch decide who qualifies; opening a handoff then
    costs its own queries, which is rare next to scoring.
    """
    if not candidates:
        return []
    rules = handoff_rules_active()
    if not rules:
        return []
    scores = dict(Contact.objects.filter(pk__in=candidates).values_list("pk", "lead_score"))
    lowest = min(rule.score_threshold for rule in rules)
    eligible = {pk for pk, score in scores.items() if score >= lowest}
    eligible -= _blocked(eligible, now)
    if not eligible:
        return []
    signals = recent_signals(contact_ids=eligible, rule_windows=_signal_windows(rules), now=now)
    chosen = {}
    for pk in sorted(eligible):
        rule, fired = _first_matching_rule(rules, scores[pk], signals.get(pk, {}), now)
        if rule is not None:
            chosen[pk] = (rule, fired)
    contacts = _contacts_for_routing(chosen)
    leads = [
        Lead(contact=contacts[pk], rule=rule, signals=fired)
        for pk, (rule, fired) in chosen.items()
        if pk in contacts
    ]
    return handoffs_open(leads=leads, now=now)


def _contacts_for_routing(contact_ids: Iterable[int]) -> dict[int, Contact]:
    """The contacts with what routing reads (owner, company and its owner): one query."""
    contact_ids = list(contact_ids)
    if not contact_ids:
        return {}
    contacts = Contact.objects.select_related("company", "owner", "company__owner")
    return {contact.pk: contact for contact in contacts.filter(pk__in=contact_ids)}


@dataclass(frozen=True)
class Lead:
    """A contact to hand off under a rule, with the signals that fired."""

    contact: Contact
    rule: HandoffRule
    signals: Sequence[SignalSeen] = ()


# No savepoint: a failure rolls the caller's batch back anyway (scores_apply does the same).
@transaction.atomic(savepoint=False)
def handoffs_open(*, leads: Sequence[Lead], now: datetime.datetime) -> list[Handoff]:
    """handoff_open for many leads in a fixed number of queries; returns the handoffs opened.

    Measured, opening them one by one cost ~26 queries each (score parts, reasons,
    routing, the row, the stage change, `handed_off`): most of an ingest batch's queries.
    Here each of those is one statement for all leads. A lead another batch handed off
    first (the one-open-handoff constraint) is skipped, as handoff_open returns None.
    The contacts should come with their owner and company (and its owner) loaded.
    """
    if not leads:
        return []
    summaries = score_summaries(contact_ids=[lead.contact.pk for lead in leads], now=now)
    routes = contacts_route(leads=[(lead.contact, ()) for lead in leads])
    built = []
    for lead, route in zip(leads, routes, strict=True):
        summary = summaries[lead.contact.pk]
        built.append(
            _handoff_new(
                contact=lead.contact,
                rule=lead.rule,
                owner=route.owner,
                routed_by=route.routed_by,
                score=summary.parts.total,
                engagement_score=summary.parts.engagement,
                fit_score=summary.parts.fit,
                reasons=_reasons_of(lead.rule, lead.signals, summary.reasons),
                sla_due_at=now + datetime.timedelta(minutes=lead.rule.sla_minutes),
            )
        )
    opened = rows_insert_new(Handoff, built, key="contact_id")
    if not opened:
        return []
    with scoring_side_effects():
        _stages_forward(opened, now)
        activity_record_batch(items=[_handed_off(handoff, now) for handoff in opened])
    enqueue_once_on_commit(
        NOTIFY_OWNERS_TASK, [handoff.pk for handoff in opened], chunk_size=NOTIFY_CHUNK
    )
    for handoff in opened:
        logger.info(
            "handoff %s opened for contact %s by rule %s",
            handoff.pk,
            handoff.contact_id,
            handoff.rule.key,
        )
    return opened


_handoff_new = model_new(Handoff)


def _handed_off(handoff: Handoff, now: datetime.datetime) -> ActivityInput:
    return ActivityInput(
        kind=Activity.Kind.HANDED_OFF,
        source="scoring",
        contact_id=handoff.contact_id,
        occurred_at=now,
        properties={
            "handoff_id": handoff.pk,
            "rule": handoff.rule.key,
            "score": handoff.score,
            "owner_id": handoff.owner_id,
        },
    )


def _stages_forward(handoffs: list[Handoff], now: datetime.datetime) -> None:
    """stage_forward for each handed-off contact: one batch per rule that names a stage."""
    targets = [handoff for handoff in handoffs if handoff.rule.lifecycle_stage_id]
    if not targets:
        return
    positions = dict(LifecycleStage.objects.values_list("key", "position"))
    by_rule: dict[int, list[Contact]] = {}
    for handoff in targets:
        target, contact = handoff.rule.lifecycle_stage_id, handoff.contact
        if target == contact.lifecycle_stage_id:
            continue
        if positions.get(target, 0) <= positions.get(contact.lifecycle_stage_id, 0):
            continue  # never backwards: a customer stays a customer
        by_rule.setdefault(handoff.rule_id, []).append(contact)
    rules = {handoff.rule_id: handoff.rule for handoff in targets}
    for rule_id, contacts in by_rule.items():
        rule = rules[rule_id]
        lifecycle_stage_change_many(
            contacts=contacts,
            stage=rule.lifecycle_stage_id,
            source=f"handoff rule {rule.key}",
            reason="Handed off to sales",
            occurred_at=now,
        )


def _blocked(contact_ids: set[int], now: datetime.datetime) -> set[int]:
    """Contacts with an open handoff, or a closed one not yet re-armed or still cooling down."""
    if not contact_ids:
        return set()
    blocked = set()
    rows = Handoff.objects.filter(contact_id__in=contact_ids).values_list(
        "contact_id", "status", "rearmed_at", "closed_at", "rule__cooldown_days"
    )
    for contact_id, status, rearmed_at, closed_at, cooldown_days in rows:
        cooling = closed_at is not None and closed_at > now - datetime.timedelta(days=cooldown_days)
        if status in Handoff.OPEN_STATUSES or rearmed_at is None or cooling:
            blocked.add(contact_id)
    return blocked


def _signal_windows(rules: list[HandoffRule]) -> dict[int, int]:
    windows: dict[int, int] = {}
    for rule in rules:
        for signal in rule.signal_rules.all():
            windows[signal.pk] = max(windows.get(signal.pk, 0), rule.signal_window_days)
    return windows


def _first_matching_rule(
    rules: list[HandoffRule], score: int, seen: dict[int, SignalSeen], now: datetime.datetime
) -> tuple[HandoffRule | None, list[SignalSeen]]:
    for rule in rules:
        if score < rule.score_threshold:
            continue
        signal_ids = [signal.pk for signal in rule.signal_rules.all()]
        if not signal_ids:
            return rule, []
        since = now - datetime.timedelta(days=rule.signal_window_days)
        fired = [seen[pk] for pk in signal_ids if pk in seen and seen[pk].latest_at >= since]
        if fired:
            return rule, fired
    return None, []


@transaction.atomic
def handoff_open(
    *,
    contact: Contact,
    rule: HandoffRule,
    signals: Sequence[SignalSeen] = (),
    now: datetime.datetime | None = None,
) -> Handoff | None:
    """Hand the contact to sales under `rule`; None when they already have an open handoff.

    Routes an owner, moves the lifecycle stage forward if the rule says so, records
    `handed_off` (so nurture sequences can stop) and notifies the owner on commit.
    """
    now = now or timezone.now()
    parts = score_parts(contact_id=contact.pk)
    try:
        with transaction.atomic():
            route = contact_route(contact=contact)
            handoff = Handoff.objects.create(
                contact=contact,
                rule=rule,
                owner=route.owner,
                routed_by=route.routed_by,
                score=parts.total,
                engagement_score=parts.engagement,
                fit_score=parts.fit,
                reasons=_reasons(contact, rule, signals, now),
                sla_due_at=now + datetime.timedelta(minutes=rule.sla_minutes),
            )
    except IntegrityError:
        # The one-open-handoff constraint: another batch handed this contact off first.
        return None
    with scoring_side_effects():
        _stage_forward(contact, rule, now)
        activity_record(
            kind=Activity.Kind.HANDED_OFF,
            source="scoring",
            contact=contact,
            occurred_at=now,
            properties={
                "handoff_id": handoff.pk,
                "rule": rule.key,
                "score": handoff.score,
                "owner_id": handoff.owner_id,
            },
        )
    enqueue_once_on_commit(NOTIFY_OWNERS_TASK, [handoff.pk], chunk_size=NOTIFY_CHUNK)
    logger.info("handoff %s opened for contact %s by rule %s", handoff.pk, contact.pk, rule.key)
    return handoff


def _reasons(
    contact: Contact, rule: HandoffRule, signals: Sequence[SignalSeen], now: datetime.datetime
) -> list[dict]:
    """A snapshot of why: the signals that fired, then the largest parts of the score."""
    return _reasons_of(rule, signals, score_reasons(contact_id=contact.pk, now=now))


def _reasons_of(
    rule: HandoffRule, signals: Sequence[SignalSeen], reasons: Sequence[ScoreReason]
) -> list[dict]:
    names = {signal.pk: signal.name for signal in rule.signal_rules.all()}
    fired = [
        {
            "type": "signal",
            "label": f"{names.get(seen.rule_id, 'Signal')} "
            f"({seen.matches}× in the last {rule.signal_window_days} days)",
            "at": seen.latest_at.isoformat(),
        }
        for seen in signals
    ]
    scored = [
        {"type": "score", "label": reason.label, "points": reason.points, "rule": reason.rule_key}
        for reason in reasons
    ]
    return fired + scored


def _stage_forward(contact: Contact, rule: HandoffRule, now: datetime.datetime) -> None:
    """Move the contact to the rule's stage, never backwards (a customer stays a customer)."""
    stage_forward(
        contact,
        rule.lifecycle_stage_id,
        source=f"handoff rule {rule.key}",
        reason="Handed off to sales",
        occurred_at=now,
    )


def stage_forward(contact: Contact, target: str | None, **change) -> None:
    """Move the contact to `target` unless it is already there or further along.

    Sales accepting or recycling a lead who is already a customer (an expansion lead)
    must not turn the customer back into an opportunity or a nurture lead.
    """
    if not target or target == contact.lifecycle_stage_id:
        return
    positions = dict(
        LifecycleStage.objects.filter(key__in=[target, contact.lifecycle_stage_id]).values_list(
            "key", "position"
        )
    )
    if positions.get(target, 0) <= positions.get(contact.lifecycle_stage_id, 0):
        return
    lifecycle_stage_change(contact=contact, stage=target, **change)


def handoffs_rearm(
    *, contact_ids: Iterable[int] | None = None, now: datetime.datetime | None = None
) -> int:
    """Allow new handoffs for contacts whose score fell below their last rule's re-arm level.

    This is the hysteresis: a closed handoff blocks the next one until the score has
    dropped to threshold minus margin, so a lead hovering at the threshold never flaps.
    """
    closed = Handoff.objects.filter(rearmed_at__isnull=True).exclude(
        status__in=Handoff.OPEN_STATUSES
    )
    if contact_ids is not None:
        closed = closed.filter(contact_id__in=list(contact_ids))
    return closed.filter(
        contact__lead_score__lt=F("rule__score_threshold") - F("rule__rearm_margin")
    ).update(rearmed_at=now or timezone.now())


# --- Demo requests ---------------------------------------------------------------------------


def demo_request_tasks_create(
    *, activities: Sequence[Activity], now: datetime.datetime
) -> list[Task]:
    """Give every demo request a task for its salesperson, whatever the score.

    One open demo task per contact: a second request adds nothing until it is done.
    Demo routing rules (by segment) choose first; the handoff routing takes the rest.
    """
    requested = _demo_requests_without_task(activities)
    if not requested:
        return []
    contacts = _contacts_for_routing(requested)
    requested = {pk: activity for pk, activity in requested.items() if pk in contacts}
    by_segment = demo_segment_routes(contact_ids=requested, now=now)
    handoff_owners = _open_handoff_owners(set(requested) - by_segment.keys())
    routes = dict(by_segment)
    for contact_id in requested:
        owner = handoff_owners.get(contact_id)
        if contact_id not in routes and owner is not None and owner.is_active:
            routes[contact_id] = Route(owner=owner, routed_by="owner of the open handoff")
    # Everyone else as contact_route would: contact owner, company owner, territory, Sales.
    rest = [contact_id for contact_id in requested if contact_id not in routes]
    routes.update(zip(rest, contacts_route(leads=[(contacts[pk], ()) for pk in rest]), strict=True))
    with scoring_side_effects():
        return tasks_create(
            items=[
                TaskInput(
                    title=f"Demo requested: {contacts[contact_id]}",
                    description=_demo_description(activity, routes[contact_id].routed_by),
                    contact=contacts[contact_id],
                    owner=routes[contact_id].owner,
                    due_at=now + DEMO_TASK_DUE,
                    source=DEMO_TASK_SOURCE,
                )
                for contact_id, activity in requested.items()
            ]
        )


def _demo_requests_without_task(activities: Sequence[Activity]) -> dict[int, Activity]:
    """The first demo request of each contact who has no open demo task yet."""
    requested: dict[int, Activity] = {}
    for activity in activities:
        if activity.kind == Activity.Kind.DEMO_REQUESTED and activity.contact_id:
            requested.setdefault(activity.contact_id, activity)
    if not requested:
        return {}
    has_task = set(
        Task.objects.filter(
            contact_id__in=requested, source=DEMO_TASK_SOURCE, status=Task.Status.OPEN
        ).values_list("contact_id", flat=True)
    )
    return {pk: activity for pk, activity in requested.items() if pk not in has_task}


def _open_handoff_owners(contact_ids: set[int]) -> dict[int, AbstractBaseUser | None]:
    if not contact_ids:
        return {}
    return {
        handoff.contact_id: handoff.owner
        for handoff in Handoff.objects.filter(
            contact_id__in=contact_ids, status__in=Handoff.OPEN_STATUSES
        ).select_related("owner")
    }


def _demo_description(activity: Activity, routed_by: str) -> str:
    details = ", ".join(f"{key}: {value}" for key, value in list(activity.properties.items())[:5])
    lines = [f"Requested a demo at {activity.occurred_at:%Y-%m-%d %H:%M} UTC."]
    if details:
        lines.append(f"Details: {details}")
    lines.append(f"Assigned by {routed_by}.")
    return "\n".join(lines)


# --- What sales does -------------------------------------------------------------------------


def _lock_open(handoff: Handoff, user: AbstractBaseUser | None = None) -> Handoff:
    """Lock the handoff row; refuse if it is closed, or routed to someone other than `user`.

    A lead routed to a salesperson is theirs alone: anyone else is refused here, in the
    service, whatever the interface (admin, API) offered. Nobody's lead goes to whoever
    acts first. `user=None` is the system (an API call naming no one), which takes no
    ownership. A Sales manager moves a lead with `handoff_reassign`, giving a reason.
    """
    locked = (
        Handoff.objects.select_for_update(of=("self",))
        .select_related("contact", "rule", "owner")
        .get(pk=handoff.pk)
    )
    if not locked.is_open:
        raise ValidationError(
            f"This handoff is already {locked.get_status_display().lower()}; "
            "reload the queue to see its current state."
        )
    if user is not None and locked.owner_id not in (None, user.pk):
        raise ValidationError(
            f"This lead is {locked.owner}'s: only they can work it. "
            "A Sales manager can reassign it, with a reason."
        )
    return locked


def handoff_may_act(*, handoff: Handoff, user: AbstractBaseUser) -> bool:
    """Whether `user` may work this handoff: it is open and theirs or nobody's."""
    return handoff.is_open and handoff.owner_id in (None, user.pk)


def handoff_may_reassign(*, user: AbstractBaseUser) -> bool:
    """Whether `user` is a Sales manager: only they move a lead from one owner to another."""
    return user.has_perm(REASSIGN_PERMISSION)


def _require_reason(reason: str, action: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": f"Say why you {action}: marketing learns from it."})
    return reason


@transaction.atomic
def handoff_claim(*, handoff: Handoff, user: AbstractBaseUser) -> Handoff:
    """Take the handoff: it becomes the user's, so the rest of sales sees it is taken."""
    locked = _lock_open(handoff, user)
    if locked.status != Status.NEW:
        return locked
    locked.status = Status.CLAIMED
    locked.owner = user
    locked.claimed_at = timezone.now()
    locked.save(update_fields=["status", "owner", "claimed_at"])
    return locked


@transaction.atomic
def handoff_mark_contacted(*, handoff: Handoff, user: AbstractBaseUser | None = None) -> Handoff:
    """Record that sales reached the lead; this stops the SLA clock."""
    locked = _lock_open(handoff, user)
    if locked.status == Status.CONTACTED:
        return locked
    now = timezone.now()
    locked.status = Status.CONTACTED
    locked.owner = locked.owner or user
    locked.claimed_at = locked.claimed_at or now
    locked.contacted_at = now
    locked.save(update_fields=["status", "owner", "claimed_at", "contacted_at"])
    return locked


@transaction.atomic
def handoff_accept(*, handoff: Handoff, user: AbstractBaseUser | None = None) -> Handoff:
    """Accept the lead: open (or reuse) a deal, make the contact an opportunity."""
    locked = _lock_open(handoff, user)
    owner = locked.owner or user
    contact = locked.contact
    deal = _open_deal(contact, owner)
    now = timezone.now()
    locked.status = Status.ACCEPTED
    locked.owner = owner
    locked.deal = deal
    locked.closed_at = now
    locked.closed_by = user
    locked.contacted_at = locked.contacted_at or now
    locked.save(update_fields=["status", "owner", "deal", "closed_at", "closed_by", "contacted_at"])
    _record_outcome(locked, Status.ACCEPTED)
    if contact.owner_id is None and owner is not None:
        contact_update(contact=contact, owner=owner)
    stage_forward(
        contact,
        LifecycleStage.Key.OPPORTUNITY,
        source=f"handoff rule {locked.rule.key}",
        reason="Sales accepted the handoff",
        changed_by=user,
    )
    return locked


def _open_deal(contact: Contact, owner: AbstractBaseUser | None) -> Deal:
    """The contact's latest open deal, or a new one in the first open pipeline stage."""
    existing = (
        Deal.objects.filter(contact=contact, stage__outcome=DealStage.Outcome.OPEN)
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        return existing
    stage = (
        DealStage.objects.filter(outcome=DealStage.Outcome.OPEN).order_by("position", "key").first()
    )
    if stage is None:
        raise ValidationError("The pipeline has no open deal stage; add one before accepting.")
    company = f" ({contact.company.name})" if contact.company else ""
    return deal_create(name=f"{contact}{company}", stage=stage, contact=contact, owner=owner)


@transaction.atomic
def handoff_recycle(
    *, handoff: Handoff, reason: str, user: AbstractBaseUser | None = None
) -> Handoff:
    """Send the lead back to marketing for nurturing, keeping sales' reason."""
    reason = _require_reason(reason, "recycle this lead")
    locked = _close(handoff, Status.RECYCLED, user, reason)
    if not _is_customer(locked.contact):  # a customer's expansion lead leaves the stage alone
        lifecycle_stage_change(
            contact=locked.contact,
            stage=locked.rule.recycle_stage_id,
            source=f"handoff rule {locked.rule.key}",
            reason=f"Recycled to nurture: {reason}"[:500],
            changed_by=user,
        )
    handoffs_rearm(contact_ids=[locked.contact_id])
    return locked


def _is_customer(contact: Contact) -> bool:
    """Is the contact at or past the first customer stage?"""
    positions = dict(
        LifecycleStage.objects.filter(
            key__in=[LifecycleStage.Key.NEW_CUSTOMER, contact.lifecycle_stage_id]
        ).values_list("key", "position")
    )
    first_customer = positions.get(LifecycleStage.Key.NEW_CUSTOMER, 0)
    return positions.get(contact.lifecycle_stage_id, 0) >= first_customer


@transaction.atomic
def handoff_reject(
    *, handoff: Handoff, reason: str, user: AbstractBaseUser | None = None
) -> Handoff:
    """Turn the lead down as not a fit, keeping sales' reason for marketing."""
    reason = _require_reason(reason, "reject this lead")
    locked = _close(handoff, Status.REJECTED, user, reason)
    handoffs_rearm(contact_ids=[locked.contact_id])
    return locked


def _close(handoff: Handoff, status: str, user: AbstractBaseUser | None, reason: str) -> Handoff:
    locked = _lock_open(handoff, user)
    locked.owner = locked.owner or user
    locked.status = status
    locked.close_reason = reason
    locked.closed_at = timezone.now()
    locked.closed_by = user
    locked.save(update_fields=["status", "owner", "close_reason", "closed_at", "closed_by"])
    _record_outcome(locked, status, reason)
    return locked


def _record_outcome(handoff: Handoff, outcome: str, reason: str = "") -> None:
    """Put sales' verdict on the bus (`handoff_closed`): marketing's reports count it."""
    activity_record(
        kind="handoff_closed",
        source="scoring",
        contact=handoff.contact,
        occurred_at=handoff.closed_at,
        properties={"handoff_id": handoff.pk, "outcome": outcome, "reason": reason[:300]},
        idempotency_key=f"handoff_closed:{handoff.pk}",
    )


@transaction.atomic
def handoff_reassign(
    *,
    handoff: Handoff,
    owner: AbstractBaseUser,
    routed_by: str = "reassigned",
    by: AbstractBaseUser | None = None,
    reason: str = "",
) -> Handoff:
    """Give the handoff to another salesperson, restart the SLA and notify them.

    `by` is the person doing it (None: the SLA job): they must be a Sales manager and
    say why. Every change of owner is recorded on the contact's timeline as
    `handoff_reassigned`, so an owner never changes silently.
    """
    if by is not None:
        if not handoff_may_reassign(user=by):
            raise ValidationError("Only a Sales manager can reassign a lead.")
        reason = _require_reason(reason, "reassign this lead")
        routed_by = f"reassigned by {by}"
    locked = _lock_open(handoff)
    if locked.owner_id == owner.pk:
        raise ValidationError(f"This lead is already {owner}'s.")
    previous = locked.owner
    locked.owner = owner
    locked.routed_by = routed_by[:100]
    locked.status = Status.NEW
    locked.claimed_at = None
    locked.notified_at = None
    locked.sla_due_at = timezone.now() + datetime.timedelta(minutes=locked.rule.sla_minutes)
    locked.save(
        update_fields=["owner", "routed_by", "status", "claimed_at", "notified_at", "sla_due_at"]
    )
    with scoring_side_effects():
        activity_record(
            kind=HANDOFF_REASSIGNED,
            source="scoring",
            contact=locked.contact,
            properties={
                "handoff_id": locked.pk,
                "from_owner_id": previous.pk if previous else None,
                "to_owner_id": owner.pk,
                "by_user_id": by.pk if by else None,
                "reason": reason or routed_by,
            },
        )
    enqueue_once_on_commit(NOTIFY_OWNERS_TASK, [locked.pk], chunk_size=NOTIFY_CHUNK)
    logger.info("handoff %s reassigned to user %s", locked.pk, owner.pk)
    return locked


def handoffs_reassign_missed(*, handoffs: Sequence[Handoff], routes: Sequence) -> list[Handoff]:
    """Give each handoff whose SLA was missed to its route's owner, all in a few queries.

    What handoff_reassign does for one lead (new owner, SLA restarted, the reassignment
    on the contact's timeline, the new owner notified), for a batch the SLA check has
    already claimed and locked in the current transaction: one UPDATE for the rows,
    one activity batch, one notification task per NOTIFY_CHUNK handoffs. A route
    without an owner (nobody active to take it) leaves its handoff as it is.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("Reassign the claimed handoffs in their lock.")
    now = timezone.now()
    moved, activities = [], []
    for handoff, route in zip(handoffs, routes, strict=True):
        if route.owner is None or route.owner.pk == handoff.owner_id:
            continue
        previous_id = handoff.owner_id
        handoff.owner = route.owner
        handoff.routed_by = f"SLA missed; {route.routed_by}"[:100]
        handoff.status = Status.NEW
        handoff.claimed_at = None
        handoff.notified_at = None
        handoff.sla_due_at = now + datetime.timedelta(minutes=handoff.rule.sla_minutes)
        moved.append(handoff)
        activities.append(
            ActivityInput(
                kind=HANDOFF_REASSIGNED,
                source="scoring",
                contact_id=handoff.contact_id,
                occurred_at=now,
                properties={
                    "handoff_id": handoff.pk,
                    "from_owner_id": previous_id,
                    "to_owner_id": route.owner.pk,
                    "by_user_id": None,
                    "reason": handoff.routed_by,
                },
            )
        )
    if not moved:
        return []
    Handoff.objects.bulk_update(
        moved, ["owner", "routed_by", "status", "claimed_at", "notified_at", "sla_due_at"]
    )
    with scoring_side_effects():
        activity_record_batch(items=activities)
    enqueue_once_on_commit(NOTIFY_OWNERS_TASK, [h.pk for h in moved], chunk_size=NOTIFY_CHUNK)
    logger.info("%s handoffs reassigned after a missed SLA", len(moved))
    return moved
