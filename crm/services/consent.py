"""The consent ledger: grants and withdrawals are appended, never edited.

Every append also moves the CurrentConsent projection (one row per contact and topic)
that reads use: a database trigger on the ledger INSERT writes it, in the same statement,
so the services here, bulk imports and raw SQL all keep it exact, and a read later in
the same transaction sees the new state. Erasure deletes both (services/privacy.py).
"""

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import Activity, ConsentEntry, ConsentText, ConsentTopic, Contact
from crm.selectors import consent_current
from crm.services.activities import activity_record
from crm.signals import consent_changed


@transaction.atomic
def consent_grant(
    *,
    contact: Contact,
    topic: ConsentTopic,
    method: str,
    source: str,
    consent_text: ConsentText | None = None,
    lawful_basis: str = ConsentEntry.LawfulBasis.CONSENT,
    ip_address: str | None = None,
    user_agent: str = "",
    recorded_by: AbstractBaseUser | None = None,
    occurred_at: datetime.datetime | None = None,
    reaffirmed: bool = False,
) -> ConsentEntry:
    """Append a grant; a no-op when already granted under the same wording.

    `reaffirmed`: the person just said yes again (confirmed a double opt-in, saved the
    preference centre), and that fresh proof is needed, e.g. to lift their sunset
    suppression: append it even when the latest entry already grants.
    """
    if consent_text is not None and consent_text.topic_id != topic.pk:
        raise ValidationError(
            {"consent_text": f"That wording belongs to another topic, not {topic.key!r}."}
        )
    if lawful_basis == ConsentEntry.LawfulBasis.CONSENT and consent_text is None:
        consent_text = ConsentText.objects.filter(topic=topic).order_by("-version").first()
    current = consent_current(contact=contact, topic=topic)
    if (
        not reaffirmed
        and current is not None
        and current.is_granted
        and current.consent_text_id == (consent_text.pk if consent_text else None)
    ):
        return current
    return _append(
        contact=contact,
        topic=topic,
        is_granted=True,
        method=method,
        source=source,
        consent_text=consent_text,
        lawful_basis=lawful_basis,
        ip_address=ip_address,
        user_agent=user_agent,
        recorded_by=recorded_by,
        occurred_at=occurred_at,
    )


@transaction.atomic
def consent_withdraw(
    *,
    contact: Contact,
    topic: ConsentTopic,
    method: str,
    source: str,
    ip_address: str | None = None,
    user_agent: str = "",
    recorded_by: AbstractBaseUser | None = None,
    occurred_at: datetime.datetime | None = None,
) -> ConsentEntry:
    """Append a withdrawal; a no-op when the latest entry already withdraws.

    A withdrawal with no earlier grant is still recorded: it is the person's
    objection, and it must outrank any later implied or imported consent claim.
    """
    current = consent_current(contact=contact, topic=topic)
    if current is not None and not current.is_granted:
        return current
    return _append(
        contact=contact,
        topic=topic,
        is_granted=False,
        method=method,
        source=source,
        consent_text=None,
        lawful_basis=current.lawful_basis if current else ConsentEntry.LawfulBasis.CONSENT,
        ip_address=ip_address,
        user_agent=user_agent,
        recorded_by=recorded_by,
        occurred_at=occurred_at,
    )


@transaction.atomic
def consent_text_publish(*, topic: ConsentTopic, text: str) -> ConsentText:
    """Publish wording for a topic as its next version; unchanged wording returns the latest."""
    text = text.strip()
    if not text:
        raise ValidationError({"text": "The consent wording cannot be empty."})
    latest = ConsentText.objects.filter(topic=topic).order_by("-version").first()
    if latest is not None and latest.text == text:
        return latest
    return ConsentText.objects.create(
        topic=topic, version=(latest.version + 1) if latest else 1, text=text
    )


def _append(*, contact: Contact, topic: ConsentTopic, is_granted: bool, **details) -> ConsentEntry:
    occurred_at = details.pop("occurred_at") or timezone.now()
    entry = ConsentEntry(
        contact=contact,
        topic=topic,
        is_granted=is_granted,
        email_at_time=contact.email,
        occurred_at=occurred_at,
        **details,
    )
    entry.full_clean(exclude=["contact", "topic", "consent_text", "recorded_by"])
    entry.save()
    kind = Activity.Kind.CONSENT_GRANTED if is_granted else Activity.Kind.CONSENT_WITHDRAWN
    activity_record(
        kind=kind,
        source="crm",
        contact=contact,
        occurred_at=occurred_at,
        properties={"topic": topic.key, "method": entry.method, "entry_id": entry.pk},
    )
    consent_changed.send(sender=ConsentEntry, contact=contact, entry=entry)
    return entry
