"""Who did it: turning emails, external ids and anonymous visitor ids into contacts.

Only an email or an external id identifies a person. An anonymous id is a browser
cookie and an IP address is shared by whole offices, so neither ever creates a
contact; an anonymous id only points at a contact once `contact_identify` tied it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.emails import normalise_email
from crm.models import Activity, Contact
from crm.services.activities import activity_record
from crm.services.contacts import FIRST_TOUCH_FIELDS, contact_update, contact_upsert
from crm.signals import activities_attached

#: The activity that ties an anonymous id to a contact; later anonymous events follow it.
IDENTIFIED_KIND = "identified"

#: Profile fields identify may set. Never consent, owner, lifecycle stage or score.
TRAIT_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "country",
    "time_zone",
    "language",
)


@dataclass(frozen=True)
class PersonRef:
    """Who one event is about, as the sender knows them."""

    email: str = ""
    external_id: str = ""
    anonymous_id: str = ""
    #: entry_point and utm_* for a contact this creates (first-touch attribution).
    first_touch: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedPeople:
    """`contact_ids[i]` is the contact for person i (None: still anonymous).

    `errors[i]` says per field why person i could not be resolved.
    """

    contact_ids: tuple[int | None, ...]
    errors: dict[int, dict[str, list[str]]]
    created_contact_ids: frozenset[int]


@dataclass(frozen=True)
class IdentifyResult:
    contact: Contact
    created: bool
    #: Earlier anonymous activities that now belong to the contact.
    merged_activity_count: int
    changed_fields: tuple[str, ...]


@transaction.atomic
def contacts_resolve_for_events(*, people: Sequence[PersonRef]) -> ResolvedPeople:
    """Find or create the contact of every person in a few queries, whatever their number.

    Unknown emails become contacts (source "event", first touch from the first
    event naming them); consent is never granted here. Anonymous ids resolve to
    the contact they were last identified as, or stay anonymous.
    """
    people = [_normalised(person) for person in people]
    by_email, by_external_id = _known_contacts(people)
    created = _create_missing(people, by_email, by_external_id)
    by_anonymous_id = _identified_anonymous_ids(
        person.anonymous_id for person in people if not (person.email or person.external_id)
    )
    contact_ids: list[int | None] = []
    errors: dict[int, dict[str, list[str]]] = {}
    for index, person in enumerate(people):
        contact_id, problem = _pick(person, by_email, by_external_id, by_anonymous_id)
        contact_ids.append(contact_id)
        if problem:
            errors[index] = problem
    return ResolvedPeople(
        contact_ids=tuple(contact_ids), errors=errors, created_contact_ids=frozenset(created)
    )


@transaction.atomic
def contact_identify(
    *,
    email: str = "",
    external_id: str = "",
    anonymous_id: str = "",
    traits: dict | None = None,
    properties: dict | None = None,
    first_touch: dict[str, str] | None = None,
    source: str,
    may_overwrite: bool = True,
) -> IdentifyResult:
    """Tie an anonymous visitor to a contact (found or created) and update their traits.

    The visitor's earlier anonymous activities become the contact's in one UPDATE,
    and `activities_attached` tells receivers (scoring) about them.
    With `may_overwrite=False` (browser keys, which anyone can read from a web page)
    traits only fill empty fields, and an existing contact's email and external id
    never change.
    """
    email = normalise_email(email)
    contact = _identified_contact(email=email, external_id=external_id)
    created = contact is None
    if created:
        contact = _create_identified(email, external_id, first_touch or {})
    changed = _update_identity(contact, email, external_id, may_overwrite)
    changed += _update_traits(contact, traits or {}, properties or {}, may_overwrite)
    merged = _merge_anonymous_history(contact, anonymous_id, source) if anonymous_id else 0
    return IdentifyResult(
        contact=contact,
        created=created,
        merged_activity_count=merged,
        changed_fields=tuple(changed),
    )


# --- Resolving a batch ----------------------------------------------------------------------


def _normalised(person: PersonRef) -> PersonRef:
    return PersonRef(
        email=normalise_email(person.email),
        external_id=person.external_id.strip(),
        anonymous_id=person.anonymous_id.strip(),
        first_touch=person.first_touch,
    )


def _known_contacts(people: list[PersonRef]) -> tuple[dict[str, int], dict[str, int]]:
    """Map emails and external ids to contact ids, in one query."""
    emails = {person.email for person in people if person.email}
    external_ids = {person.external_id for person in people if person.external_id}
    if not emails and not external_ids:
        return {}, {}
    rows = Contact.objects.filter(
        Q(email__in=emails) | Q(external_id__in=external_ids)
    ).values_list("pk", "email", "external_id")
    by_email: dict[str, int] = {}
    by_external_id: dict[str, int] = {}
    for pk, email, external_id in rows:
        by_email[email] = pk
        if external_id:
            by_external_id[external_id] = pk
    return by_email, by_external_id


def _create_missing(
    people: list[PersonRef], by_email: dict[str, int], by_external_id: dict[str, int]
) -> set[int]:
    """Create contacts for unknown emails, then read them back (ids and any race winners)."""
    new: dict[str, Contact] = {}
    claimed_external_ids = set(by_external_id)
    for person in people:
        if not person.email or person.email in by_email or person.email in new:
            continue
        if person.external_id in by_external_id:
            continue  # a known external id already says who this is
        external_id = "" if person.external_id in claimed_external_ids else person.external_id
        claimed_external_ids.add(external_id)
        new[person.email] = _new_contact(person, external_id)
    if not new:
        return set()
    # ignore_conflicts: a concurrent request may create the same person; theirs wins.
    Contact.objects.bulk_create(new.values(), ignore_conflicts=True)
    rows = Contact.objects.filter(email__in=new).values_list("pk", "email", "external_id")
    created = set()
    for pk, email, external_id in rows:
        by_email[email] = pk
        if external_id:
            by_external_id.setdefault(external_id, pk)
        created.add(pk)
    return created


def _new_contact(person: PersonRef, external_id: str) -> Contact:
    now = timezone.now()
    touch = person.first_touch
    return Contact(
        email=person.email,
        external_id=external_id,
        source=Contact.Source.EVENT,
        entry_point=touch.get("entry_point", "")[:200],
        utm_source=touch.get("utm_source", "")[:200],
        utm_medium=touch.get("utm_medium", "")[:200],
        utm_campaign=touch.get("utm_campaign", "")[:200],
        lifecycle_stage_changed_at=now,
    )


def _identified_anonymous_ids(anonymous_ids) -> dict[str, int]:
    """Map anonymous ids to the contact each was last identified as, in one query."""
    wanted = {anonymous_id for anonymous_id in anonymous_ids if anonymous_id}
    if not wanted:
        return {}
    rows = (
        Activity.objects.filter(
            kind=IDENTIFIED_KIND, anonymous_id__in=wanted, contact__isnull=False
        )
        .order_by("occurred_at", "pk")
        .values_list("anonymous_id", "contact_id")
    )
    return dict(rows)  # ordered oldest first, so the latest identification wins


def _pick(
    person: PersonRef,
    by_email: dict[str, int],
    by_external_id: dict[str, int],
    by_anonymous_id: dict[str, int],
) -> tuple[int | None, dict[str, list[str]]]:
    from_email = by_email.get(person.email) if person.email else None
    from_external_id = by_external_id.get(person.external_id) if person.external_id else None
    if from_email and from_external_id and from_email != from_external_id:
        return None, {
            "external_id": [
                "This external_id belongs to another contact than this email; send one of them."
            ]
        }
    contact_id = from_external_id or from_email
    if contact_id:
        return contact_id, {}
    if person.external_id and not person.email:
        return None, {
            "external_id": [
                f"No contact has external_id {person.external_id!r}; "
                "send their email as well, or identify them first."
            ]
        }
    if person.email:
        return None, {"email": ["The contact for this email could not be created; try again."]}
    return by_anonymous_id.get(person.anonymous_id), {}


# --- Identify -------------------------------------------------------------------------------


def _identified_contact(*, email: str, external_id: str) -> Contact | None:
    if not email and not external_id:
        raise ValidationError(
            {
                "email": "Give an email or an external_id: an anonymous id or an IP address "
                "alone never identifies a person."
            }
        )
    from_external_id = (
        Contact.objects.select_for_update().filter(external_id=external_id).first()
        if external_id
        else None
    )
    from_email = Contact.objects.select_for_update().filter(email=email).first() if email else None
    if from_external_id and from_email and from_external_id.pk != from_email.pk:
        raise ValidationError(
            {"external_id": "This external_id belongs to another contact than this email."}
        )
    return from_external_id or from_email


def _create_identified(email: str, external_id: str, first_touch: dict[str, str]) -> Contact:
    if not email:
        raise ValidationError(
            {"external_id": "No contact has this external_id; send their email to create one."}
        )
    touch = {name: first_touch[name][:200] for name in FIRST_TOUCH_FIELDS if first_touch.get(name)}
    touch.setdefault("source", Contact.Source.API)
    return contact_upsert(email=email, external_id=external_id, **touch).contact


def _update_identity(
    contact: Contact, email: str, external_id: str, may_overwrite: bool
) -> list[str]:
    """Change the email or set a missing external id, as far as the caller may."""
    changes = {}
    if email and email != contact.email:
        if not may_overwrite:
            raise PermissionDenied(
                {"email": "A browser key cannot change an identified contact's email."}
            )
        changes["email"] = email
    # A browser key could tie anyone's email to an id of its choosing; only servers may.
    if external_id and external_id != contact.external_id and may_overwrite:
        if contact.external_id:
            raise ValidationError({"external_id": "This contact already has another external_id."})
        changes["external_id"] = external_id
    if changes:
        contact_update(contact=contact, **changes)
    return list(changes)


def _update_traits(
    contact: Contact, traits: dict, properties: dict, may_overwrite: bool
) -> list[str]:
    unknown = set(traits) - set(TRAIT_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "identify cannot set this field."))
    wanted = {name: value for name, value in traits.items() if value not in (None, "")}
    if not may_overwrite:
        wanted = {name: value for name, value in wanted.items() if not getattr(contact, name)}
        properties = {
            key: value for key, value in properties.items() if key not in contact.properties
        }
    if "country" in wanted:
        wanted["country_source"] = Contact.CountrySource.DECLARED
    if not wanted and not properties:
        return []
    result = contact_upsert(email=contact.email, properties=properties, **wanted)
    _copy_fields(result.contact, contact)
    return list(result.changed_fields)


def _copy_fields(source: Contact, target: Contact) -> None:
    for model_field in source._meta.concrete_fields:
        setattr(target, model_field.attname, getattr(source, model_field.attname))


def _merge_anonymous_history(contact: Contact, anonymous_id: str, source: str) -> int:
    """Give the visitor's anonymous activities to the contact and remember the tie."""
    # Locked so a concurrent identify of the same visitor cannot take the same rows.
    anonymous = list(
        Activity.objects.select_for_update()
        .filter(anonymous_id=anonymous_id, contact__isnull=True)
        .order_by("occurred_at", "pk")
    )
    merged = Activity.objects.filter(pk__in=[activity.pk for activity in anonymous]).update(
        contact=contact
    )
    if anonymous:
        for activity in anonymous:
            activity.contact = contact
        # Scoring missed these while nobody knew who it was: receivers catch up now.
        activities_attached.send(sender=Activity, contact=contact, activities=anonymous)
    # Idempotent per (visitor, contact): identifying on every page load records it once.
    activity_record(
        kind=IDENTIFIED_KIND,
        source=source,
        contact=contact,
        anonymous_id=anonymous_id,
        properties={"merged_activity_count": merged},
        idempotency_key=f"identify:{anonymous_id}:{contact.pk}",
    )
    return merged
