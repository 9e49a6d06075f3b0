"""Importing many contacts at once: set-based, a fixed number of queries per chunk of rows.

The rules are contact_upsert()'s and company_upsert()'s (email matched trimmed and
case-insensitively, non-empty values overwrite, tags add, properties merge, first-touch
attribution and the lifecycle stage only on creation, companies found by domain or else
by exact name), but a chunk of rows costs a handful of queries instead of ~30 per row:
every row is validated in Python first, then one query loads the chunk's existing
contacts, one their companies, one their tags, one their consent, and the writes are
bulk INSERTs and UPDATEs. A bad row is reported with its reasons and left out; the
others are imported. Rows are applied in file order, so a later row for the same email
sees what an earlier one did.

Consent is granted only for the topic the person importing stated; a withdrawal is never
overridden (the row is named instead). Appending to the ledger with bulk_create is safe:
the database trigger on each INSERTed row keeps the current-consent projection exact.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_unicode_slug
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from crm.emails import normalise_email
from crm.models import (
    Activity,
    Company,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    CurrentConsent,
    LifecycleStage,
    Tag,
)
from crm.services.activities import ActivityInput, activity_record_batch
from crm.set_inserts import field_adapter, model_new, rows_insert
from crm.signals import consent_changed

#: Rows per chunk: each chunk is a fixed number of queries, and its parameters stay well
#: under SQLite's variable limit.
CHUNK_SIZE = 1000
#: Columns copied to the contact as they are (non-empty cells overwrite).
PLAIN_COLUMNS = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "time_zone",
    "language",
    "external_id",
)
#: What a row's outcome snapshots of a contact: the columns an import reads.
SNAPSHOT_COLUMNS = (
    "email",
    *PLAIN_COLUMNS,
    "country",
    "company",
    "company_domain",
    "lifecycle_stage",
    "tags",
    "properties",
)
TAG_SEPARATORS = re.compile(r"[,;]")

NEW, UPDATE, SKIP, INVALID = "new", "update", "skip", "invalid"

# Model(**kwargs) walks every field on each call: ~14 µs a contact, a visible share of a
# large import. model_new() builds the same unsaved rows (neither model has init signals).
_new_contact = model_new(Contact)
_new_consent_entry = model_new(ConsentEntry)


@dataclass(frozen=True)
class ContactImportRow:
    """One row of the file: its number as a spreadsheet shows it, and its trimmed cells."""

    number: int
    values: Mapping[str, str]


@dataclass
class ContactImportOutcome:
    """What happened to one row: new, update, skip (nothing changed) or invalid (`errors`)."""

    number: int
    status: str
    errors: dict[str, list[str]] = field(default_factory=dict)
    contact: Contact | None = None
    before: dict | None = None
    after: dict | None = None


@dataclass
class ContactImportBatchResult:
    outcomes: list[ContactImportOutcome]
    consent_recorded: int = 0
    consent_withdrawn_rows: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


@dataclass
class _Parsed:
    """A row that passed validation, as values ready to apply."""

    number: int
    email: str
    fields: dict
    country: str
    stage: str
    tags: list[str]
    properties: dict
    company_key: tuple[str, str] | None
    company_name: str
    company_domain: str


@transaction.atomic
def contacts_import_batch(
    *,
    rows: Iterable[ContactImportRow],
    source: str,
    consent_topic: ConsentTopic | None = None,
    consent_text: ConsentText | None = None,
    lawful_basis: str = ConsentEntry.LawfulBasis.CONSENT,
    consent_source: str = "",
    recorded_by: AbstractBaseUser | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ContactImportBatchResult:
    """Create or update the contacts in `rows`; return each row's outcome, in order.

    `source` is where the contacts come from (the entry point of new ones). With a
    `consent_topic`, every imported contact is granted it (method import, source
    `consent_source`, `consent_text`, `lawful_basis`, `recorded_by`) unless they
    withdrew it, and their address counts as vouched for (contacts_vouch).
    """
    if consent_topic is not None and consent_text and consent_text.topic_id != consent_topic.pk:
        raise ValidationError({"consent_text": "That wording belongs to another topic."})
    if (
        consent_topic is not None
        and consent_text is None
        and lawful_basis == ConsentEntry.LawfulBasis.CONSENT
    ):
        consent_text = ConsentText.objects.filter(topic=consent_topic).order_by("-version").first()
    importer = _Importer(
        source=source,
        consent_topic=consent_topic,
        consent_text=consent_text,
        lawful_basis=lawful_basis,
        consent_source=consent_source,
        recorded_by=recorded_by,
        stage_keys=set(LifecycleStage.objects.values_list("key", flat=True)),
    )
    result = ContactImportBatchResult(outcomes=[])
    chunk: list[ContactImportRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            importer.import_chunk(chunk, result)
            chunk = []
    if chunk:
        importer.import_chunk(chunk, result)
    return result


class _Importer:
    def __init__(self, *, source, consent_topic, consent_text, lawful_basis, consent_source,
                 recorded_by, stage_keys):  # fmt: skip
        self.source = source
        self.topic = consent_topic
        self.text = consent_text
        self.lawful_basis = lawful_basis
        self.consent_source = consent_source[:300]
        self.recorded_by = recorded_by
        self.stage_keys = stage_keys
        # External ids this import gave out, so two emails in one file cannot share one.
        self.external_ids: dict[str, str] = {}

    # --- one chunk ------------------------------------------------------------------------

    def import_chunk(self, rows: list[ContactImportRow], result: ContactImportBatchResult):
        outcomes: list[ContactImportOutcome] = []
        parsed: list[_Parsed | None] = []
        for row in rows:
            item, errors = self._parse(row)
            parsed.append(item)
            outcomes.append(ContactImportOutcome(number=row.number, status=INVALID, errors=errors))
        valid = [item for item in parsed if item is not None]
        contacts, tags_of, companies = self._load(valid)
        taken_ids = self._external_ids_taken(valid)
        consents = self._consents(contacts)
        now = timezone.now()
        state = _ChunkState()
        for item, outcome in zip(parsed, outcomes, strict=True):
            if item is None:
                continue
            self._apply(item, outcome, contacts, tags_of, companies, taken_ids, consents, state,
                        now, result)  # fmt: skip
        self._write(state, contacts, tags_of, now)
        result.outcomes.extend(outcomes)

    # --- validation (no queries) ----------------------------------------------------------

    def _parse(self, row: ContactImportRow) -> tuple[_Parsed | None, dict[str, list[str]]]:
        values = row.values
        errors: dict[str, list[str]] = {}
        email = normalise_email(values.get("email", "") or "")
        if not email:
            errors["email"] = ["Every row needs an email address."]
        else:
            _clean_field(Contact, "email", email, errors)
        fields_ = {name: values[name] for name in PLAIN_COLUMNS if values.get(name)}
        for name, value in fields_.items():
            _clean_field(Contact, name, value, errors)
        country = (values.get("country") or "").upper()
        if country:
            _clean_field(Contact, "country", country, errors)
        stage = (values.get("lifecycle_stage") or "").lower()
        if stage and stage not in self.stage_keys:
            choices = ", ".join(sorted(self.stage_keys))
            errors["lifecycle_stage"] = [
                f"There is no lifecycle stage {stage!r}; use one of {choices}."
            ]
        tags = _collect(errors, "tags", _parse_tags, values) or []
        properties = _collect(errors, "properties", _parse_properties, values) or {}
        name = values.get("company") or ""
        domain = (values.get("company_domain") or "").lower().removeprefix("www.")
        key = None
        if name or domain:
            company_errors: dict[str, list[str]] = {}
            _clean_field(Company, "name", name or domain, company_errors)
            _clean_field(Company, "domain", domain, company_errors)
            if company_errors:
                errors["company"] = [m for messages in company_errors.values() for m in messages]
            key = ("domain", domain) if domain else ("name", name)
        if errors:
            return None, errors
        return _Parsed(
            number=row.number,
            email=email,
            fields=fields_,
            country=country,
            stage=stage,
            tags=tags,
            properties=properties,
            company_key=key,
            company_name=name,
            company_domain=domain,
        ), errors

    # --- reads: a fixed number of queries per chunk ---------------------------------------

    def _load(self, items: list[_Parsed]):
        emails = {item.email for item in items}
        contacts = {c.email: c for c in Contact.objects.filter(email__in=emails)}
        tags_of: dict[str, set[str]] = {email: set() for email in contacts}
        by_pk = {contact.pk: contact for contact in contacts.values()}
        if by_pk:
            through = Contact.tags.through.objects.filter(contact_id__in=list(by_pk))
            for contact_id, name in through.values_list("contact_id", "tag__name"):
                tags_of[by_pk[contact_id].email].add(name)
        domains = {item.company_domain for item in items if item.company_domain}
        names = {
            item.company_name for item in items if item.company_key and not item.company_domain
        }
        company_ids = {c.company_id for c in contacts.values() if c.company_id}
        companies = _CompanyIndex()
        if domains or names or company_ids:
            found = (
                Company.objects.annotate(domain_lower=Lower("domain"))
                .filter(
                    Q(domain_lower__in=domains)
                    | Q(domain="", name__in=names)
                    | Q(pk__in=company_ids)
                )
                .order_by("pk")
            )
            for company in found:
                companies.add(company)
        for contact in contacts.values():
            if contact.company_id:
                # Cached on the contact, so comparing and the outcome's snapshot cost no query.
                contact.company = companies.by_pk[contact.company_id]
        return contacts, tags_of, companies

    def _external_ids_taken(self, items: list[_Parsed]) -> dict[str, str]:
        wanted = {item.fields["external_id"] for item in items if item.fields.get("external_id")}
        if not wanted:
            return {}
        return dict(
            Contact.objects.filter(external_id__in=wanted).values_list("external_id", "email")
        )

    def _consents(self, contacts: dict[str, Contact]) -> dict[str, tuple[bool, int | None]]:
        """Each known contact's current consent to the topic: (granted, wording id)."""
        if self.topic is None or not contacts:
            return {}
        emails = {contact.pk: email for email, contact in contacts.items()}
        rows = CurrentConsent.objects.filter(contact_id__in=list(emails), topic=self.topic)
        return {
            emails[contact_id]: (granted, text_id)
            for contact_id, granted, text_id in rows.values_list(
                "contact_id", "is_granted", "entry__consent_text_id"
            )
        }

    # --- applying one row in memory -------------------------------------------------------

    def _apply(self, item, outcome, contacts, tags_of, companies, taken_ids, consents, state,
               now, result):  # fmt: skip
        external_id = item.fields.get("external_id")
        if external_id:
            holder = self.external_ids.get(external_id) or taken_ids.get(external_id)
            if holder and holder != item.email:
                outcome.errors = {"external_id": ["Another contact already has this external id."]}
                return
            self.external_ids[external_id] = item.email
        contact = contacts.get(item.email)
        created = contact is None
        if created:
            contact = _new_contact(
                email=item.email,
                lifecycle_stage_id=item.stage or LifecycleStage.Key.NEW_LEAD.value,
                lifecycle_stage_changed_at=now,
                source=Contact.Source.IMPORT,
                entry_point=self.source[:200],
                created_at=now,
                updated_at=now,
            )
            contacts[item.email] = contact
            tags_of[item.email] = set()
            state.new.append(contact)
        before = None if created else _snapshot(contact, tags_of[item.email])
        changed = state.changed.setdefault(item.email, set()) if not created else set()
        for name, value in item.fields.items():
            if getattr(contact, name) != value:
                setattr(contact, name, value)
                changed.add(name)
        if item.country and contact.country != item.country:
            # Re-importing the same country must not downgrade a country the person declared.
            contact.country = item.country
            contact.country_source = Contact.CountrySource.IMPORT
            changed.update(("country", "country_source"))
        if item.company_key:
            company = companies.resolve(item, state)
            if not Contact.company.is_cached(contact) or contact.company is not company:
                contact.company = company
                changed.add("company")
        if item.properties:
            merged = {**contact.properties, **item.properties}
            if merged != contact.properties:
                contact.properties = merged
                changed.add("properties")
        if self.topic is not None and contact.vouched_at is None:
            # Staff stating the consent these people gave vouch for their addresses.
            contact.vouched_at, contact.vouched_by = now, Contact.VouchedBy.IMPORT
            changed.update(("vouched_at", "vouched_by"))
        new_tags = set(item.tags) - tags_of[item.email]
        if new_tags:
            tags_of[item.email] |= new_tags
            state.tags.extend((contact, name) for name in new_tags)
        recorded = self._grant(item, contact, consents, state, now, result)
        after = _snapshot(contact, tags_of[item.email])
        outcome.errors = {}
        outcome.contact = contact
        outcome.before, outcome.after = before, after
        if created:
            outcome.status = NEW
        elif before == after and not recorded:
            outcome.status = SKIP
        else:
            outcome.status = UPDATE

    def _grant(self, item, contact, consents, state, now, result) -> bool:
        """Queue the consent grant, unless withdrawn or already granted under this wording."""
        if self.topic is None:
            return False
        current = consents.get(item.email)
        if current is not None and not current[0]:
            # A withdrawal is the person's objection; only they can reverse it.
            result.consent_withdrawn_rows.append(item.number)
            return False
        text_id = self.text.pk if self.text else None
        if current == (True, text_id):
            return False
        consents[item.email] = (True, text_id)
        state.entries.append(
            _new_consent_entry(
                contact=contact,
                topic=self.topic,
                is_granted=True,
                email_at_time=contact.email,
                lawful_basis=self.lawful_basis,
                method=ConsentEntry.Method.IMPORT,
                source=self.consent_source,
                consent_text=self.text,
                recorded_by=self.recorded_by,
                occurred_at=now,
            )
        )
        result.consent_recorded += 1
        return True

    # --- writes: bulk statements per chunk ------------------------------------------------

    def _write(self, state: "_ChunkState", contacts, tags_of, now) -> None:
        if state.new_companies:
            Company.objects.bulk_create(state.new_companies)
        if state.renamed_companies:
            for company in state.renamed_companies:
                company.updated_at = now
            Company.objects.bulk_update(state.renamed_companies, ["name", "updated_at"])
        if state.new:
            for contact in state.new:
                if Contact.company.is_cached(contact) and contact.company is not None:
                    contact.company = contact.company  # the id of a company created above
            rows_insert(Contact, state.new)
        # Contacts this chunk created were written whole by the INSERT above.
        created = {id(contact) for contact in state.new}
        changed = {
            email: names
            for email, names in state.changed.items()
            if names and id(contacts[email]) not in created
        }
        if changed:
            updates = [contacts[email] for email in changed]
            for contact in updates:
                contact.updated_at = now
            names = sorted(set().union(*changed.values()) | {"updated_at"})
            _update(Contact, updates, names)
        if state.tags:
            self._write_tags(state.tags)
        if state.entries:
            self._write_consent(state.entries)

    def _write_tags(self, pairs: list[tuple[Contact, str]]) -> None:
        names = {name for _, name in pairs}
        Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
        ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        through = Contact.tags.through
        Contact.tags.through.objects.bulk_create(
            [through(contact_id=contact.pk, tag_id=ids[name]) for contact, name in pairs],
            ignore_conflicts=True,
        )

    def _write_consent(self, entries: list[ConsentEntry]) -> None:
        # Kept aside: giving a new contact's entry its id would drop the cached contact.
        contacts = [entry.contact for entry in entries]
        for entry, contact in zip(entries, contacts, strict=True):
            entry.contact = contact  # the id of a contact created above
        rows_insert(ConsentEntry, entries)
        activity_record_batch(
            items=[
                ActivityInput(
                    kind=Activity.Kind.CONSENT_GRANTED,
                    source="crm",
                    contact_id=entry.contact_id,
                    occurred_at=entry.occurred_at,
                    properties={
                        "topic": self.topic.key,
                        "method": entry.method,
                        "entry_id": entry.pk,
                    },
                )
                for entry in entries
            ]
        )
        for contact, entry in zip(contacts, entries, strict=True):
            entry.contact = contact
            consent_changed.send(sender=ConsentEntry, contact=contact, entry=entry)


def _update(model, objects: list, names: list[str]) -> None:
    """Write these columns of these objects: one UPDATE … FROM (VALUES …) per ~1,000 rows.

    bulk_update() builds `CASE WHEN pk=… THEN …` for every object and column (Python
    resolves a Q per object: ~1 ms a row) and the database tests every WHEN for every row;
    a VALUES list joined on the primary key is one hash or index join (crm.set_updates
    does the same for one column). SQLite 3.33+ and PostgreSQL run it.
    """
    if not objects:
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    for obj in objects:  # a company created in this chunk: take its new id
        if "company" in names and Contact.company.is_cached(obj) and obj.company is not None:
            obj.company = obj.company
    adapters = [field_adapter(f) for f in fields]
    quote = connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    aliases = [f"c{index}" for index in range(len(fields))]
    if connection.vendor == "postgresql":
        # VALUES would otherwise guess text for every column.
        types = [meta.pk.db_type(connection), *(f.db_type(connection) for f in fields)]
        placeholder = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
    else:
        placeholder = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    assignments = ", ".join(
        f"{quote(f.column)} = v.{alias}" for f, alias in zip(fields, aliases, strict=True)
    )
    per_statement = max(1, 30000 // (len(fields) + 1))
    with connection.cursor() as cursor:
        for start in range(0, len(objects), per_statement):
            part = objects[start : start + per_statement]
            params = []
            for obj in part:
                params.append(obj.pk)
                for f, adapt in zip(fields, adapters, strict=True):
                    value = getattr(obj, f.attname)
                    params.append(adapt(value) if adapt else value)
            listed = ", ".join([placeholder] * len(part))
            cursor.execute(
                f"WITH v(pk, {', '.join(aliases)}) AS (VALUES {listed}) "
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{pk} = v.pk",
                params,
            )


@dataclass
class _ChunkState:
    new: list[Contact] = field(default_factory=list)
    changed: dict[str, set[str]] = field(default_factory=dict)
    tags: list[tuple[Contact, str]] = field(default_factory=list)
    entries: list[ConsentEntry] = field(default_factory=list)
    new_companies: list[Company] = field(default_factory=list)
    renamed_companies: list[Company] = field(default_factory=list)


class _CompanyIndex:
    """Companies by domain (case-insensitive) and, for those without one, by exact name."""

    def __init__(self):
        self.by_pk: dict[int, Company] = {}
        self.by_key: dict[tuple[str, str], Company] = {}

    def add(self, company: Company) -> None:
        self.by_pk[company.pk] = company
        if company.domain:
            self.by_key.setdefault(("domain", company.domain.lower()), company)
        else:
            # The oldest of same-named companies, as company_upsert() would find first.
            self.by_key.setdefault(("name", company.name), company)

    def resolve(self, item: _Parsed, state: _ChunkState) -> Company:
        company = self.by_key.get(item.company_key)
        if company is None:
            company = Company(
                name=item.company_name or item.company_domain, domain=item.company_domain
            )
            self.by_key[item.company_key] = company
            state.new_companies.append(company)
        elif item.company_domain and item.company_name and company.name != item.company_name:
            company.name = item.company_name
            if company.pk and company not in state.renamed_companies:
                state.renamed_companies.append(company)
        return company


def _snapshot(contact: Contact, tags: set[str]) -> dict:
    """The import's columns as this contact has them now (no queries: company is cached)."""
    company = contact.company if contact.company_id or Contact.company.is_cached(contact) else None
    snapshot = {name: getattr(contact, name) for name in ("email", *PLAIN_COLUMNS, "country")}
    snapshot.update(
        company=company.name if company else "",
        company_domain=company.domain if company else "",
        lifecycle_stage=contact.lifecycle_stage_id,
        tags=tuple(sorted(tags)),
        properties=dict(contact.properties),
    )
    return snapshot


def _clean_field(model, name: str, value, errors: dict[str, list[str]]) -> None:
    model_field = model._meta.get_field(name)
    try:
        model_field.clean(value, None)
    except ValidationError as error:
        errors.setdefault(name, []).extend(error.messages)


def _collect(errors: dict, name: str, parse, values):
    try:
        return parse(values)
    except ValidationError as error:
        errors[name] = error.messages
        return None


def _parse_tags(values: Mapping[str, str]) -> list[str]:
    names = [name.strip().lower() for name in TAG_SEPARATORS.split(values.get("tags") or "")]
    names = [name for name in names if name]
    max_length = Tag._meta.get_field("name").max_length
    bad = [name for name in names if not _is_slug(name) or len(name) > max_length]
    if bad:
        raise ValidationError(
            f"Tags use letters, digits, '-' and '_' only (at most {max_length}): {', '.join(bad)}."
        )
    return names


def _is_slug(name: str) -> bool:
    try:
        validate_unicode_slug(name)
    except ValidationError:
        return False
    return True


def _parse_properties(values: Mapping[str, str]) -> dict:
    text = values.get("properties") or ""
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationError('properties must be a JSON object, such as {"plan": "pro"}.')
    return parsed
