"""Writing report facts and their daily counts, one batch at a time (docs/reporting.md).

One function per fact source, each a fixed number of queries per batch:

- `report_counts_add_enrolled(enrollments=...)`: new enrollments (enrollments.py);
- `report_counts_add_ended(rows=..., now=...)`: ended enrollments (enrollments.py, matching.py);
- `report_counts_add_sent(activities)`: `email_sent` activities (the send ledger's record);
- `report_counts_add_engagement(activities)`: `email_delivered/opened/clicked` (ESP events);
- `report_conversions_add(activities)`: orders and won deals; refunds and lost deals reverse;
- `report_deals_add(activities)`, `report_handoffs_add(activities)`: the sales questions.

The activity-borne ones run from the `activities_recorded` receiver (receivers.py), so
they happen in the transaction that records the send, the ESP event or the order.

Counting rules: an enrollment's conversions and goal are counted on the day it entered
(its cohort), so "converted of enrolled" never exceeds 100% for any period; sends and
engagement on the day they happened. Each message counts once per funnel stage; a click
proves a human open and an open proves delivery (some ESPs report no deliveries).
"""

import datetime
import logging
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection

from crm.models import Activity, DealStage, SegmentMembership
from sequences.models import Enrollment, OutboundMessage
from sequences.reports.counts import Key, Tally, report_counts_add, utc_day
from sequences.reports.holdout import is_held_out
from sequences.reports.models import (
    Conversion,
    EnrollmentFact,
    HandoffFact,
    MessageFact,
    SegmentConversionCount,
)
from sequences.reports.money import to_report_minor

logger = logging.getLogger(__name__)
K = Activity.Kind
ENDED_STATES = frozenset(
    {
        Enrollment.State.COMPLETED,
        Enrollment.State.CONVERTED,
        Enrollment.State.EXITED,
        Enrollment.State.FAILED,
    }
)
ENGAGEMENT_KINDS = frozenset({K.EMAIL_DELIVERED, K.EMAIL_OPENED, K.EMAIL_CLICKED})
HANDOFF_CLOSED = "handoff_closed"
HANDOFF_OUTCOMES = ("accepted", "recycled", "rejected")
FEEDBACK = "feedback:"
#: Characters of sales' reason kept in the feedback counter's metric (its column holds 120).
FEEDBACK_REASON = 100


def feedback_metric(outcome: str, reason: str) -> str:
    """The counter of one verdict and reason: feedback:<outcome>:<reason>."""
    return f"{FEEDBACK}{outcome}:{reason[:FEEDBACK_REASON]}"


def _cohort(is_holdout: bool) -> str:
    return "holdout" if is_holdout else "mailed"


# --- Enrollments ----------------------------------------------------------------------------


def report_counts_add_enrolled(*, enrollments: Iterable[Enrollment]) -> int:
    """Record new enrollments (cohort fixed now: mailed or holdout) and count them."""
    facts, tally = [], Tally()
    for enrollment in enrollments:
        sequence = enrollment.sequence
        holdout = not sequence.is_transactional and is_held_out(
            sequence_key=sequence.key,
            contact_id=enrollment.contact_id,
            percent=sequence.holdout_percent,
        )
        facts.append(
            EnrollmentFact(
                enrollment_id=enrollment.pk,
                sequence_id=sequence.pk,
                version_pk=enrollment.version_id or 0,
                contact_id=enrollment.contact_id,
                is_holdout=holdout,
                enrolled_at=enrollment.enrolled_at,
            )
        )
        tally.add(
            Key(
                day=utc_day(enrollment.enrolled_at),
                metric="enrolled",
                sequence_pk=sequence.pk,
                version_pk=enrollment.version_id or 0,
                cohort=_cohort(holdout),
            )
        )
    if not facts:
        return 0
    EnrollmentFact.objects.bulk_create(facts, ignore_conflicts=True)
    report_counts_add(tally)
    return len(facts)


def report_counts_add_ended(*, rows: Iterable[tuple], now: datetime.datetime) -> int:
    """Count ended enrollments by state and reason; rows are (enrollment, state, reason).

    Rows with another state (history lines such as "resumed") are ignored, so a caller
    may pass its whole list of history lines.
    """
    ended = {
        enrollment.pk: (enrollment, state, reason)
        for enrollment, state, reason in rows
        if state in ENDED_STATES
    }
    if not ended:
        return 0
    facts = list(EnrollmentFact.objects.filter(pk__in=ended, ended_at__isnull=True))
    tally = Tally()
    for fact in facts:
        enrollment, state, reason = ended[fact.pk]
        # The enrollment's own end time when it has one (a rebuild), else this batch's.
        fact.ended_at, fact.end_state = enrollment.ended_at or now, state
        fact.end_reason, fact.end_step = (reason or "")[:200], enrollment.current_step[:50]
        key = Key(
            day=utc_day(fact.enrolled_at),
            metric=f"ended:{state}:{fact.end_reason}",
            sequence_pk=fact.sequence_id,
            version_pk=fact.version_pk,
            step=fact.end_step,
            cohort=fact.cohort,
        )
        tally.add(key)
        if state == Enrollment.State.CONVERTED:
            tally.add(
                Key(
                    day=utc_day(fact.enrolled_at),
                    metric="goal_converted",
                    sequence_pk=fact.sequence_id,
                    version_pk=fact.version_pk,
                    cohort=fact.cohort,
                )
            )
    EnrollmentFact.objects.bulk_update(
        facts, ["ended_at", "end_state", "end_reason", "end_step"], batch_size=500
    )
    report_counts_add(tally)
    return len(facts)


# --- Sends and engagement -------------------------------------------------------------------


def _uuid(activity: Activity) -> str:
    value = str((activity.properties or {}).get("message_uuid", ""))
    return value if len(value) == 36 else ""


def report_counts_add_sent(activities: Iterable[Activity]) -> int:
    """Record each sent sequence email once (from its `email_sent` activity) and count it."""
    by_uuid = {_uuid(a): a for a in activities if a.kind == K.EMAIL_SENT and _uuid(a)}
    if not by_uuid:
        return 0
    # Plain rows, not model instances: a send batch's hundreds of messages and
    # enrollments (their JSON included) were a tenth of the batch's CPU.
    messages = list(
        OutboundMessage.objects.filter(uuid__in=by_uuid, kind=OutboundMessage.SEQUENCE)
        .filter(enrollment__isnull=False)
        .values_list(
            "pk",
            "uuid",
            "step",
            "variant",
            "enrollment_id",
            "enrollment__sequence_id",
            "enrollment__version_id",
            "enrollment__contact_id",
            named=True,
        )
    )
    known = set(
        MessageFact.objects.filter(message__in=[m.pk for m in messages]).values_list(
            "message_id", flat=True
        )
    )
    facts, tally = [], Tally()
    for message in messages:
        if message.pk in known:
            continue
        activity = by_uuid[str(message.uuid)]
        facts.append(
            MessageFact(
                message_id=message.pk,
                sequence_id=message.enrollment__sequence_id,
                version_pk=message.enrollment__version_id,
                step=message.step,
                variant=message.variant,
                contact_id=message.enrollment__contact_id,
                sent_at=activity.occurred_at,
            )
        )
        _add_message(tally, facts[-1], activity.occurred_at, "sent")
    MessageFact.objects.bulk_create(facts, ignore_conflicts=True)
    _people_reached(
        [(m.enrollment_id, "emailed_at", by_uuid[str(m.uuid)].occurred_at) for m in messages],
        tally,
    )
    report_counts_add(tally)
    return len(facts)


def _add_message(tally: Tally, fact: MessageFact, at: datetime.datetime, metric: str) -> None:
    """Count an email's stage for its step (and variant) and for the whole sequence.

    The sequence-level row (step "") lets the overview and totals read a few rows a day
    instead of one per step and variant.
    """
    tally.add(_message_key(fact, at, metric))
    tally.add(
        Key(
            day=utc_day(at),
            metric=metric,
            sequence_pk=fact.sequence_id,
            version_pk=fact.version_pk,
            cohort="mailed",
        )
    )


def _message_key(fact: MessageFact, at: datetime.datetime, metric: str) -> Key:
    return Key(
        day=utc_day(at),
        metric=metric,
        sequence_pk=fact.sequence_id,
        version_pk=fact.version_pk,
        step=fact.step,
        variant=fact.variant,
        cohort="mailed",
    )


def report_counts_add_engagement(activities: Iterable[Activity]) -> int:
    """Count each message's first delivery, human open, machine open and click."""
    events = sorted(
        (a for a in activities if a.kind in ENGAGEMENT_KINDS and _uuid(a)),
        key=lambda a: a.occurred_at,
    )
    if not events:
        return 0
    facts = {
        str(fact.message.uuid): fact
        for fact in MessageFact.objects.filter(
            message__uuid__in={_uuid(a) for a in events}
        ).select_related("message")
    }
    changed, tally = {}, Tally()

    reached = []

    def mark(fact: MessageFact, field: str, at: datetime.datetime, metric: str) -> None:
        if getattr(fact, field) is None:
            setattr(fact, field, at)
            changed[fact.pk] = fact
            _add_message(tally, fact, at, metric)
            if field != "machine_opened_at":
                reached.append((fact.message.enrollment_id, field, at))

    for activity in events:
        fact = facts.get(_uuid(activity))
        if fact is None:
            continue  # not a sequence email (system mail), or its send is not recorded
        at = activity.occurred_at
        if activity.kind == K.EMAIL_OPENED and (activity.properties or {}).get("is_machine_open"):
            mark(fact, "machine_opened_at", at, "machine_opened")
            continue
        mark(fact, "delivered_at", at, "delivered")
        if activity.kind in (K.EMAIL_OPENED, K.EMAIL_CLICKED):
            mark(fact, "opened_at", at, "opened")
        if activity.kind == K.EMAIL_CLICKED:
            mark(fact, "clicked_at", at, "clicked")
    MessageFact.objects.bulk_update(
        list(changed.values()),
        ["delivered_at", "opened_at", "machine_opened_at", "clicked_at"],
        batch_size=500,
    )
    _people_reached(reached, tally)
    report_counts_add(tally)
    return len(changed)


#: EnrollmentFact field → the funnel metric counting people who got that far.
PEOPLE_METRICS = {
    "emailed_at": "people_emailed",
    "delivered_at": "people_delivered",
    "opened_at": "people_opened",
    "clicked_at": "people_clicked",
}


def _people_reached(marks: list[tuple[int, str, datetime.datetime]], tally: Tally) -> None:
    """Count an enrollment once at each funnel stage its emails reach (its cohort day).

    Plain rows in, one `UPDATE … WHERE … IS NULL` per (stage, time) out (a send batch
    has one time): bulk_update() wrote every stage of every row with a CASE per row,
    and with the model instances it read was a visible share of a send batch's CPU.
    The `IS NULL` keeps a stage's first time when another batch set it meanwhile.
    """
    if not marks:
        return
    rows = {
        row[0]: row
        for row in EnrollmentFact.objects.filter(
            pk__in={enrollment_id for enrollment_id, _, _ in marks}
        ).values_list(
            "pk", "enrolled_at", "sequence_id", "version_pk", "is_holdout", *PEOPLE_METRICS
        )
    }
    stages = list(PEOPLE_METRICS)
    reached: set[tuple[int, str]] = set()
    updates: dict[tuple[str, datetime.datetime], list[int]] = defaultdict(list)
    for enrollment_id, field, at in sorted(marks, key=lambda mark: mark[2]):
        row = rows.get(enrollment_id)
        if row is None or (enrollment_id, field) in reached:
            continue
        if row[5 + stages.index(field)] is not None:
            continue
        reached.add((enrollment_id, field))
        updates[(field, at)].append(enrollment_id)
        tally.add(
            Key(
                day=utc_day(row[1]),
                metric=PEOPLE_METRICS[field],
                sequence_pk=row[2],
                version_pk=row[3],
                cohort="holdout" if row[4] else "mailed",
            )
        )
    for (field, at), pks in updates.items():
        EnrollmentFact.objects.filter(pk__in=pks, **{f"{field}__isnull": True}).update(
            **{field: at}
        )


# --- Touches and enrollments before a conversion --------------------------------------------


def _windows() -> dict[str, datetime.timedelta]:
    windows = {K.EMAIL_CLICKED: datetime.timedelta(days=settings.REPORT_CLICK_WINDOW_DAYS)}
    if settings.REPORT_ATTRIBUTE_OPENS:
        windows[K.EMAIL_OPENED] = datetime.timedelta(days=settings.REPORT_OPEN_WINDOW_DAYS)
    return windows


class Touches:
    """The sequence emails each contact clicked (or opened) before some moments."""

    def __init__(self, moments: list[tuple[int, datetime.datetime]]) -> None:
        self.by_contact: dict[int, list[tuple[datetime.datetime, str, str]]] = defaultdict(list)
        self.messages: dict[str, OutboundMessage] = {}
        if not moments:
            return
        windows = _windows()
        longest = max(windows.values())
        rows = Activity.objects.filter(
            contact_id__in={contact_id for contact_id, _ in moments},
            kind__in=list(windows),
            occurred_at__gte=min(at for _, at in moments) - longest,
            occurred_at__lte=max(at for _, at in moments),
        ).values_list("contact_id", "kind", "occurred_at", "properties")
        for contact_id, kind, at, properties in rows:
            properties = properties or {}
            uuid = str(properties.get("message_uuid", ""))
            if kind == K.EMAIL_OPENED and properties.get("is_machine_open"):
                continue  # a scanner opened it, not the person
            if len(uuid) == 36:
                self.by_contact[contact_id].append((at, kind, uuid))
        uuids = {uuid for touches in self.by_contact.values() for _, _, uuid in touches}
        self.messages = {
            str(message.uuid): message
            for message in OutboundMessage.objects.filter(
                uuid__in=uuids, kind=OutboundMessage.SEQUENCE
            ).select_related("enrollment")
        }
        self.windows = windows

    def last_before(
        self, contact_id: int, at: datetime.datetime
    ) -> tuple[OutboundMessage, str] | None:
        """The last sequence email touched within its window before `at`, and how."""
        best = None
        for touched_at, kind, uuid in self.by_contact.get(contact_id, ()):
            if uuid not in self.messages or not (at - self.windows[kind] <= touched_at <= at):
                continue
            if best is None or touched_at > best[0]:
                best = (touched_at, kind, uuid)
        if best is None:
            return None
        return self.messages[best[2]], "click" if best[1] == K.EMAIL_CLICKED else "open"


def _window() -> datetime.timedelta:
    return datetime.timedelta(days=settings.REPORT_CONVERSION_WINDOW_DAYS)


def _enrollment_facts(moments: list[tuple[int, datetime.datetime]]) -> dict[int, list]:
    """EnrollmentFacts of these contacts that entered up to the window before the moments."""
    if not moments:
        return {}
    rows = EnrollmentFact.objects.filter(
        contact_id__in={contact_id for contact_id, _ in moments},
        enrolled_at__gte=min(at for _, at in moments) - _window(),
        enrolled_at__lte=max(at for _, at in moments),
    )
    by_contact = defaultdict(list)
    for fact in rows:
        by_contact[fact.contact_id].append(fact)
    return by_contact


def _credited(facts: list[EnrollmentFact], at: datetime.datetime) -> list[EnrollmentFact]:
    """The enrollments a conversion at `at` counts for: entered at most the window before."""
    return [fact for fact in facts if fact.enrolled_at <= at <= fact.enrolled_at + _window()]


# --- Conversions: orders and won deals ------------------------------------------------------


def _decimal(value) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _conversion_from(activity: Activity) -> Conversion | None:
    """The conversion an order or won-deal activity describes; None if it is not one."""
    properties = activity.properties or {}
    if activity.kind in settings.REPORT_ORDER_KINDS:
        # `total` is the documented field; `value` (the demo's carts) and `amount` also count.
        raw = next((properties[f] for f in ("total", "value", "amount") if f in properties), None)
        amount = _decimal(raw)
        if amount is None:
            # Not a countable order (no total, or not a number): left out of revenue.
            logger.debug("order activity %s has no valid total; not counted", activity.pk)
            return None
        order_id = str(properties.get("order_id") or f"activity-{activity.pk}")
        key, source = f"order:{order_id}"[:220], Conversion.Source.ORDER
    elif activity.kind == K.DEAL_STAGE_CHANGED and properties.get("outcome") == "won":
        amount = _decimal(properties.get("amount")) or Decimal(0)
        key, source = f"deal:{properties.get('deal_id')}", Conversion.Source.DEAL
    else:
        return None
    currency = str(properties.get("currency") or settings.REPORT_CURRENCY).upper()[:3]
    return Conversion(
        key=key,
        source=source,
        contact_id=activity.contact_id,
        occurred_at=activity.occurred_at,
        amount=amount.quantize(Decimal("0.01")),
        currency=currency,
        amount_minor=to_report_minor(amount, currency),
        report_currency=settings.REPORT_CURRENCY,
    )


def _reversal_key(activity: Activity) -> str:
    """The conversion key a refund or a lost deal reverses, or ""."""
    properties = activity.properties or {}
    if activity.kind in settings.REPORT_REFUND_KINDS and properties.get("order_id"):
        return f"order:{properties['order_id']}"[:220]
    lost = properties.get("outcome") == DealStage.Outcome.LOST
    if activity.kind == K.DEAL_STAGE_CHANGED and lost:
        return f"deal:{properties.get('deal_id')}"
    return ""


def report_conversions_add(activities: Iterable[Activity]) -> int:
    """Record orders and won deals once each, credit them, and reverse refunds and lost deals.

    Credit goes two ways (docs/reporting.md): touch-based to the one sequence email the
    contact last clicked within REPORT_CLICK_WINDOW_DAYS (or opened, if configured), and
    incremental to every enrollment the contact entered within
    REPORT_CONVERSION_WINDOW_DAYS before, in its cohort (mailed or holdout).
    """
    activities = [a for a in activities if a.contact_id is not None]
    candidates = {}
    for activity in activities:
        conversion = _conversion_from(activity)
        if conversion is not None and conversion.key not in candidates:
            candidates[conversion.key] = conversion
    reversal_keys = {key for key in map(_reversal_key, activities) if key}
    if not candidates and not reversal_keys:
        return 0
    existing = Conversion.objects.select_related("previous").in_bulk(
        list(candidates) + list(reversal_keys), field_name="key"
    )
    new = [c for key, c in candidates.items() if key not in existing]
    reversals = [
        existing[key] for key in reversal_keys if key in existing and not existing[key].reversed_at
    ]
    # A refund in the same batch as its order (an import, a rebuild) reverses it too.
    reversals += [c for c in new if c.key in reversal_keys]
    moments = [(c.contact_id, c.occurred_at) for c in new + reversals]
    touches = Touches([(c.contact_id, c.occurred_at) for c in new])
    enrollments = _enrollment_facts(moments)
    history = _orders_history(new)
    # Contacts converting for the first time ever (before this batch adds to the history).
    firsts = [c for c in new if not history.get(c.contact_id)]
    tally = Tally()
    changed_facts: dict[int, EnrollmentFact] = {}
    for conversion in sorted(new, key=lambda c: c.occurred_at):
        _attribute(conversion, touches.last_before(conversion.contact_id, conversion.occurred_at))
        _mark_repeat(conversion, history)
        credited = _credited(enrollments.get(conversion.contact_id, []), conversion.occurred_at)
        _conversion_tally(conversion, credited, +1, tally, changed_facts)
    _create_in_order(new)
    now = max((a.occurred_at for a in activities), default=None)
    for conversion in reversals:
        conversion.reversed_at = now
        conversion.reversed_by = "refund" if conversion.source == "order" else "deal_lost"
        credited = _credited(enrollments.get(conversion.contact_id, []), conversion.occurred_at)
        _conversion_tally(conversion, credited, -1, tally, changed_facts)
    Conversion.objects.bulk_update(reversals, ["reversed_at", "reversed_by"])
    EnrollmentFact.objects.bulk_update(
        list(changed_facts.values()), ["orders", "revenue_minor", "first_converted_at"]
    )
    _segment_times(firsts)
    report_counts_add(tally)
    return len(new) + len(reversals)


def _create_in_order(new: list[Conversion]) -> None:
    """Insert conversions; a repeat whose first order is in the same batch goes after it."""
    todo = list(new)
    while todo:
        ready = [c for c in todo if c.previous is None or c.previous.pk is not None]
        Conversion.objects.bulk_create(ready)
        todo = [c for c in todo if c.pk is None]


def _attribute(conversion: Conversion, touch) -> None:
    if touch is None:
        return
    message, kind = touch
    conversion.touch_message = message
    conversion.touch_kind = kind
    conversion.touch_sequence_pk = message.enrollment.sequence_id
    conversion.touch_version_pk = message.enrollment.version_id
    conversion.touch_step = message.step
    conversion.touch_variant = message.variant


def _orders_history(new: list[Conversion]) -> dict[int, list[Conversion]]:
    """Each contact's earlier live conversions (orders or deals), oldest first."""
    contact_ids = {c.contact_id for c in new}
    if not contact_ids:
        return {}
    history = defaultdict(list)
    earlier = Conversion.objects.filter(contact_id__in=contact_ids, reversed_at__isnull=True)
    for conversion in earlier.order_by("occurred_at"):
        history[conversion.contact_id].append(conversion)
    return history


def _mark_repeat(conversion: Conversion, history: dict[int, list[Conversion]]) -> None:
    """A second order within REPORT_REPEAT_DAYS of an earlier one is a repeat purchase."""
    earlier = [
        c
        for c in history.get(conversion.contact_id, [])
        if c.source == Conversion.Source.ORDER and c.occurred_at <= conversion.occurred_at
    ]
    if conversion.source == Conversion.Source.ORDER and earlier:
        previous = earlier[-1]
        span = datetime.timedelta(days=settings.REPORT_REPEAT_DAYS)
        if conversion.occurred_at - previous.occurred_at <= span:
            conversion.is_repeat, conversion.previous = True, previous
    # Orders later in the same batch see this one as their history.
    history.setdefault(conversion.contact_id, []).append(conversion)


def _conversion_tally(
    conversion: Conversion,
    credited: list[EnrollmentFact],
    sign: int,
    tally: Tally,
    changed: dict[int, EnrollmentFact],
) -> None:
    """Add (+1) or take back (-1) everything one conversion counts for."""
    money = conversion.amount_minor or 0
    day = utc_day(conversion.occurred_at)
    tally.add(Key(day=day, metric=f"{conversion.source}s"), sign, sign * money)
    if conversion.amount_minor is None:
        tally.add(Key(day=day, metric="unconverted_currency"), sign)
    if conversion.touch_sequence_pk:
        for step, variant in ((conversion.touch_step, conversion.touch_variant), ("", "")):
            key = Key(
                day=day,
                metric="attributed",
                sequence_pk=conversion.touch_sequence_pk,
                version_pk=conversion.touch_version_pk,
                step=step,
                variant=variant,
                cohort="mailed",
            )
            tally.add(key, sign, sign * money)
    previous = conversion.previous
    if conversion.is_repeat and previous is not None and previous.touch_sequence_pk:
        # The repeat is credited to the email that led to the first order.
        tally.add(
            Key(
                day=day,
                metric="repeat_orders",
                sequence_pk=previous.touch_sequence_pk,
                version_pk=previous.touch_version_pk,
                step=previous.touch_step,
                variant=previous.touch_variant,
                cohort="mailed",
            ),
            sign,
            sign * money,
        )
    if conversion.is_repeat:
        tally.add(Key(day=day, metric="repeat_orders"), sign, sign * money)
    for fact in credited:
        fact = changed.setdefault(fact.pk, fact)
        cohort_key = Key(
            day=utc_day(fact.enrolled_at),
            metric="cohort_revenue",
            sequence_pk=fact.sequence_id,
            version_pk=fact.version_pk,
            cohort=fact.cohort,
        )
        tally.add(cohort_key, sign, sign * money)
        was_converted = fact.orders > 0
        fact.orders = max(fact.orders + sign, 0)
        before = fact.revenue_minor
        fact.revenue_minor += sign * money
        # The sum of squares of revenue per enrollment (cents²), for Welch's interval on
        # revenue per contact (stats.revenue_lift): this enrollment's square changes by
        # after² - before².
        square_key = Key(
            day=cohort_key.day,
            metric="cohort_revenue_sq",
            sequence_pk=fact.sequence_id,
            version_pk=fact.version_pk,
            cohort=fact.cohort,
        )
        tally.add(square_key, 0, fact.revenue_minor**2 - before**2)
        if fact.orders > 0 and not was_converted:
            fact.first_converted_at = conversion.occurred_at
            tally.add(_converted_key(fact), +1)
        elif fact.orders == 0 and was_converted:
            fact.first_converted_at = None
            tally.add(_converted_key(fact), -1)
        if conversion.source == Conversion.Source.DEAL:
            won_key = Key(
                day=utc_day(fact.enrolled_at),
                metric="deals_won",
                sequence_pk=fact.sequence_id,
                version_pk=fact.version_pk,
                cohort=fact.cohort,
            )
            tally.add(won_key, sign, sign * money)


def _converted_key(fact: EnrollmentFact) -> Key:
    return Key(
        day=utc_day(fact.enrolled_at),
        metric="cohort_converted",
        sequence_pk=fact.sequence_id,
        version_pk=fact.version_pk,
        cohort=fact.cohort,
    )


def _segment_times(firsts: list[Conversion]) -> None:
    """Days from entering each current segment to a contact's first conversion."""
    if not firsts:
        return
    first_by_contact = {}
    for conversion in firsts:
        first_by_contact.setdefault(conversion.contact_id, conversion.occurred_at)
    memberships = SegmentMembership.objects.filter(
        contact_id__in=first_by_contact, exited_at__isnull=True
    ).values_list("segment_id", "contact_id", "entered_at")
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for segment_id, contact_id, entered_at in memberships:
        converted_at = first_by_contact[contact_id]
        if entered_at <= converted_at:
            counts[(segment_id, (converted_at - entered_at).days)] += 1
    if not counts:
        return
    table = connection.ops.quote_name(SegmentConversionCount._meta.db_table)
    keys = sorted(counts)
    values = ", ".join(["(%s, %s, %s)"] * len(keys))
    params = [item for key in keys for item in (key[0], key[1], counts[key])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment_id, days, count) VALUES {values} "
            f"ON CONFLICT (segment_id, days) DO UPDATE SET count = {table}.count + excluded.count",
            params,
        )


# --- Deals and handoffs: the sales questions ------------------------------------------------


def report_deals_add(activities: Iterable[Activity]) -> int:
    """Count deals opened by contacts after they entered a sequence (per sequence, cohort)."""
    opened = [
        a
        for a in activities
        if a.kind == K.DEAL_STAGE_CHANGED
        and a.contact_id is not None
        and not (a.properties or {}).get("from")
    ]
    if not opened:
        return 0
    moments = [(a.contact_id, a.occurred_at) for a in opened]
    enrollments = _enrollment_facts(moments)
    tally = Tally()
    for activity in opened:
        for fact in _credited(enrollments.get(activity.contact_id, []), activity.occurred_at):
            key = Key(
                day=utc_day(fact.enrolled_at),
                metric="deals_opened",
                sequence_pk=fact.sequence_id,
                version_pk=fact.version_pk,
                cohort=fact.cohort,
            )
            amount = _decimal((activity.properties or {}).get("amount")) or Decimal(0)
            currency = str((activity.properties or {}).get("currency") or "")
            tally.add(key, 1, to_report_minor(amount, currency or settings.REPORT_CURRENCY) or 0)
    report_counts_add(tally)
    return len(opened)


def report_handoffs_add(activities: Iterable[Activity]) -> int:
    """Record handoffs to sales and their outcomes, credited to sequences and emails."""
    handed = [a for a in activities if a.kind == K.HANDED_OFF and a.contact_id is not None]
    closed = [a for a in activities if a.kind == HANDOFF_CLOSED]
    if not handed and not closed:
        return 0
    tally = Tally()
    moments = [(a.contact_id, a.occurred_at) for a in handed]
    touches = Touches(moments)
    enrollments = _enrollment_facts(moments)
    facts = []
    for activity in handed:
        handoff_pk = (activity.properties or {}).get("handoff_id")
        if not handoff_pk:
            continue
        credited = _credited(enrollments.get(activity.contact_id, []), activity.occurred_at)
        touch = touches.last_before(activity.contact_id, activity.occurred_at)
        fact = HandoffFact(
            handoff_pk=handoff_pk,
            contact_id=activity.contact_id,
            opened_at=activity.occurred_at,
            sequence_pks=sorted({f.sequence_id for f in credited}),
            touch_sequence_pk=touch[0].enrollment.sequence_id if touch else 0,
            touch_step=touch[0].step if touch else "",
        )
        facts.append(fact)
        _handoff_tally(fact, "handoffs", activity.occurred_at, tally)
    HandoffFact.objects.bulk_create(facts, ignore_conflicts=True)
    _handoff_outcomes(closed, tally)
    report_counts_add(tally)
    return len(handed) + len(closed)


def _handoff_tally(fact: HandoffFact, metric: str, at: datetime.datetime, tally: Tally) -> None:
    for sequence_pk in fact.sequence_pks:
        tally.add(Key(day=utc_day(at), metric=metric, sequence_pk=sequence_pk))
    if fact.touch_sequence_pk:
        pk, step = fact.touch_sequence_pk, fact.touch_step
        tally.add(Key(day=utc_day(at), metric=metric, sequence_pk=pk, step=step))
    tally.add(Key(day=utc_day(at), metric=metric))


def _handoff_outcomes(closed: list[Activity], tally: Tally) -> None:
    by_pk = {}
    for activity in closed:
        properties = activity.properties or {}
        if properties.get("outcome") in HANDOFF_OUTCOMES and properties.get("handoff_id"):
            by_pk[int(properties["handoff_id"])] = activity
    facts = list(HandoffFact.objects.filter(handoff_pk__in=by_pk, outcome=""))
    for fact in facts:
        activity = by_pk[fact.handoff_pk]
        fact.outcome = activity.properties["outcome"]
        fact.reason = str(activity.properties.get("reason") or "")[:500]
        fact.closed_at = activity.occurred_at
        _handoff_tally(fact, f"handoff_{fact.outcome}", fact.opened_at, tally)
        # Sales' verdict with its reason, for the feedback table (selectors.handoff_feedback):
        # on the email that came last before the handoff (sequence 0: no email before).
        feedback = Key(
            day=utc_day(fact.opened_at),
            metric=feedback_metric(fact.outcome, fact.reason),
            sequence_pk=fact.touch_sequence_pk,
            step=fact.touch_step,
        )
        tally.add(feedback)
    HandoffFact.objects.bulk_update(facts, ["outcome", "reason", "closed_at"])
