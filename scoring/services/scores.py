"""Scoring a batch of activities: rules → ledger rows → one score update → handoffs.

The whole batch costs a fixed number of queries, however many activities it has:
rules, contacts, already-scored pairs, cap usage, silence and fit state are each
read once; ledger rows are bulk-inserted; scores move in one UPDATE ... CASE.
"""

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import Abs
from django.utils import timezone

from crm.models import Activity, Company, Contact
from crm.segments.validation import iter_conditions
from crm.selectors import contact_ids_objected
from crm.services.activities import NOT_ENGAGEMENT_KINDS, activities_recorded_deferred
from crm.services.segments import SEGMENT_KINDS
from crm.set_inserts import model_new, rows_insert
from crm.set_updates import column_add
from scoring.conditions import FIT_FIELDS, activity_matches, contact_matches
from scoring.models import Handoff, ScoreChange, ScoringRule
from scoring.selectors import RuleBook, rule_book_load
from scoring.services.handoffs import (
    demo_request_tasks_create,
    handoffs_evaluate,
    handoffs_rearm,
)
from scoring.services.side_effects import scoring_side_effects

Reason = ScoreChange.Reason
Part = ScoreChange.Part
MATCH_REASONS = (Reason.ACTIVITY, Reason.CAPPED)
#: Contacts per transaction when fit is re-checked for many.
FIT_REFRESH_CHUNK = 500
#: ScoreChange() without Model.__init__'s per-call cost (a batch builds hundreds).
_score_change_new = model_new(ScoreChange)


@dataclass(frozen=True)
class ScoringResult:
    """What scoring a batch did."""

    changes: tuple[ScoreChange, ...] = ()
    deltas: dict[int, int] = field(default_factory=dict)
    handoffs: tuple[Handoff, ...] = ()

    @property
    def contacts_changed(self) -> int:
        return sum(1 for delta in self.deltas.values() if delta)


@dataclass
class _Match:
    activity: Activity
    rule: ScoringRule


# No savepoint: inside the recording transaction a failure rolls the batch back anyway.
@transaction.atomic(savepoint=False)
def scores_apply(
    *, activities: Sequence[Activity], now: datetime.datetime | None = None
) -> ScoringResult:
    """Score new activities (engagement and the contacts' fit) and hand off leads that qualify.

    Activities already scored by a rule are skipped, so calling this twice with the
    same rows changes nothing. Machine email opens never score. With no scoring rules
    and no demo request in the batch this costs one query.

    Segment entries and exits only count through a rule that names their kind, and never
    re-check fit: fit rules read the contact's own fields, which a membership does not
    change (an edited contact is re-checked by `fit_scores_refresh_changed`). Measured,
    re-checking every new member was most of a segment's first evaluation: it loaded
    50,000 contacts per range inside the evaluation's transaction.
    """
    now = now or timezone.now()
    known = [activity for activity in activities if activity.contact_id is not None]
    if not known:
        return ScoringResult()
    rules = rule_book_load()
    if not rules and not any(activity.kind == Activity.Kind.DEMO_REQUESTED for activity in known):
        return ScoringResult()
    known = [
        activity
        for activity in known
        if activity.kind not in SEGMENT_KINDS or rules.engagement_for_kind_only(activity.kind)
    ]
    if not known:
        return ScoringResult()
    contacts = _contact_facts_load({activity.contact_id for activity in known}, rules.fit)
    changes = _engagement_changes(rules, known, contacts, now)
    if rules.has_fit_rules:
        changes += _fit_changes(rules.fit, contacts, now)
    return _record(changes, activities=known, now=now)


@transaction.atomic(savepoint=False)
def fit_scores_refresh(
    *, contact_ids: Iterable[int], now: datetime.datetime | None = None
) -> ScoringResult:
    """Re-check fit rules for these contacts (e.g. after their job title or company changed)."""
    now = now or timezone.now()
    rules = rule_book_load()
    if not rules.has_fit_rules:
        return ScoringResult()
    contacts = _contact_facts_load(set(contact_ids), rules.fit)
    changes = _fit_changes(rules.fit, contacts, now)
    return _record(changes, activities=[], now=now)


@dataclass(frozen=True)
class FitRefresh:
    """What a fit refresh over many contacts did."""

    contacts_checked: int = 0
    contacts_changed: int = 0

    def __add__(self, other: "FitRefresh") -> "FitRefresh":
        return FitRefresh(
            self.contacts_checked + other.contacts_checked,
            self.contacts_changed + other.contacts_changed,
        )


def fit_scores_refresh_changed(*, since: datetime.datetime) -> FitRefresh:
    """Re-check fit for contacts edited since `since`, or whose company was.

    Two index-friendly reads (contacts by updated_at; contacts of the companies edited,
    by company_id) instead of one OR across the join, which read all contacts every time.
    """
    if not rule_book_load().has_fit_rules:
        return FitRefresh()
    changed = set(Contact.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    companies = Company.objects.filter(updated_at__gte=since).values("pk")
    changed.update(Contact.objects.filter(company_id__in=companies).values_list("pk", flat=True))
    return _fit_refresh_chunked(sorted(changed))


def fit_scores_refresh_range(*, first_contact_id: int, last_contact_id: int) -> FitRefresh:
    """Re-check fit for every contact with an id in [first, last] (after fit rules changed)."""
    if not rule_book_load().has_fit_rules:
        return FitRefresh()
    ids = Contact.objects.filter(pk__gte=first_contact_id, pk__lte=last_contact_id)
    return _fit_refresh_chunked(list(ids.order_by("pk").values_list("pk", flat=True)))


def _fit_refresh_chunked(contact_ids: list[int]) -> FitRefresh:
    result = FitRefresh()
    for start in range(0, len(contact_ids), FIT_REFRESH_CHUNK):
        chunk = contact_ids[start : start + FIT_REFRESH_CHUNK]
        changed = fit_scores_refresh(contact_ids=chunk).contacts_changed
        result += FitRefresh(contacts_checked=len(chunk), contacts_changed=changed)
    return result


def _record(
    changes: list[ScoreChange], *, activities: Sequence[Activity], now: datetime.datetime
) -> ScoringResult:
    rows_insert(ScoreChange, changes)  # what bulk_create writes, without its per-value cost
    deltas = _contact_scores_add(changes)
    # Each handoff records `handed_off` (and maybe a stage change), each demo task a note:
    # announced together, the other apps' receivers run once for the batch, not per lead.
    # The announcement happens while scoring's side effects are marked, so none is scored.
    with scoring_side_effects(), activities_recorded_deferred():
        handoffs = handoffs_evaluate(candidates=_handoff_candidates(changes, deltas), now=now)
        if any(delta < 0 for delta in deltas.values()):
            handoffs_rearm(contact_ids=[pk for pk, delta in deltas.items() if delta < 0], now=now)
        demo_request_tasks_create(activities=activities, now=now)
    return ScoringResult(changes=tuple(changes), deltas=deltas, handoffs=tuple(handoffs))


#: Where each condition field of a fit rule lives, for `.values()`: (lookup, fact key).
_FACT_LOOKUPS = {"email_domain": "email", "property": "properties"}


def _contact_facts_load(contact_ids: set[int], fit_rules: list[ScoringRule]) -> dict[int, dict]:
    """Each contact as the facts scoring reads: created_at, and the fields fit rules test.

    One query, of only those columns, as plain dicts (crm.conditions.evaluator reads
    them as sequences' contact_facts): measured, loading the batch's contacts as full
    instances with company and owners was ~12% of an ingest request. Handoffs and demo
    tasks load the few contacts they open as instances themselves.
    """
    lookups: dict[str, tuple[str, str | None]] = {"created_at": ("created_at", None)}
    for rule in fit_rules:
        for condition in iter_conditions(rule.conditions):
            field = condition.get("field")
            if not isinstance(field, str) or field not in FIT_FIELDS:
                continue  # refused when the rule was saved; it matches nothing here either
            if field.startswith("company_"):
                name = field.removeprefix("company_")
                lookups[f"company__{name}"] = (name, "company")
            else:
                column = _FACT_LOOKUPS.get(field, field)
                lookups[column] = (column, None)
    rows = Contact.objects.filter(pk__in=list(contact_ids)).values("pk", "company_id", *lookups)
    contacts = {}
    for row in rows:
        facts: dict = {"pk": row["pk"], "company": {}}
        for lookup, (key, nested) in lookups.items():
            if nested is None:
                facts[key] = row[lookup]
            elif row["company_id"] is not None:
                facts["company"][key] = row[lookup]
        contacts[row["pk"]] = facts
    return contacts


# --- Engagement ------------------------------------------------------------------------------


def _engagement_changes(
    rules: RuleBook, activities: list[Activity], contacts: dict[int, dict], now
) -> list[ScoreChange]:
    if not rules.has_engagement_rules:
        return []
    matches = [
        _Match(activity, rule)
        for activity in sorted(activities, key=lambda activity: (activity.occurred_at, activity.pk))
        if not _is_machine_open(activity)
        for rule in rules.engagement_for(activity.kind)
        if _kind_fits(rule, activity)
        and activity_matches(rule.conditions, activity.properties, activity.kind)
    ]
    matches = _drop_objected(matches)
    if not matches:
        return []
    matches = _drop_already_scored(matches)
    matches = _drop_not_after_silence(matches, contacts)
    return _capped(matches, now)


def _drop_objected(matches: list[_Match]) -> list[_Match]:
    """Engagement scoring is marketing profiling: it stops for contacts who objected.

    One query for the whole batch, and none when nothing matched.
    """
    if not matches:
        return matches
    objected = contact_ids_objected({match.activity.contact_id for match in matches})
    return [match for match in matches if match.activity.contact_id not in objected]


def _is_machine_open(activity: Activity) -> bool:
    # Mail privacy proxies open every message: that is not a person reading.
    return bool(activity.properties.get("is_machine_open"))


def _kind_fits(rule: ScoringRule, activity: Activity) -> bool:
    """Kind-less rules match any engagement, never bookkeeping such as email_sent."""
    if rule.activity_kind:
        return True
    return activity.kind not in NOT_ENGAGEMENT_KINDS


def _drop_already_scored(matches: list[_Match]) -> list[_Match]:
    activity_ids = {match.activity.pk for match in matches}
    scored = set(
        ScoreChange.objects.filter(activity_id__in=activity_ids).values_list(
            "rule_id", "activity_id"
        )
    )
    return [match for match in matches if (match.rule.pk, match.activity.pk) not in scored]


def _drop_not_after_silence(matches: list[_Match], contacts: dict[int, dict]) -> list[_Match]:
    """Keep re-engagement matches only for a contact's first activity after a long silence."""
    silence_matches = [match for match in matches if match.rule.min_silence_days]
    if not silence_matches:
        return matches
    latest = _latest_engagement_before(silence_matches)
    kept, first_seen = [], set()
    for match in matches:
        days = match.rule.min_silence_days
        if not days:
            kept.append(match)
            continue
        contact_id = match.activity.contact_id
        quiet_since = match.activity.occurred_at - datetime.timedelta(days=days)
        was_quiet = latest.get(contact_id) is None or latest[contact_id] < quiet_since
        known_long = contacts[contact_id]["created_at"] <= quiet_since
        if was_quiet and known_long and (match.rule.pk, contact_id) not in first_seen:
            kept.append(match)
        first_seen.add((match.rule.pk, contact_id))
    return kept


def _latest_engagement_before(matches: list[_Match]) -> dict[int, datetime.datetime]:
    """Each contact's latest engagement that is not part of this batch, within the silence."""
    earliest = min(
        match.activity.occurred_at - datetime.timedelta(days=match.rule.min_silence_days)
        for match in matches
    )
    batch_ids = {match.activity.pk for match in matches}
    rows = (
        Activity.objects.filter(
            contact_id__in={match.activity.contact_id for match in matches},
            occurred_at__gte=earliest,
        )
        .exclude(pk__in=batch_ids)
        .exclude(kind__in=NOT_ENGAGEMENT_KINDS)
        .values("contact_id")
        .annotate(latest=Max("occurred_at"))
        .order_by()
    )
    return {row["contact_id"]: row["latest"] for row in rows}


def _capped(matches: list[_Match], now: datetime.datetime) -> list[ScoreChange]:
    """Turn matches into ledger rows, holding each capped rule to its points per period."""
    used = _cap_usage(matches, now)
    changes = []
    for match in matches:
        rule, activity = match.rule, match.activity
        points = rule.points
        if rule.cap_points is not None:
            pair = (activity.contact_id, rule.pk)
            room = max(rule.cap_points - used[pair], 0)
            points = min(abs(rule.points), room) * (1 if rule.points >= 0 else -1)
            used[pair] += abs(points)
        changes.append(
            _score_change_new(
                contact_id=activity.contact_id,
                rule=rule,
                activity=activity,
                part=Part.ENGAGEMENT,
                reason=Reason.ACTIVITY if points == rule.points else Reason.CAPPED,
                points=points,
                occurred_at=activity.occurred_at,
            )
        )
    return changes


def _cap_usage(matches: list[_Match], now: datetime.datetime) -> defaultdict[tuple[int, int], int]:
    """Points each (contact, capped rule) already got within the rule's cap period: one query."""
    used: defaultdict[tuple[int, int], int] = defaultdict(int)
    capped = {match.rule.pk: match.rule for match in matches if match.rule.cap_points is not None}
    if not capped:
        return used
    window = Q()
    for rule in capped.values():
        window |= Q(rule=rule, occurred_at__gte=now - datetime.timedelta(days=rule.cap_period_days))
    rows = (
        ScoreChange.objects.filter(
            window,
            contact_id__in={match.activity.contact_id for match in matches},
            reason__in=MATCH_REASONS,
        )
        .values("contact_id", "rule_id")
        .annotate(points=Sum(Abs("points")))
        .order_by()
    )
    for row in rows:
        used[(row["contact_id"], row["rule_id"])] = row["points"] or 0
    return used


# --- Fit -------------------------------------------------------------------------------------


def _fit_changes(
    fit_rules: list[ScoringRule], contacts: dict[int, dict], now: datetime.datetime
) -> list[ScoreChange]:
    """Rows that bring each contact's fit points in line with the rules they match now.

    A contact holds a fit rule's points while matching it; a change of job title,
    company or rule (including deactivation) adds the difference, once.
    """
    held = _fit_points_held(list(contacts))
    changes = []
    for pk, facts in contacts.items():
        wanted = {
            rule.pk: rule.points if contact_matches(rule.conditions, facts) else 0
            for rule in fit_rules
        }
        for rule_id in held.get(pk, {}).keys() - wanted.keys():
            wanted[rule_id] = 0  # the rule was deactivated: give its points back
        for rule_id, points in wanted.items():
            difference = points - held.get(pk, {}).get(rule_id, 0)
            if difference:
                changes.append(
                    _score_change_new(
                        contact_id=pk,
                        rule_id=rule_id,
                        part=Part.FIT,
                        reason=Reason.FIT,
                        points=difference,
                        occurred_at=now,
                    )
                )
    return changes


def _fit_points_held(contact_ids: list[int]) -> dict[int, dict[int, int]]:
    rows = (
        ScoreChange.objects.filter(contact_id__in=contact_ids, part=Part.FIT)
        .values("contact_id", "rule_id")
        .annotate(points=Sum("points"))
        .exclude(points=0)
        .order_by()
    )
    held: dict[int, dict[int, int]] = {}
    for row in rows:
        held.setdefault(row["contact_id"], {})[row["rule_id"]] = row["points"]
    return held


# --- The cached score and who may be handed off ----------------------------------------------


def _contact_scores_add(changes: list[ScoreChange]) -> dict[int, int]:
    """Add each contact's net change to Contact.lead_score in one UPDATE ... FROM (VALUES)."""
    deltas: dict[int, int] = defaultdict(int)
    for change in changes:
        deltas[change.contact_id] += change.points
    # Added in the database (lead_score + v.value), so concurrent batches add up.
    column_add(Contact, "lead_score", deltas)
    return dict(deltas)


def _handoff_candidates(changes: list[ScoreChange], deltas: dict[int, int]) -> set[int]:
    """Contacts whose score rose, or who showed a signal (a match, even a capped one)."""
    rose = {pk for pk, delta in deltas.items() if delta > 0}
    signalled = {change.contact_id for change in changes if change.reason in MATCH_REASONS}
    return rose | signalled
