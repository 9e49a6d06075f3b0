"""Rising intent: contacts whose engagement points rose sharply against their own baseline.

A periodic task (rising_intent_refresh) reads the score ledger once: engagement points
each contact earned in the last RECENT_DAYS, against their weekly mean over the
BASELINE_WEEKS weeks before. A contact is flagged when the recent points reach both
settings.SCORING_INTENT_MIN_POINTS and settings.SCORING_INTENT_RATIO times that mean;
the flag (scoring.models.RisingIntent) keeps the figures and the rules behind the
recent points, and is removed at the first refresh where the rise no longer holds.

Points rather than raw activity counts: the rules already say which behaviour signals
intent (a pricing page is worth more than a blog post) and their caps stop one noisy
behaviour from looking like a surge. Decay rows are left out: they are time passing,
not behaviour.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, FloatField, Q, Sum, Value
from django.db.models.functions import Cast
from django.utils import timezone

from crm.models import Contact
from scoring.models import RisingIntent, ScoreChange, ScoringRule

RECENT_DAYS = 7
BASELINE_WEEKS = 8
#: Behaviours kept per flag (the panel shows them all, the queue's badge the first).
BEHAVIOUR_COUNT = 5
#: Flagged contacts per behaviours query and per upsert.
BATCH = 2_000
#: Ledger rows that are behaviour (capped matches earn 0 points but are still behaviour).
BEHAVIOUR_REASONS = (ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED)


@dataclass(frozen=True)
class IntentRefresh:
    flagged: int
    new: int
    cleared: int


def rising_intent_refresh(*, now: datetime.datetime | None = None) -> IntentRefresh:
    """Flag contacts whose recent engagement points rose sharply; clear flags that no longer hold.

    Queries: one for the engagement rules, one GROUP BY contact over the ledger's last
    RECENT_DAYS + BASELINE_WEEKS weeks, one GROUP BY (contact, rule) per BATCH flagged
    contacts, then bulk upserts and one DELETE; never a query per contact.
    """
    now = now or timezone.now()
    recent_from = now - datetime.timedelta(days=RECENT_DAYS)
    baseline_from = recent_from - datetime.timedelta(weeks=BASELINE_WEEKS)
    rules = {
        rule.pk: rule
        for rule in ScoringRule.objects.filter(category=ScoringRule.Category.ENGAGEMENT).only(
            "pk", "key", "name", "activity_kind"
        )
    }
    # The rule list (not a join) lets PostgreSQL read the ledger through its
    # (rule, occurred_at) index, the window's rows only.
    window = ScoreChange.objects.filter(
        rule_id__in=list(rules), reason__in=BEHAVIOUR_REASONS, occurred_at__lt=now
    ).order_by()
    ratio = float(settings.SCORING_INTENT_RATIO)
    figures = {
        contact_id: (recent, baseline)
        for contact_id, recent, baseline in window.filter(occurred_at__gte=baseline_from)
        .values("contact_id")
        .annotate(
            recent=Sum("points", filter=Q(occurred_at__gte=recent_from), default=0),
            baseline=Sum("points", filter=Q(occurred_at__lt=recent_from), default=0),
        )
        .filter(
            Q(recent__gte=max(int(settings.SCORING_INTENT_MIN_POINTS), 1)),
            # recent >= ratio × baseline / weeks, kept in floating point on every database.
            Q(recent__gte=Cast(F("baseline"), FloatField()) * Value(ratio / BASELINE_WEEKS)),
        )
        .values_list("contact_id", "recent", "baseline")
    }
    behaviours = _behaviours(window.filter(occurred_at__gte=recent_from), figures, rules)
    with transaction.atomic():
        rows = [
            RisingIntent(
                contact_id=contact_id,
                recent_points=recent,
                weekly_baseline=round(baseline / BASELINE_WEEKS, 1),
                behaviours=behaviours.get(contact_id, []),
                flagged_at=now,
                computed_at=now,
            )
            for contact_id, (recent, baseline) in figures.items()
        ]
        for batch in _batched(rows):
            # flagged_at is left alone on conflict: it says when the rise was first seen.
            RisingIntent.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["contact"],
                update_fields=["recent_points", "weekly_baseline", "behaviours", "computed_at"],
            )
        cleared, _ = RisingIntent.objects.filter(computed_at__lt=now).delete()
        new = RisingIntent.objects.filter(flagged_at=now).count()
    return IntentRefresh(flagged=len(figures), new=new, cleared=cleared)


def _batched(items: list) -> list[list]:
    return [items[start : start + BATCH] for start in range(0, len(items), BATCH)]


def _behaviours(recent, figures: dict, rules: dict) -> dict[int, list[dict]]:
    """Per flagged contact, the rules behind their recent points, most points first."""
    found: dict[int, list[dict]] = {}
    for ids in _batched(list(figures)):
        rows = (
            recent.filter(contact_id__in=ids)
            .values("contact_id", "rule_id")
            .annotate(count=Count("pk"), points=Sum("points"))
            .values_list("contact_id", "rule_id", "count", "points")
        )
        for contact_id, rule_id, count, points in rows:
            rule = rules[rule_id]
            found.setdefault(contact_id, []).append(
                {
                    "rule": rule.key,
                    "label": rule.name,
                    "kind": rule.activity_kind,
                    "count": count,
                    "points": points,
                }
            )
    return {
        contact_id: sorted(items, key=lambda item: (-item["points"], -item["count"], item["rule"]))[
            :BEHAVIOUR_COUNT
        ]
        for contact_id, items in found.items()
    }


def rising_intent_get(*, contact: Contact) -> RisingIntent | None:
    """The contact's rising-intent flag, if they have one (one query)."""
    return RisingIntent.objects.filter(contact=contact).first()


def rising_intent_sentence(intent: RisingIntent) -> str:
    """'Engagement rose from 4/week to 45 points this week: Pricing page viewed ×4, …'."""
    behaviours = ", ".join(
        f"{item['label']} ×{item['count']}" if item["count"] > 1 else item["label"]
        for item in intent.behaviours
    )
    baseline = f"{intent.weekly_baseline:g}"
    text = (
        f"Engagement rose from {baseline} points a week to {intent.recent_points} "
        f"in the last {RECENT_DAYS} days"
    )
    return f"{text}: {behaviours}" if behaviours else text


def demo_rising_intent() -> str:
    """seed_demo's extension: flag the demo's rising contacts once its history is scored."""
    result = rising_intent_refresh()
    return f"{result.flagged} contacts with rising intent"
