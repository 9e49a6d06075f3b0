"""What seed_demo adds for scoring: starter rules (config as code), then the scored history."""

import datetime
import random
from itertools import groupby

from django.db.models import F
from django.utils import timezone

from crm.config_io import config_import
from crm.demo import SEED as DEMO_SEED
from crm.demo import SOURCE as DEMO_SOURCE
from crm.demo import demo_clock
from crm.models import Activity, Contact, LifecycleStage
from crm.services import activity_record
from scoring.models import Handoff, ScoreChange
from scoring.services import (
    handoff_accept,
    handoff_mark_contacted,
    handoff_recycle,
    handoff_reject,
    scores_apply,
)
from scoring.services.notifications import handoff_sla_check

DEMO_CONFIG = """
version: 1
scoring_rules:
  - key: pricing-page
    name: Pricing page viewed
    category: engagement
    activity_kind: page_viewed
    points: 20
    cap_points: 40
    cap_period_days: 7
    halve_after_days: 30
    expire_after_days: 90
    conditions:
      match: all
      conditions:
        - {field: property, key: path, operator: contains, value: /pricing}
  - key: demo-request
    name: Demo requested
    category: engagement
    activity_kind: demo_requested
    points: 40
    cap_points: 40
    cap_period_days: 30
  - key: guide-download
    name: Guide downloaded
    category: engagement
    activity_kind: content_downloaded
    points: 10
    cap_points: 20
    cap_period_days: 30
    halve_after_days: 30
  - key: email-click
    name: Email link clicked
    category: engagement
    activity_kind: email_clicked
    points: 5
    cap_points: 15
    cap_period_days: 7
    halve_after_days: 14
  - key: senior-title
    name: Senior job title
    category: fit
    points: 15
    conditions:
      match: all
      conditions:
        - {field: job_title, operator: contains, value: head}
handoff_rules:
  - key: sales-ready
    name: Sales ready
    score_threshold: 60
    signal_rules: [pricing-page, demo-request]
    signal_window_days: 14
    lifecycle_stage: engaged_lead
    recycle_stage: engaged_lead
    sla_minutes: 30
    on_sla_breach: reassign
"""


def install_demo_scoring() -> str:
    """Import the demo's scoring and handoff rules; importing them again changes nothing."""
    report = config_import(DEMO_CONFIG)
    created = sum(len(summary.created) for summary in report.sections.values())
    return f"{created} rules created" if created else "rules already present"


#: The demo's sales team answers a new lead within this many minutes (a seeded draw);
#: the slowest draws miss the 30-minute SLA, so the escalation path has history too.
ANSWER_MINUTES = (2, 36)
#: How long after first contact sales decides; leads contacted since are still open.
DECIDE_HOURS = (24, 120)
#: Leads who became opportunities or customers were accepted; the others were not.
ACCEPTED_STAGES = frozenset(
    {
        LifecycleStage.Key.OPPORTUNITY,
        LifecycleStage.Key.NEW_CUSTOMER,
        LifecycleStage.Key.ACTIVE_CUSTOMER,
        LifecycleStage.Key.AT_RISK_CUSTOMER,
        LifecycleStage.Key.CHURNED,
    }
)
RECYCLE_SHARE = 0.65
RECYCLE_REASONS = ("Budget is next quarter; keep nurturing.", "Evaluating later this year.")
REJECT_REASONS = ("Student project, not a buyer.", "Competitor doing research.")
#: Leads handed off in the demo's last week are still being worked: the queue shows them.
STILL_OPEN = datetime.timedelta(days=7)
#: The newest lead is handed off this long before the demo ends, so it is near its SLA.
FRESH_LEAD_AGE = datetime.timedelta(minutes=22)


#: The replay scores the history in windows of this length, each at its end.
REPLAY_WINDOW = datetime.timedelta(hours=48)


def demo_replay_scores() -> str:
    """Score the demo's history in time order through the real scoring path, once.

    Each window of activities is scored at its end (demo_clock), so scores add up as
    they did, leads cross the handoff rule when they did, and sales works each handoff
    at its own time: answers within the SLA or not, then accepts, recycles or rejects.
    The newest lead is left untouched, near its SLA, for the queue to show.
    """
    if ScoreChange.objects.exists():
        return "scores already present"
    rng = random.Random(DEMO_SEED)
    decide_until = timezone.now() - STILL_OPEN
    activities = Activity.objects.filter(contact__isnull=False).order_by("occurred_at", "pk")
    for window_end, chunk in groupby(activities.iterator(chunk_size=2000), key=_window_end):
        with demo_clock(window_end):
            scores_apply(activities=list(chunk))
        _sales_work(rng, now=window_end, decide_until=decide_until)
    fresh = _hand_off_a_fresh_lead(rng)
    return f"history scored; {Handoff.objects.count()} handoffs ({fresh})"


def _window_end(activity: Activity) -> datetime.datetime:
    """The end of the replay window the activity falls in (windows counted from the epoch)."""
    size = REPLAY_WINDOW.total_seconds()
    end = (activity.occurred_at.timestamp() // size + 1) * size
    return datetime.datetime.fromtimestamp(end, tz=datetime.UTC)


def _sales_work(
    rng: random.Random, *, now: datetime.datetime, decide_until: datetime.datetime
) -> None:
    """What the demo's salespeople did by `now`, each step at its own time.

    Leads handed off after `decide_until` are answered but not yet decided.
    """
    open_handoffs = Handoff.objects.filter(status__in=Handoff.OPEN_STATUSES)
    if not open_handoffs.exists():
        return
    # Owners were told at once: the notice itself is not part of the replay.
    Handoff.objects.filter(notified_at=None).update(notified_at=F("created_at"))
    for handoff in open_handoffs.filter(status=Handoff.Status.NEW).select_related("owner"):
        answer_at = handoff.created_at + datetime.timedelta(minutes=rng.uniform(*ANSWER_MINUTES))
        if answer_at > now:
            continue
        if answer_at > handoff.sla_due_at:
            handoff_sla_check(now=handoff.sla_due_at + datetime.timedelta(minutes=1))
        # An SLA check (this one or an earlier one) may have reassigned it meanwhile.
        handoff.refresh_from_db()
        if handoff.status != Handoff.Status.NEW or handoff.owner is None:
            continue
        with demo_clock(answer_at):
            handoff_mark_contacted(handoff=handoff, user=handoff.owner)
    contacted = open_handoffs.filter(status=Handoff.Status.CONTACTED, created_at__lt=decide_until)
    for handoff in contacted.select_related("owner", "contact"):
        decide_at = handoff.contacted_at + datetime.timedelta(hours=rng.uniform(*DECIDE_HOURS))
        if decide_at <= now:
            with demo_clock(decide_at):
                _decide(rng, handoff)


def _decide(rng: random.Random, handoff: Handoff) -> None:
    """Accept, recycle or reject, as the handoff's owner, in line with where the lead went."""
    if handoff.contact.lifecycle_stage_id in ACCEPTED_STAGES:
        handoff_accept(handoff=handoff, user=handoff.owner)
    elif rng.random() < RECYCLE_SHARE:
        handoff_recycle(handoff=handoff, user=handoff.owner, reason=rng.choice(RECYCLE_REASONS))
    else:
        handoff_reject(handoff=handoff, user=handoff.owner, reason=rng.choice(REJECT_REASONS))


def _hand_off_a_fresh_lead(rng: random.Random) -> str:
    """A lead who asked for a demo minutes ago: the queue's top row, its SLA running."""
    already = Handoff.objects.values_list("contact_id", flat=True)
    candidates = list(
        Contact.objects.filter(lifecycle_stage=LifecycleStage.Key.ENGAGED_LEAD)
        .exclude(pk__in=already)
        .order_by("-lead_score", "pk")[:5]
    )
    if not candidates:
        return "no fresh lead"
    contact = rng.choice(candidates)
    at = timezone.now() - FRESH_LEAD_AGE
    with demo_clock(at):
        for kind, properties in (
            (Activity.Kind.PAGE_VIEWED, {"path": "/pricing", "title": "Pricing"}),
            (Activity.Kind.DEMO_REQUESTED, {"form": "book-a-demo"}),
        ):
            activity_record(
                contact=contact,
                kind=kind,
                properties=properties,
                source=DEMO_SOURCE,
                idempotency_key=f"demo-fresh-{kind}",
                occurred_at=at,
            )
    return f"a fresh lead for {contact.email}"
