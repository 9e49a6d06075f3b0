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
"""

import datetime
import zoneinfo
from dataclasses import dataclass

from django.conf import settings

from crm.models import Suppression
from crm.selectors import consent_is_granted, contact_paused_until, suppressions_active_for
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
        for check in (
            _suppression,
            _vouched,
            _circuit_breaker,
            _paused_by_contact,
            _consent,
            _frequency_cap,
            _low_engagement,
            _quiet_hours,
            _holdout,
        ):
            decision = check(contact, sequence, step, now)
            if not decision.allowed:
                return decision
        return ALLOW
    except Exception as exc:
        return Decision(False, f"gate_error:{type(exc).__name__}")


def _suppression(contact, sequence, step, now) -> Decision:
    if not contact.email:
        return Decision(False, "no_email")
    reasons = set(suppressions_active_for(email=contact.email).values_list("reason", flat=True))
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
    granted = consent_is_granted(contact=contact, topic=topic)
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

    idle = datetime.timedelta(days=_setting("LOW_ENGAGEMENT_DAYS", DEFAULT_LOW_ENGAGEMENT_DAYS))
    # Never engaged: idle since the contact was created.
    engaged_at = contact.last_engaged_at or contact.created_at
    if engaged_at is None or now - engaged_at < idle:
        return ALLOW
    interval = datetime.timedelta(
        days=_setting("LOW_ENGAGEMENT_INTERVAL_DAYS", DEFAULT_LOW_ENGAGEMENT_INTERVAL_DAYS)
    )
    recent = marketing_sends_since(contact=contact, since=now - interval)
    if not recent:
        return ALLOW
    if step.get("config", {}).get("on_frequency_cap", "defer") == "skip":
        return Decision(False, "low_engagement_throttle")
    return Decision(False, "low_engagement_throttle", defer_until=recent[-1] + interval)


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
