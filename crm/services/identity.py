"""Who did it: turning emails, external ids and anonymous visitor ids into contacts.

Only an email or an external id identifies a person. An anonymous id is a browser
cookie and an IP address is shared by whole offices, so neither ever creates a
contact; an anonymous id only points at a contact once `contact_identify` tied it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.emails import normalise_email
from crm.models import Activity, Contact
from crm.services.activities import activity_record
from crm.services.contacts import (
    FIRST_TOUCH_FIELDS,
    contact_update,
    contact_upsert,
    contacts_vouch,
)
from crm.set_inserts import model_new, rows_insert
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
    #: Contacts found by the email or external id the sender gave (not by anonymous id).
    named_contact_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class IdentifyResult:
    contact: Contact
    created: bool
    #: Earlier anonymous activities that now belong to the contact.
    merged_activity_count: int
    changed_fields: tuple[str, ...]


@transaction.atomic
def contacts_resolve_for_events(
    *, people: Sequence[PersonRef], trusted: bool = True
) -> ResolvedPeople:
    """Find or create the contact of every person in a few queries, whatever their number.

    Trusted senders (server keys): unknown emails become contacts (source "event",
    first touch from the first event naming them); consent is never granted here.
    Untrusted senders (browser keys, readable by anyone) never create a contact and
    never learn whether one exists: a person who is not known, or not unambiguously,
    stays anonymous, and nothing is reported as an error.
    Anonymous ids resolve to the contact they were last identified as, or stay anonymous.
    """
    people = [_normalised(person) for person in people]
    by_email, by_external_id = _known_contacts(people)
    created = _create_missing(people, by_email, by_external_id) if trusted else set()
    contact_ids: list[int | None] = []
    named: set[int] = set()
    errors: dict[int, dict[str, list[str]]] = {}
    for index, person in enumerate(people):
        contact_id, problem = _pick(person, by_email, by_external_id)
        if contact_id:
            named.add(contact_id)
        if problem and trusted:
            errors[index] = problem
        contact_ids.append(contact_id)
    # An event whose person is not known by email or external id follows its visitor id.
    by_anonymous_id = _identified_anonymous_ids(
        person.anonymous_id
        for person, contact_id in zip(people, contact_ids, strict=True)
        if contact_id is None
    )
    contact_ids = [
        contact_id
        if contact_id or index in errors
        else by_anonymous_id.get(people[index].anonymous_id)
        for index, contact_id in enumerate(contact_ids)
    ]
    return ResolvedPeople(
        contact_ids=tuple(contact_ids),
        errors=errors,
        created_contact_ids=frozenset(created),
        named_contact_ids=frozenset(named),
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
    vouched_by: str = "",
) -> IdentifyResult:
    """Tie an anonymous visitor to a contact (found or created) and update their traits.

    For trusted callers (server keys): an untrusted one uses visitor_identify.
    The visitor's earlier anonymous activities become the contact's in one UPDATE,
    and `activities_attached` tells receivers (scoring) about them. `vouched_by`
    vouches for the address (contacts_vouch).
    """
    email = normalise_email(email)
    contact = _identified_contact(email=email, external_id=external_id)
    created = contact is None
    if created:
        contact = _create_identified(email, external_id, first_touch or {})
    changed = _update_identity(contact, email, external_id)
    changed += _update_traits(contact, traits or {}, properties or {})
    merged = _merge_anonymous_history(contact, anonymous_id, source) if anonymous_id else 0
    if vouched_by:
        contacts_vouch(contact_ids=[contact.pk], by=vouched_by)
    return IdentifyResult(
        contact=contact,
        created=created,
        merged_activity_count=merged,
        changed_fields=tuple(changed),
    )


@transaction.atomic
def visitor_identify(
    *, email: str = "", external_id: str = "", anonymous_id: str = "", source: str
):
    """Tie a visitor to the contact an untrusted sender (a browser key) names, if one exists.

    A browser key is readable by anyone, so what it says is a claim, not a fact: it
    never creates a contact, never writes a profile field, never changes an email or
    external id, and its caller learns nothing (this returns None whatever exists).
    A visitor named unambiguously after a known contact has their anonymous history
    attached to that contact; anyone else stays anonymous until a trusted source
    identifies them.
    """
    email, external_id = normalise_email(email), external_id.strip()
    if not anonymous_id or not (email or external_id):
        return
    by_email, by_external_id = _known_contacts([PersonRef(email=email, external_id=external_id)])
    contact_id, problem = _pick(
        PersonRef(email=email, external_id=external_id), by_email, by_external_id
    )
    if contact_id is None or problem:
        return
    _merge_anonymous_history(Contact.objects.get(pk=contact_id), anonymous_id, source)


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
    # rows_insert, not bulk_create: its per-value compiling was most of this step.
    rows_insert(Contact, list(new.values()), ignore_conflicts=True)
    rows = Contact.objects.filter(email__in=new).values_list("pk", "email", "external_id")
    created = set()
    for pk, email, external_id in rows:
        by_email[email] = pk
        if external_id:
            by_external_id.setdefault(external_id, pk)
        created.add(pk)
    return created


_contact_new = model_new(Contact)  # Contact() without Model.__init__'s per-call cost


def _new_contact(person: PersonRef, external_id: str) -> Contact:
    now = timezone.now()
    touch = person.first_touch
    return _contact_new(
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
    person: PersonRef, by_email: dict[str, int], by_external_id: dict[str, int]
) -> tuple[int | None, dict[str, list[str]]]:
    """The contact the email or external id names, or None with why (None, {} if neither)."""
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
    return None, {}


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


def _update_identity(contact: Contact, email: str, external_id: str) -> list[str]:
    """Change the email or set a missing external id."""
    changes = {}
    if email and email != contact.email:
        changes["email"] = email
    if external_id and external_id != contact.external_id:
        if contact.external_id:
            raise ValidationError({"external_id": "This contact already has another external_id."})
        changes["external_id"] = external_id
    if changes:
        contact_update(contact=contact, **changes)
    return list(changes)


def _update_traits(contact: Contact, traits: dict, properties: dict) -> list[str]:
    unknown = set(traits) - set(TRAIT_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "identify cannot set this field."))
    wanted = {name: value for name, value in traits.items() if value not in (None, "")}
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
