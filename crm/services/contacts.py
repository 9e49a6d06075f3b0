"""Creating and updating contacts."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.emails import normalise_email
from crm.models import Contact, LifecycleStage, Tag

#: Profile fields an upsert may overwrite when given a non-empty value.
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "country",
    "country_source",
    "time_zone",
    "language",
    "external_id",
    "owner",
)
#: First-touch attribution: set when the contact is created, never overwritten.
FIRST_TOUCH_FIELDS = ("source", "entry_point", "utm_source", "utm_medium", "utm_campaign")


@dataclass(frozen=True)
class ContactUpsertResult:
    contact: Contact
    created: bool
    changed_fields: tuple[str, ...]


@transaction.atomic
def contact_upsert(
    *,
    email: str,
    properties: dict | None = None,
    tags: list[str] | None = None,
    lifecycle_stage: str | None = None,
    vouched_by: str = "",
    **fields,
) -> ContactUpsertResult:
    """Create the contact for this email, or update the one that exists.

    Profile fields given non-empty overwrite; `properties` merge key by key; tags
    are added; first-touch fields (source, entry point, UTM) are kept from creation.
    `lifecycle_stage` applies only to a new contact: moving an existing contact is
    lifecycle_stage_change(), which records who and why. Consent is never touched.
    `vouched_by` (a Contact.VouchedBy) is for trusted callers only: it marks the
    address as one Nextstep may email (see contacts_vouch).
    """
    unknown = set(fields) - set(PROFILE_FIELDS) - set(FIRST_TOUCH_FIELDS)
    if unknown:
        raise TypeError(f"contact_upsert() got unknown fields: {', '.join(sorted(unknown))}")
    email = normalise_email(email or "")
    contact = Contact.objects.select_for_update().filter(email=email).first()
    created = contact is None
    if created:
        contact = Contact(email=email)
        if lifecycle_stage:
            contact.lifecycle_stage_id = lifecycle_stage
        contact.lifecycle_stage_changed_at = timezone.now()
        for name in FIRST_TOUCH_FIELDS:
            if fields.get(name):
                setattr(contact, name, fields[name])
    changed = _apply_profile(contact, fields)
    if properties:
        merged = {**contact.properties, **properties}
        if merged != contact.properties:
            contact.properties = merged
            changed.append("properties")
    if vouched_by and contact.vouched_at is None:
        contact.vouched_at, contact.vouched_by = timezone.now(), Contact.VouchedBy(vouched_by)
    _clean(contact)
    contact.save()
    if tags:
        _add_tags(contact, tags)
    return ContactUpsertResult(contact=contact, created=created, changed_fields=tuple(changed))


@transaction.atomic
def contact_update(*, contact: Contact, **fields) -> Contact:
    """Set the given profile fields (empty values clear them) and save."""
    unknown = set(fields) - set(PROFILE_FIELDS) - {"properties", "email"}
    if unknown:
        raise TypeError(f"contact_update() got unknown fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(contact, name, value)
    _clean(contact)
    # Only the given columns: scoring may be updating lead_score at the same moment.
    contact.save(update_fields=[*fields, "updated_at"])
    return contact


def contacts_vouch(*, contact_ids: Iterable[int], by: str) -> int:
    """Record that a trusted source vouches for these contacts' addresses; returns how many.

    Only trusted paths call this (a server key, a confirmed sign-up, an import with
    consent, staff): the send gate refuses every email to an address nobody vouched
    for, so a public browser key can never make Nextstep write to a stranger.
    The first vouch is kept; later ones change nothing.
    """
    ids = {pk for pk in contact_ids if pk}
    if not ids:
        return 0
    return Contact.objects.filter(pk__in=ids, vouched_at__isnull=True).update(
        vouched_at=timezone.now(), vouched_by=Contact.VouchedBy(by)
    )


def _apply_profile(contact: Contact, fields: dict) -> list[str]:
    changed = []
    for name in PROFILE_FIELDS:
        value = fields.get(name)
        if value in (None, ""):
            continue
        attribute = f"{name}_id" if name in ("company", "owner") else name
        new = value.pk if name in ("company", "owner") else value
        if getattr(contact, attribute) != new:
            setattr(contact, name, value)
            changed.append(name)
    return changed


def _clean(contact: Contact) -> None:
    """Validate fields with messages a person can act on; the unique email is checked too."""
    if not contact.lifecycle_stage_id or not _stage_exists(contact.lifecycle_stage_id):
        raise ValidationError(
            {"lifecycle_stage": f"There is no lifecycle stage {contact.lifecycle_stage_id!r}."}
        )
    contact.full_clean(exclude=["lifecycle_stage", "company", "owner"])


def _stage_exists(key: str) -> bool:
    return LifecycleStage.objects.filter(key=key).exists()


def _add_tags(contact: Contact, names: list[str]) -> None:
    wanted = {name.strip().lower() for name in names if name.strip()}
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=wanted)}
    missing = [Tag(name=name) for name in wanted - existing.keys()]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    contact.tags.add(*Tag.objects.filter(name__in=wanted))
