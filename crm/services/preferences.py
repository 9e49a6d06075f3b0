"""What the public pages change: one-click unsubscribe, the preference centre, double opt-in.

Every consent change goes through consent_grant / consent_withdraw, so the ledger
records the method, the page as source, and the visitor's IP and user agent.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from crm.emails import normalise_email
from crm.links import OptInRequest, opt_in_confirm_url
from crm.models import (
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    ContactPreference,
    Suppression,
)
from crm.selectors import suppressions_active_for
from crm.services.consent import consent_grant, consent_withdraw
from crm.services.contacts import contact_upsert
from crm.services.mail import SystemEmailFailed, SystemEmailKind, system_email_send
from crm.services.suppressions import (
    LIFTED_BY_OWN_CONSENT,
    suppression_add,
    suppressions_lift_by_consent,
)

PREFERENCE_CENTRE_SOURCE = "preference centre"
ONE_CLICK_SOURCE = "one-click unsubscribe"
SIGN_UP_SOURCE = "sign-up form"
PAUSE_DAYS = 30
#: Addresses whose sign-up confirmation is refused: they must never get mail from us. (The
#: request email itself is refused by the system email path: crm.services.mail.)
NEVER_MAIL = frozenset(
    {
        Suppression.Reason.ERASED,
        Suppression.Reason.COMPLAINT,
        Suppression.Reason.HARD_BOUNCE,
        Suppression.Reason.MANUAL,
    }
)


@dataclass(frozen=True)
class Visitor:
    """Who acted on a public page, for the ledger row."""

    ip_address: str | None = None
    user_agent: str = ""


@dataclass(frozen=True)
class TopicChoice:
    topic: ConsentTopic
    is_granted: bool


@transaction.atomic
def unsubscribe_one_click(*, contact: Contact, topic_key: str, visitor: Visitor) -> None:
    """Withdraw the email's topic, or all marketing per UNSUBSCRIBE_SCOPE; repeats are no-ops."""
    topic = ConsentTopic.objects.filter(key=topic_key).first() if topic_key else None
    if topic is not None and settings.UNSUBSCRIBE_SCOPE == "topic":
        _withdraw(contact, topic, ConsentEntry.Method.ONE_CLICK, ONE_CLICK_SOURCE, visitor)
        return
    unsubscribe_all(
        contact=contact,
        method=ConsentEntry.Method.ONE_CLICK,
        source=ONE_CLICK_SOURCE,
        visitor=visitor,
    )


@transaction.atomic
def unsubscribe_all(*, contact: Contact, method: str, source: str, visitor: Visitor) -> None:
    """Withdraw every topic and suppress the address from all marketing."""
    for topic in ConsentTopic.objects.order_by("pk"):
        _withdraw(contact, topic, method, source, visitor)
    suppression_add(email=contact.email, reason=Suppression.Reason.UNSUBSCRIBED, source=source)


def preference_choices(*, contact: Contact) -> list[TopicChoice]:
    """Every active topic with whether the contact currently receives it."""
    latest = {}
    for entry in ConsentEntry.objects.filter(contact=contact).order_by("occurred_at", "pk"):
        latest[entry.topic_id] = entry.is_granted
    topics = ConsentTopic.objects.filter(is_active=True).order_by("name")
    return [TopicChoice(topic=topic, is_granted=latest.get(topic.pk, False)) for topic in topics]


@transaction.atomic
def preferences_save(
    *, contact: Contact, wanted_keys: set[str], pause: bool, visitor: Visitor
) -> None:
    """Apply the preference centre form: grant ticked topics, withdraw unticked ones, pause."""
    method = ConsentEntry.Method.PREFERENCE_CENTRE
    # Saying yes again here is fresh consent that lifts an unsubscribe or the sunset, so
    # it is recorded even for topics already granted: the lift cites that entry.
    liftable = _has_liftable_suppression(contact.email)
    granted = []
    for choice in preference_choices(contact=contact):
        wanted = choice.topic.key in wanted_keys
        if wanted and (liftable or not choice.is_granted):
            granted.append(
                _grant(contact, choice.topic, method, PREFERENCE_CENTRE_SOURCE, visitor, again=True)
            )
        elif choice.is_granted and not wanted:
            _withdraw(contact, choice.topic, method, PREFERENCE_CENTRE_SOURCE, visitor)
    if liftable and granted:
        suppressions_lift_by_consent(entry=granted[-1])
    if pause:
        contact_pause(contact=contact, days=PAUSE_DAYS)


@transaction.atomic
def contact_pause(*, contact: Contact, days: int) -> ContactPreference:
    """Hold all marketing to the contact for `days`; consent itself is unchanged."""
    now = timezone.now()
    preference, _ = ContactPreference.objects.update_or_create(
        contact=contact,
        defaults={"paused_at": now, "paused_until": now + datetime.timedelta(days=days)},
    )
    return preference


def opt_in_request_send(
    *, email: str, topic: ConsentTopic, first_name: str = "", time_zone: str = ""
) -> bool:
    """Mail a confirmation link for a sign-up; nothing is stored until it is confirmed.

    Returns whether a mail went out. The caller answers the same either way, so the
    page never tells whether an address is known or suppressed. The system email path
    refuses suppressed addresses (NEVER_MAIL and more) and records the refusal.
    """
    text = ConsentText.objects.filter(topic=topic).order_by("-version").first()
    request = OptInRequest(
        email=email,
        topic_key=topic.key,
        consent_text_id=text.pk if text else None,
        first_name=first_name,
        time_zone=time_zone,
    )
    context = {"topic": topic, "consent_text": text, "confirm_url": opt_in_confirm_url(request)}
    try:
        result = system_email_send(
            to=email,
            subject=f"Please confirm your subscription: {topic.name}",
            body=render_to_string("public/emails/confirm_subscription.txt", context),
            kind=SystemEmailKind.OPT_IN_CONFIRMATION,
            contact=Contact.objects.filter(email=normalise_email(email)).first(),
            metadata={"topic": topic.key},
        )
    except SystemEmailFailed:
        # The ledger row has the reason. The visitor sees the usual page, which asks them
        # to check their inbox; they can sign up again.
        return False
    return result.is_sent


@transaction.atomic
def opt_in_confirm(
    *, request: OptInRequest, visitor: Visitor, time_zone: str = ""
) -> ConsentEntry | None:
    """Create or find the contact and grant consent with the wording they were shown.

    `time_zone` (or the one inferred at sign-up) fills the contact's time zone only when
    it has none, so quiet hours follow the person's clock instead of UTC.
    """
    topic = ConsentTopic.objects.filter(key=request.topic_key, is_active=True).first()
    if topic is None:
        return None
    if suppressions_active_for(email=request.email).filter(reason__in=NEVER_MAIL).exists():
        return None
    contact = contact_upsert(
        email=request.email,
        first_name=request.first_name,
        source=Contact.Source.FORM,
        entry_point=SIGN_UP_SOURCE,
        # The person proved the address is theirs by following the link we mailed.
        vouched_by=Contact.VouchedBy.SIGN_UP,
    ).contact
    inferred = time_zone or request.time_zone
    if inferred and not contact.time_zone:
        # Conditional: never overwrites a zone someone set meanwhile.
        Contact.objects.filter(pk=contact.pk, time_zone="").update(time_zone=inferred)
        contact.time_zone = inferred
    text = ConsentText.objects.filter(pk=request.consent_text_id, topic=topic).first()
    # A confirmed opt-in is the person's own, proven consent: it lifts their "unsubscribed
    # from all" and the inactivity sunset (only those), citing this very entry.
    liftable = _has_liftable_suppression(contact.email)
    entry = _grant(
        contact,
        topic,
        ConsentEntry.Method.DOUBLE_OPT_IN,
        SIGN_UP_SOURCE,
        visitor,
        text=text,
        again=liftable,
    )
    if liftable:
        suppressions_lift_by_consent(entry=entry)
    return entry


def _grant(contact, topic, method, source, visitor, text=None, again=False) -> ConsentEntry:
    return consent_grant(
        contact=contact,
        topic=topic,
        method=method,
        source=source,
        consent_text=text,
        ip_address=visitor.ip_address,
        user_agent=visitor.user_agent[:500],
        reaffirmed=again,
    )


def _withdraw(contact, topic, method, source, visitor) -> ConsentEntry:
    return consent_withdraw(
        contact=contact,
        topic=topic,
        method=method,
        source=source,
        ip_address=visitor.ip_address,
        user_agent=visitor.user_agent[:500],
    )


def _has_liftable_suppression(email: str) -> bool:
    return suppressions_active_for(email=email).filter(reason__in=LIFTED_BY_OWN_CONSENT).exists()
