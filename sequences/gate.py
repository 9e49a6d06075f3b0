"""The send gate: one function decides every sequence email, at send time, deny by default.

Rules, in order (docs/sequences.md explains each):

1. Suppression wins over everything. Marketing stops on any active suppression;
   transactional mail stops on those that mean "cannot or must not deliver"
   (hard bounce, complaint, erasure, soft-bounce cool-down, staff's manual entry),
   but not on "unsubscribed from marketing" or the inactivity sunset.
   An erasure denies with reason "erased", whatever else applies.
1a. Nobody vouched for the address (DESIGN invariant 8): no email at all, transactional
   included, with reason "unverified_address". A public browser key can name any
   address; only a trusted source (server key, confirmed sign-up, import with
   consent, staff) makes it one Nextstep writes to (crm.services.contacts_vouch).
1b. A pause the contact chose in the preference centre defers marketing until it ends.
2. Consent for the sequence's topic, from the ledger (marketing only). The latest
   entry decides: withdrawn → deny. With no entry at all, only opt-out countries
   (OPT_OUT_COUNTRIES, CAN-SPAM) allow; unknown region → deny: explicit consent needed.
3. Frequency cap: at most SEQUENCES_FREQUENCY_CAP marketing emails per contact per
   7 days (transactional exempt); the step says whether to defer or skip.
3b. Low-engagement throttle: a contact with no engagement for SEQUENCES_LOW_ENGAGEMENT_DAYS
   gets at most one marketing email per SEQUENCES_LOW_ENGAGEMENT_INTERVAL_DAYS (defer/skip
   as for the cap), so sequences stop hammering people who stopped reading.
4. Quiet hours in the contact's time zone (SEQUENCES_QUIET_HOURS, default 21:00-08:00):
   marketing is deferred to the end of the quiet hours, local time.
5. Holdout (last, so only someone who would have been mailed is held out): a contact in
   the sequence's holdout group (Sequence.holdout_percent, a stable hash of sequence key
   and contact id) gets none of its marketing emails: reason "holdout", and the
   enrollment walks on as if sent (docs/reporting.md, "Incremental").

The rules are CHECKS, a list of named checks, each in two forms: `single` asks the
database for one contact (`evaluate`, for single callers), `batch` reads facts that a
GateBatch fetched once for a whole batch of contacts with set-based queries
(`evaluate_in_batch`, for the batched send path). Both forms give the same Decision
(tests/sequences/test_gate_batch.py proves it on varied data). A new check needs only
its `single` form to be correct everywhere; the batch path then calls it per
enrollment until it gets a `batch` form.
"""

import datetime
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from crm.emails import email_hash
from crm.models import ContactPreference, Suppression
from crm.selectors import (
    consent_is_granted,
    consent_states,
    contact_paused_until,
    suppression_active_q,
    suppressions_active_for,
)
from sequences.reports.holdout import is_held_out

OPT_OUT_COUNTRIES = frozenset({"US"})
CAP_WINDOW = datetime.timedelta(days=7)
#: While marketing is paused by the circuit breaker, held emails look again this often.
BREAKER_RECHECK = datetime.timedelta(hours=1)
DEFAULT_LOW_ENGAGEMENT_DAYS = 90
DEFAULT_LOW_ENGAGEMENT_INTERVAL_DAYS = 14
TRANSACTIONAL_BLOCKING = frozenset(
    {
        Suppression.Reason.HARD_BOUNCE,
        Suppression.Reason.COMPLAINT,
        Suppression.Reason.ERASED,
        Suppression.Reason.SOFT_BOUNCE,
        Suppression.Reason.MANUAL,
    }
)


@dataclass(frozen=True)
class Decision:
    """Allow, or deny with a reason; `defer_until` set means "try again then" instead of skip."""

    allowed: bool
    reason: str = ""
    defer_until: datetime.datetime | None = None


ALLOW = Decision(allowed=True)


def evaluate(contact, sequence, step: dict, now: datetime.datetime) -> Decision:
    """Decide whether this step's email may go to the contact now; any error denies."""
    try:
        for check in CHECKS:
            decision = check.single(contact, sequence, step, now)
            if not decision.allowed:
                return decision
        return ALLOW
    except Exception as exc:
        return Decision(False, f"gate_error:{type(exc).__name__}")


def _suppression(contact, sequence, step, now) -> Decision:
    if not contact.email:
        return Decision(False, "no_email")
    reasons = set(suppressions_active_for(email=contact.email).values_list("reason", flat=True))
    return _suppression_decision(reasons, sequence)


def _suppression_decision(reasons: set[str], sequence) -> Decision:
    if Suppression.Reason.ERASED in reasons:  # named on its own: it outranks every other reason
        return Decision(False, "erased")
    if not sequence.is_transactional and reasons:
        return Decision(False, f"suppressed:{sorted(reasons)[0]}")
    blocking = reasons & TRANSACTIONAL_BLOCKING
    if blocking:
        return Decision(False, f"suppressed:{sorted(blocking)[0]}")
    return ALLOW


def _vouched(contact, sequence, step, now) -> Decision:
    # Kept apart from the other rules on purpose: it is the trust boundary of the API.
    if contact.vouched_at is None:
        return Decision(False, "unverified_address")
    return ALLOW


def _paused_by_contact(contact, sequence, step, now) -> Decision:
    # The preference centre's pause holds marketing until it ends, then the step goes on.
    if sequence.is_transactional:
        return ALLOW
    paused_until = contact_paused_until(contact=contact)
    if paused_until is None:
        return ALLOW
    return Decision(False, "paused_by_contact", defer_until=paused_until)


def _circuit_breaker(contact, sequence, step, now) -> Decision:
    """Marketing waits while the deliverability circuit breaker is open (deliverability.md)."""
    from sequences.esp.breaker import marketing_paused

    if sequence.is_transactional or not marketing_paused():
        return ALLOW
    return Decision(False, "circuit_breaker_open", defer_until=now + BREAKER_RECHECK)


def _consent(contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    topic = sequence.topic
    if topic is None:
        return Decision(False, "no_topic")
    if not topic.is_active:
        return Decision(False, "topic_inactive")
    # The current-consent projection: one index lookup, written with each ledger append.
    return _consent_decision(consent_is_granted(contact=contact, topic=topic), contact)


def _consent_decision(granted: bool | None, contact) -> Decision:
    if granted is not None:
        return ALLOW if granted else Decision(False, "consent_withdrawn")
    if not contact.country:
        return Decision(False, "no_consent_unknown_region")
    if contact.country in OPT_OUT_COUNTRIES:
        return ALLOW
    return Decision(False, "no_consent")


def _frequency_cap(contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    from sequences.selectors import marketing_sends_since

    cap = settings.SEQUENCES_FREQUENCY_CAP
    recent = marketing_sends_since(contact=contact, since=now - CAP_WINDOW)
    if len(recent) < cap:
        return ALLOW
    if step.get("config", {}).get("on_frequency_cap", "defer") == "skip":
        return Decision(False, "frequency_cap")
    # The oldest counted send leaving the window frees a slot.
    return Decision(False, "frequency_cap", defer_until=recent[0] + CAP_WINDOW)


def _low_engagement(contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    from sequences.selectors import marketing_sends_since

    if not _is_idle(contact, now):
        return ALLOW
    interval = low_engagement_interval()
    recent = marketing_sends_since(contact=contact, since=now - interval)
    if not recent:
        return ALLOW
    if step.get("config", {}).get("on_frequency_cap", "defer") == "skip":
        return Decision(False, "low_engagement_throttle")
    return Decision(False, "low_engagement_throttle", defer_until=recent[-1] + interval)


def _is_idle(contact, now: datetime.datetime) -> bool:
    idle = datetime.timedelta(days=_setting("LOW_ENGAGEMENT_DAYS", DEFAULT_LOW_ENGAGEMENT_DAYS))
    # Never engaged: idle since the contact was created.
    engaged_at = contact.last_engaged_at or contact.created_at
    return engaged_at is not None and now - engaged_at >= idle


def low_engagement_interval() -> datetime.timedelta:
    """At most one marketing email per this interval to a contact who stopped engaging."""
    return datetime.timedelta(
        days=_setting("LOW_ENGAGEMENT_INTERVAL_DAYS", DEFAULT_LOW_ENGAGEMENT_INTERVAL_DAYS)
    )


def _holdout(contact, sequence, step, now) -> Decision:
    if sequence.is_transactional or not is_held_out(
        sequence_key=sequence.key, contact_id=contact.pk, percent=sequence.holdout_percent
    ):
        return ALLOW
    return Decision(False, "holdout")


def _setting(name: str, default: int) -> int:
    return getattr(settings, f"SEQUENCES_{name}", default)


def _quiet_hours(contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    start, end = quiet_hours()
    local = now.astimezone(contact_zone(contact))
    in_quiet = (
        start <= local.time() or local.time() < end if start > end else start <= local.time() < end
    )
    if not in_quiet:
        return ALLOW
    morning = datetime.datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if morning <= local:
        morning += datetime.timedelta(days=1)
    return Decision(False, "quiet_hours", defer_until=morning.astimezone(datetime.UTC))


def quiet_hours() -> tuple[datetime.time, datetime.time]:
    """The (start, end) of quiet hours from SEQUENCES_QUIET_HOURS, e.g. "21:00-08:00"."""
    text = settings.SEQUENCES_QUIET_HOURS
    start, end = (datetime.time.fromisoformat(part.strip()) for part in text.split("-"))
    return start, end


def contact_zone(contact) -> zoneinfo.ZoneInfo:
    """The contact's time zone, or the site's when unknown."""
    try:
        return zoneinfo.ZoneInfo(contact.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


# --- The checks, and the batch form of the gate ----------------------------------------------


@dataclass(frozen=True)
class Check:
    """One named rule: `single(contact, sequence, step, now)` may query the database;
    `batch(gate_batch, contact, sequence, step, now)` reads GateBatch facts (None: the
    batch path calls `single` per enrollment)."""

    name: str
    single: Callable[..., Decision]
    batch: Callable[..., Decision] | None = None


class GateBatch:
    """What the checks read about a batch of contacts, each fact fetched once for all.

    Facts load lazily (a batch of transactional mail never counts marketing sends), in
    one query each: suppressions by address hash, preference-centre pauses, current
    consent per topic (the consent_states() projection), the circuit breaker, and the
    recent marketing sends of every contact as one GROUP BY. `note_claim` adds an email
    claimed in this batch, so the next decision for the same contact counts it, as it
    would when the two were decided one after another.
    """

    def __init__(self, contacts: Iterable, now: datetime.datetime):
        contacts = list(contacts)
        self.now = now
        self.contact_ids = sorted({contact.pk for contact in contacts})
        self._emails = {contact.email for contact in contacts if contact.email}
        self._facts: dict = {}

    def _fact(self, key, load: Callable):
        if key not in self._facts:
            self._facts[key] = load()
        return self._facts[key]

    def suppression_reasons(self, contact) -> set[str]:
        by_hash = self._fact("suppressions", self._load_suppressions)
        return by_hash.get(email_hash(contact.email), set())

    def _load_suppressions(self) -> dict[str, set[str]]:
        hashes = {email_hash(email) for email in self._emails}
        rows = Suppression.objects.filter(suppression_active_q(), email_hash__in=hashes)
        by_hash: dict[str, set[str]] = {}
        for digest, reason in rows.values_list("email_hash", "reason"):
            by_hash.setdefault(digest, set()).add(reason)
        return by_hash

    def paused_until(self, contact) -> datetime.datetime | None:
        return self._fact("paused", self._load_paused).get(contact.pk)

    def _load_paused(self) -> dict[int, datetime.datetime]:
        rows = ContactPreference.objects.filter(
            contact_id__in=self.contact_ids, paused_until__gt=timezone.now()
        )
        return dict(rows.values_list("contact_id", "paused_until"))

    def consent(self, contact, topic) -> bool | None:
        states = self._fact(
            ("consent", topic.pk),
            lambda: consent_states(contact_ids=self.contact_ids, topic=topic),
        )
        return states.get(contact.pk)

    def marketing_paused(self) -> bool:
        from sequences.esp.breaker import marketing_paused

        return self._fact("breaker", marketing_paused)

    def sends(self, contact) -> list:
        """[sends in the cap window, the oldest of them, the latest in the throttle window]."""
        return self._fact("sends", self._load_sends).get(contact.pk, [0, None, None])

    def _windows(self) -> tuple[datetime.datetime, datetime.datetime]:
        return self.now - CAP_WINDOW, self.now - low_engagement_interval()

    def _load_sends(self) -> dict[int, list]:
        from sequences.models import OutboundMessage
        from sequences.selectors import COUNTED_STATES

        cap_since, throttle_since = self._windows()
        in_cap, in_throttle = Q(created_at__gte=cap_since), Q(created_at__gte=throttle_since)
        rows = (
            OutboundMessage.objects.filter(
                contact_id__in=self.contact_ids,
                is_marketing=True,
                state__in=COUNTED_STATES,
                created_at__gte=min(cap_since, throttle_since),
            )
            .values("contact_id")
            .annotate(
                count=Count("pk", filter=in_cap),
                oldest=Min("created_at", filter=in_cap),
                latest=Max("created_at", filter=in_throttle),
            )
            .order_by()
        )
        return {row["contact_id"]: [row["count"], row["oldest"], row["latest"]] for row in rows}

    def note_claim(self, contact, sequence, at: datetime.datetime) -> None:
        """A marketing email to `contact` was just claimed (created at `at`) in this batch."""
        if sequence.is_transactional:
            return
        sends = self._fact("sends", self._load_sends)
        entry = sends.setdefault(contact.pk, [0, None, None])
        cap_since, throttle_since = self._windows()
        if at >= cap_since:
            entry[0] += 1
            entry[1] = at if entry[1] is None else min(entry[1], at)
        if at >= throttle_since:
            entry[2] = at if entry[2] is None else max(entry[2], at)


def evaluate_in_batch(batch: GateBatch, contact, sequence, step: dict) -> Decision:
    """`evaluate` for one member of the batch, from the batch's facts; any error denies."""
    now = batch.now
    try:
        for check in CHECKS:
            if check.batch is None:
                decision = check.single(contact, sequence, step, now)
            else:
                decision = check.batch(batch, contact, sequence, step, now)
            if not decision.allowed:
                return decision
        return ALLOW
    except Exception as exc:
        return Decision(False, f"gate_error:{type(exc).__name__}")


def evaluate_many(items: Iterable[tuple], now: datetime.datetime) -> list[Decision]:
    """Decide many (contact, sequence, step) at once, none counting the others' claims."""
    items = list(items)
    batch = GateBatch((contact for contact, _sequence, _step in items), now)
    return [evaluate_in_batch(batch, contact, seq, step) for contact, seq, step in items]


def _suppression_batch(batch, contact, sequence, step, now) -> Decision:
    if not contact.email:
        return Decision(False, "no_email")
    return _suppression_decision(batch.suppression_reasons(contact), sequence)


def _circuit_breaker_batch(batch, contact, sequence, step, now) -> Decision:
    if sequence.is_transactional or not batch.marketing_paused():
        return ALLOW
    return Decision(False, "circuit_breaker_open", defer_until=now + BREAKER_RECHECK)


def _paused_by_contact_batch(batch, contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    paused_until = batch.paused_until(contact)
    if paused_until is None:
        return ALLOW
    return Decision(False, "paused_by_contact", defer_until=paused_until)


def _consent_batch(batch, contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    topic = sequence.topic
    if topic is None:
        return Decision(False, "no_topic")
    if not topic.is_active:
        return Decision(False, "topic_inactive")
    return _consent_decision(batch.consent(contact, topic), contact)


def _frequency_cap_batch(batch, contact, sequence, step, now) -> Decision:
    if sequence.is_transactional:
        return ALLOW
    count, oldest, _latest = batch.sends(contact)
    if count < settings.SEQUENCES_FREQUENCY_CAP:
        return ALLOW
    if step.get("config", {}).get("on_frequency_cap", "defer") == "skip":
        return Decision(False, "frequency_cap")
    return Decision(False, "frequency_cap", defer_until=oldest + CAP_WINDOW)


def _low_engagement_batch(batch, contact, sequence, step, now) -> Decision:
    if sequence.is_transactional or not _is_idle(contact, now):
        return ALLOW
    _count, _oldest, latest = batch.sends(contact)
    if latest is None:
        return ALLOW
    if step.get("config", {}).get("on_frequency_cap", "defer") == "skip":
        return Decision(False, "low_engagement_throttle")
    defer_until = latest + low_engagement_interval()
    return Decision(False, "low_engagement_throttle", defer_until=defer_until)


def _no_query(check: Callable) -> Callable:
    """The batch form of a check that reads only the contact and the sequence."""
    return lambda batch, contact, sequence, step, now: check(contact, sequence, step, now)


#: The rules in the order they are applied; the first refusal decides.
CHECKS: tuple[Check, ...] = (
    Check("suppression", _suppression, _suppression_batch),
    Check("vouched", _vouched, _no_query(_vouched)),
    Check("circuit_breaker", _circuit_breaker, _circuit_breaker_batch),
    Check("paused_by_contact", _paused_by_contact, _paused_by_contact_batch),
    Check("consent", _consent, _consent_batch),
    Check("frequency_cap", _frequency_cap, _frequency_cap_batch),
    Check("low_engagement", _low_engagement, _low_engagement_batch),
    Check("quiet_hours", _quiet_hours, _no_query(_quiet_hours)),
    Check("holdout", _holdout, _no_query(_holdout)),
)
