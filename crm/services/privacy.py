"""Privacy requests: export everything about one person, or erase them.

Erasure deletes the contact and everything hanging off it (activities, tasks, notes,
segment memberships, sequences' and scoring's rows cascade; deals stay, detached), and
the apps' erasers (crm.privacy_hooks) remove or anonymise what is kept by address
rather than by contact (sequences: the ESP webhook inbox). The consent ledger is
append-only, so its rows are deleted here through one deliberate path and nowhere
else; the proof that remains is an ErasureRecord (who, when, a keyed hash, row counts)
and an "erased" suppression keyed by the same hash, which keeps the address unmailable
if it ever comes back by import, form or API, in any case or spacing.
"""

import json

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from crm.emails import email_hash
from crm.models import (
    ConsentEntry,
    Contact,
    ContactPreference,
    CurrentConsent,
    ErasureRecord,
    Suppression,
    SuppressionLift,
)
from crm.privacy_hooks import privacy_erasers, privacy_exporters
from crm.services.suppressions import suppression_add

CONSENT_FIELDS = (
    "topic__key",
    "is_granted",
    "email_at_time",
    "lawful_basis",
    "method",
    "source",
    "consent_text__version",
    "consent_text__text",
    "ip_address",
    "user_agent",
    "occurred_at",
)


def contact_export(*, contact: Contact) -> dict:
    """Return one person's data as JSON-ready dicts: profile, consent, activities, deals…"""
    hashed = email_hash(contact.email)
    data = {
        "exported_at": timezone.now(),
        "profile": Contact.objects.filter(pk=contact.pk).values().get(),
        "tags": list(contact.tags.values_list("name", flat=True)),
        "consent_ledger": list(
            ConsentEntry.objects.filter(contact=contact)
            .order_by("occurred_at", "pk")
            .values(*CONSENT_FIELDS)
        ),
        # What the ledger adds up to now, per topic (the projection reads use).
        "current_consent": list(
            CurrentConsent.objects.filter(contact=contact)
            .order_by("topic__key")
            .values("topic__key", "is_granted", "occurred_at")
        ),
        # Every suppression of the address, ended ones too, and every lift of one.
        "suppressions": list(
            Suppression.objects.filter(email_hash=hashed)
            .order_by("created_at", "pk")
            .values("reason", "source", "detail", "created_at", "expires_at")
        ),
        "suppression_lifts": list(
            SuppressionLift.objects.filter(email_hash=hashed)
            .order_by("lifted_at", "pk")
            .values("reason", "suppression_source", "suppressed_at", "via", "note", "lifted_at")
        ),
        "segment_memberships": list(
            contact.segment_memberships.order_by("entered_at", "pk").values(
                "segment__key", "segment__name", "entered_at", "exited_at", "entry_count"
            )
        ),
        "preferences": list(
            ContactPreference.objects.filter(contact=contact).values("paused_at", "paused_until")
        ),
        "activities": list(
            contact.activities.order_by("occurred_at", "pk").values(
                "kind", "occurred_at", "source", "properties"
            )
        ),
        "lifecycle_stage_changes": list(
            contact.stage_changes.order_by("changed_at").values(
                "from_stage_id", "to_stage_id", "source", "reason", "changed_at"
            )
        ),
        "deals": list(
            contact.deals.values(
                "name", "stage__name", "amount", "currency", "closed_at", "created_at"
            )
        ),
        "tasks": list(contact.tasks.values("title", "description", "status", "due_at")),
        "notes": list(contact.notes.values("body", "created_at")),
    }
    for name, exporter in sorted(privacy_exporters().items()):
        data[name] = exporter(contact)
    # Round-trip so callers get plain JSON types (dates as ISO strings, decimals as text).
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


@transaction.atomic
def contact_erase(
    *, contact: Contact, erased_by: AbstractBaseUser | None, requested_via: str
) -> ErasureRecord:
    """Erase the person, keep only a keyed hash that stops us ever mailing them again."""
    hashed = email_hash(contact.email)
    suppression_add(
        email=contact.email,
        reason=Suppression.Reason.ERASED,
        source=f"erasure request ({requested_via})",
        created_by=erased_by,
    )
    # Other suppressions of the address stay in force but forget the address itself.
    Suppression.objects.filter(email_hash=hashed).exclude(email="").update(email="")
    counts = {name: eraser(contact) for name, eraser in sorted(privacy_erasers().items())}
    counts["crm.ConsentEntry"] = _consent_ledger_delete(contact)
    contact_pk = contact.pk
    _, deleted = contact.delete()
    counts.update(deleted)
    return ErasureRecord.objects.create(
        email_hash=hashed,
        contact_pk=contact_pk,
        erased_by=erased_by,
        requested_via=requested_via,
        deleted_counts=counts,
        erased_at=timezone.now(),
    )


def _consent_ledger_delete(contact: Contact) -> int:
    # The one place ledger rows are deleted: the append-only queryset refuses, so this
    # calls the plain QuerySet.delete on purpose. The database trigger refuses UPDATE
    # only, so a deletion needs no trigger change; rewriting history stays impossible.
    # The current-consent projection points at these rows: it goes first, in this same
    # transaction, so the count below is the ledger's alone.
    CurrentConsent.objects.filter(contact=contact).delete()
    deleted, _ = models.QuerySet.delete(ConsentEntry.objects.filter(contact=contact))
    return deleted
