"""CSV import and export of contacts (django-import-export), routed through crm's services.

Import: every row goes through company_upsert and contact_upsert, so a file follows
the same rules as the API (email matched trimmed and case-insensitively, non-empty
values overwrite, tags add, properties merge, first-touch attribution kept). A row
that fails validation is listed with its spreadsheet row number and the services'
messages, and the other rows still import. Consent is granted only when the person
importing picks a topic and confirms it; no column of the file can grant it.

Export: CSV streamed row by row (crm.spreadsheets.csv_stream), so a million contacts
export in constant memory, and no cell runs as a formula.
"""

import json
import logging
import re
from dataclasses import dataclass
from functools import partial
from operator import attrgetter

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.validators import validate_unicode_slug
from django.db import transaction
from django.db.models import Max, QuerySet
from django.http import StreamingHttpResponse
from import_export import fields, resources, widgets
from import_export.admin import ImportExportMixin
from import_export.forms import ConfirmImportForm, ImportForm
from import_export.results import Result, RowResult
from import_export.signals import post_export

from crm.emails import normalise_email
from crm.models import ConsentEntry, ConsentText, ConsentTopic, Contact, LifecycleStage, Tag
from crm.selectors import consent_current
from crm.services import company_upsert, consent_grant, contact_upsert
from crm.spreadsheets import FormulaEscapedCSV, csv_stream, unescape_formula

logger = logging.getLogger(__name__)

#: Columns an import reads, in the order an export writes them.
IMPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company",
    "company_domain",
    "country",
    "time_zone",
    "language",
    "external_id",
    "lifecycle_stage",
    "tags",
    "properties",
)
#: Columns an export adds for information; an import skips them without comment.
EXPORT_ONLY_COLUMNS = ("owner", "source", "lead_score", "created_at")
#: Columns copied to contact_upsert() as they are.
PLAIN_COLUMNS = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "time_zone",
    "language",
    "external_id",
)
TAG_SEPARATORS = re.compile(r"[,;]")
#: Export cells read straight from the contact, skipping import-export's per-cell
#: machinery (field lookup, dehydrate method search, widget) that cost a millisecond a
#: row at 1M contacts. Each renders exactly as the resource's field would (tested).
FAST_EXPORT_CELLS = {
    **{name: attrgetter(name) for name in (*PLAIN_COLUMNS, "email", "country", "source")},
    "company": lambda contact: contact.company.name if contact.company_id else "",
    "company_domain": lambda contact: contact.company.domain if contact.company_id else "",
    "lifecycle_stage": attrgetter("lifecycle_stage_id"),
    "owner": lambda contact: contact.owner.get_username() if contact.owner_id else "",
}

IMPORT_HELP_TEXT = (
    "A CSV file with a header row. <b>email</b> is required; the other columns Nextstep "
    "reads are first_name, last_name, phone, job_title, company (name), company_domain, "
    "country (two letters, e.g. DE), time_zone (e.g. Europe/Berlin), language, external_id, "
    "lifecycle_stage (a stage key such as new_lead; used only for contacts this import "
    "creates), tags (separated by commas or semicolons; added, never removed) and "
    "properties (a JSON object, merged into the contact's custom properties). "
    "Headers are matched ignoring case and spaces. Any other column is ignored and listed "
    "in the preview; a column such as 'consent' or 'subscribed' never grants consent. "
    "Contacts are matched by email, whatever its case; non-empty cells overwrite, empty "
    "cells leave the contact as it is. A leading apostrophe before =, +, - or @ (as in "
    "Nextstep's own exports) is removed. Rows with errors are listed with their row "
    "number as your spreadsheet shows it (the header is row 1) and the reason; they are "
    "not imported, and every other row is imported when you confirm."
)


def spreadsheet_row(number: int) -> int:
    """Return the row number a spreadsheet shows for import-export's data row `number`.

    import-export counts data rows from 1; people look the row up in a spreadsheet,
    where the header is row 1.
    """
    return number + 1


@dataclass(frozen=True)
class ContactImportOptions:
    """What the person importing stated: where the contacts come from, and any consent."""

    source: str
    consent_topic: ConsentTopic | None = None
    consent_text: ConsentText | None = None
    lawful_basis: str = ConsentEntry.LawfulBasis.CONSENT

    @property
    def lawful_basis_label(self) -> str:
        return ConsentEntry.LawfulBasis(self.lawful_basis).label

    def consent_source(self, file_name: str) -> str:
        """The ledger's `source`: the stated source plus the file, within the column's 300."""
        return f"{self.source} (file {file_name[:90]})"


class ContactImportResult(Result):
    """import-export's result, with spreadsheet row numbers and what the import left out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ignored_columns: list[str] = []
        self.consent_recorded = 0
        self.consent_withdrawn_rows: list[int] = []

    def append_invalid_row(self, number, row, validation_error):
        super().append_invalid_row(spreadsheet_row(number), row, validation_error)

    def row_errors(self):
        return [
            (spreadsheet_row(row.errors[0].number), row.errors) for row in self.rows if row.errors
        ]


class JSONObjectWidget(widgets.JSONWidget):
    """Properties as JSON with sorted keys, and an empty cell (not "None") when there are none."""

    def render(self, value, obj=None, **kwargs):
        return json.dumps(value, sort_keys=True) if value else ""


class ContactResource(resources.ModelResource):
    """Contacts as CSV columns; imports call the services instead of saving instances."""

    company = fields.Field(attribute="company__name", column_name="company")
    company_domain = fields.Field(attribute="company__domain", column_name="company_domain")
    lifecycle_stage = fields.Field(attribute="lifecycle_stage_id", column_name="lifecycle_stage")
    tags = fields.Field(
        attribute="tags", column_name="tags", widget=widgets.ManyToManyWidget(Tag, field="name")
    )
    properties = fields.Field(
        attribute="properties", column_name="properties", widget=JSONObjectWidget()
    )
    owner = fields.Field(column_name="owner", readonly=True)
    # A number, not text, so spreadsheets sort it and a negative score is not escaped.
    lead_score = fields.Field(
        attribute="lead_score",
        column_name="lead_score",
        widget=widgets.IntegerWidget(coerce_to_string=False),
        readonly=True,
    )

    class Meta:
        model = Contact
        fields = IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS
        import_id_fields = ["email"]
        # Export reads contacts in chunks this size, with one tag query per chunk.
        chunk_size = 1000

    def __init__(self, options: ContactImportOptions | None = None, **kwargs):
        super().__init__(**kwargs)
        self.options = options
        self._ignored_columns: list[str] = []
        self._stage_keys: set[str] = set()
        self._consent_recorded = 0
        self._consent_withdrawn_rows: list[int] = []

    @classmethod
    def get_result_class(cls):
        return ContactImportResult

    def get_import_fields(self):
        return [f for f in super().get_import_fields() if f.column_name not in EXPORT_ONLY_COLUMNS]

    # --- import ---------------------------------------------------------------------------

    def import_data(self, dataset, *args, **kwargs):
        if self.options is None:
            raise ValueError("Pass ContactImportOptions: an import states its source.")
        return super().import_data(dataset, *args, **kwargs)

    def before_import(self, dataset, **kwargs):
        dataset.headers = [_normalise_header(header) for header in dataset.headers or []]
        known = IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS
        self._ignored_columns = [h for h in dataset.headers if h and h not in known]
        self._stage_keys = set(LifecycleStage.objects.values_list("key", flat=True))

    def import_row(self, row, instance_loader, **kwargs):
        """Import one row through the services; a bad row is rolled back and reported alone."""
        row_result = self.get_row_result_class()()
        number = kwargs["row_number"]
        try:
            with transaction.atomic():
                self._import_contact(row_result, _read_row(row), number=number, **kwargs)
        except ValidationError as error:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = error
        except Exception as error:
            # Not bad data but a bug: like import-export, show it and roll the whole file back.
            logger.exception("Contact import failed at row %s", spreadsheet_row(number))
            row_result.import_type = RowResult.IMPORT_TYPE_ERROR
            row_result.errors.append(self.get_error_result_class()(error, row=row, number=number))
        return row_result

    def after_import(self, dataset, result, **kwargs):
        # Not ModelResource's: it resets the id sequence, which could hand out ids that
        # concurrent API writes already hold. The services insert through the sequence.
        result.ignored_columns = self._ignored_columns
        result.consent_recorded = self._consent_recorded
        result.consent_withdrawn_rows = self._consent_withdrawn_rows

    def _import_contact(self, row_result, values, *, number, user=None, file_name="", **kwargs):
        email = normalise_email(values.get("email", ""))
        original = Contact.objects.filter(email=email).first() if email else None
        diff = self.get_diff_class()(self, original or Contact(), original is None)
        upserted = self._upsert(email, values, original)
        contact = upserted.contact
        recorded = self._grant_consent(contact, number=number, user=user, file_name=file_name)
        diff.compare_with(self, contact)
        if upserted.created:
            row_result.import_type = RowResult.IMPORT_TYPE_NEW
        elif diff.left == diff.right and not recorded:
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP
        else:
            row_result.import_type = RowResult.IMPORT_TYPE_UPDATE
        row_result.diff = diff.as_html()
        row_result.add_instance_info(contact)
        row_result.instance = contact

    def _upsert(self, email: str, values: dict[str, str], original: Contact | None):
        """Call the services; collect every problem with the row, then raise them together."""
        errors: dict[str, list[str]] = {}
        if not email:
            errors["email"] = ["Every row needs an email address."]
        fields_ = self._contact_fields(values, original, errors)
        if errors.get("email"):
            raise ValidationError(errors)
        try:
            # Staff stating the consent these people gave vouch for their addresses.
            vouched_by = Contact.VouchedBy.IMPORT if self.options.consent_topic else ""
            upserted = contact_upsert(email=email, vouched_by=vouched_by, **fields_)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
        return upserted

    def _contact_fields(self, values: dict[str, str], original, errors: dict) -> dict:
        """Turn the row's cells into contact_upsert() arguments, noting bad cells in `errors`."""
        options = self.options
        found = {name: values[name] for name in PLAIN_COLUMNS if values.get(name)}
        found.update(source=Contact.Source.IMPORT, entry_point=options.source[:200])
        country = values.get("country", "").upper()
        if country:
            found["country"] = country
            # Re-importing the same country must not downgrade a country the person declared.
            if original is None or original.country != country:
                found["country_source"] = Contact.CountrySource.IMPORT
        for name, parse in (
            ("lifecycle_stage", self._parse_stage),
            ("tags", _parse_tags),
            ("properties", _parse_properties),
            ("company", _find_company),
        ):
            try:
                value = parse(values)
            except ValidationError as error:
                errors[name] = error.messages
            else:
                if value:
                    found[name] = value
        return found

    def _parse_stage(self, values: dict[str, str]) -> str:
        key = values.get("lifecycle_stage", "").lower()
        if key and key not in self._stage_keys:
            choices = ", ".join(sorted(self._stage_keys))
            raise ValidationError(f"There is no lifecycle stage {key!r}; use one of {choices}.")
        return key

    def _grant_consent(self, contact: Contact, *, number: int, user, file_name: str) -> bool:
        """Grant the chosen topic, unless the person withdrew it; True if an entry was added."""
        topic = self.options.consent_topic
        if topic is None:
            return False
        current = consent_current(contact=contact, topic=topic)
        if current is not None and not current.is_granted:
            # A withdrawal is the person's objection; only they can reverse it.
            self._consent_withdrawn_rows.append(spreadsheet_row(number))
            return False
        entry = consent_grant(
            contact=contact,
            topic=topic,
            method=ConsentEntry.Method.IMPORT,
            source=self.options.consent_source(file_name),
            consent_text=self.options.consent_text,
            lawful_basis=self.options.lawful_basis,
            recorded_by=user,
        )
        if entry == current:  # already granted under this wording
            return False
        self._consent_recorded += 1
        return True

    # --- export ---------------------------------------------------------------------------

    def filter_export(self, queryset, **kwargs):
        # A fixed number of queries per chunk, however many contacts; defer(None) undoes
        # the changelist's deferred columns, which would otherwise cost a query per row.
        return queryset.defer(None).select_related("company", "owner").prefetch_related("tags")

    def iter_queryset(self, queryset):
        if not isinstance(queryset, QuerySet):
            return super().iter_queryset(queryset)
        # iterator() prefetches per chunk (Django 4.1+); import-export's fallback, paging,
        # adds a COUNT and skips or repeats rows unless the ordering is total.
        return queryset.iterator(chunk_size=self.get_chunk_size())

    def export_rows(self, queryset: QuerySet, selected_fields=None):
        """The export's rows, one at a time, as export_resource() would render them."""
        getters = [
            FAST_EXPORT_CELLS.get(field.column_name) or partial(self.export_field, field)
            for field in self.get_export_fields(selected_fields)
        ]
        for contact in self.iter_queryset(self.filter_export(queryset)):
            yield [get(contact) for get in getters]

    def dehydrate_owner(self, contact: Contact) -> str:
        return contact.owner.get_username() if contact.owner_id else ""


def _normalise_header(header) -> str:
    return re.sub(r"[\s-]+", "_", unescape_formula(str(header or "")).strip().lower())


def _read_row(row: dict) -> dict[str, str]:
    """Return the row's cells as trimmed text, without the quote an export put before formulas."""
    return {
        name: unescape_formula(str(value).strip()).strip() if value is not None else ""
        for name, value in row.items()
        if name
    }


def _parse_tags(values: dict[str, str]) -> list[str]:
    names = [name.strip().lower() for name in TAG_SEPARATORS.split(values.get("tags", ""))]
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


def _parse_properties(values: dict[str, str]) -> dict:
    text = values.get("properties", "")
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationError('properties must be a JSON object, such as {"plan": "pro"}.')
    return parsed


def _find_company(values: dict[str, str]):
    name, domain = values.get("company", ""), values.get("company_domain", "")
    return company_upsert(name=name, domain=domain) if name or domain else None


# --- Admin forms ----------------------------------------------------------------------------

OPTION_FIELDS = ("source", "consent_topic", "consent_text", "lawful_basis", "consent_confirmed")


class ConsentTopicChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, topic):
        if topic.latest_version is None:
            return f"{topic.name} (no wording published)"
        return f"{topic.name} (wording v{topic.latest_version})"


class ContactImportOptionsForm(forms.Form):
    """Where the contacts come from, and the consent to record (none unless chosen)."""

    source = forms.CharField(
        label="Source of these contacts",
        max_length=200,
        help_text="Where these people come from, e.g. 'Webinar 2026-10 attendee list'. "
        "Recorded on new contacts (entry point) and on any consent this import grants.",
    )
    consent_topic = ConsentTopicChoiceField(
        queryset=ConsentTopic.objects.none(),
        required=False,
        label="Grant consent to",
        empty_label="No consent: grant nothing",
        help_text="Leave empty unless every person in the file agreed to this topic. "
        "The preview shows the exact wording that will be recorded. People who withdrew "
        "consent to the topic keep it withdrawn.",
    )
    consent_text = forms.ModelChoiceField(
        queryset=ConsentText.objects.all(), required=False, widget=forms.HiddenInput
    )
    lawful_basis = forms.ChoiceField(
        choices=ConsentEntry.LawfulBasis.choices,
        initial=ConsentEntry.LawfulBasis.CONSENT,
        label="Lawful basis",
        help_text="Used only when a topic is chosen.",
    )
    consent_confirmed = forms.BooleanField(
        required=False,
        label="I confirm that every person in this file gave this consent under the topic's "
        "current wording",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["consent_topic"].queryset = ConsentTopic.objects.filter(
            is_active=True
        ).annotate(latest_version=Max("texts__version"))

    def clean(self):
        cleaned = super().clean()
        topic = cleaned.get("consent_topic")
        if topic is None:
            cleaned["consent_text"] = None
            return cleaned
        if self.user is not None and not self.user.has_perm("crm.add_consententry"):
            self.add_error("consent_topic", "You may import contacts but not record consent.")
        if not cleaned.get("consent_confirmed"):
            self.add_error("consent_confirmed", "Confirm the consent, or choose no topic.")
        self._clean_consent_text(cleaned, topic)
        return cleaned

    def _clean_consent_text(self, cleaned: dict, topic: ConsentTopic) -> None:
        # The confirm step carries the wording the preview showed, so a version published
        # in between is never recorded unseen.
        text = cleaned.get("consent_text") or topic.texts.order_by("-version").first()
        if text is None:
            self.add_error("consent_topic", "Publish this topic's consent wording first.")
        elif text.topic_id != topic.pk:
            self.add_error("consent_topic", "That wording belongs to another topic.")
        cleaned["consent_text"] = text

    def import_options(self) -> ContactImportOptions:
        data = self.cleaned_data
        return ContactImportOptions(
            source=data["source"],
            consent_topic=data.get("consent_topic"),
            consent_text=data.get("consent_text"),
            lawful_basis=data.get("lawful_basis") or ConsentEntry.LawfulBasis.CONSENT,
        )


class ContactImportForm(ContactImportOptionsForm, ImportForm):
    field_order = ["resource", "import_file", "format", *OPTION_FIELDS]

    def __init__(self, formats, resources, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.fields["import_file"].help_text = IMPORT_HELP_TEXT


class ContactConfirmImportForm(ContactImportOptionsForm, ConfirmImportForm):
    """Carries the options of the import form, unchanged, to the confirm step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in OPTION_FIELDS:
            self.fields[name].widget = forms.HiddenInput()


# --- Admin ----------------------------------------------------------------------------------


class ContactImportExportMixin(ImportExportMixin):
    """Adds import (with preview and a per-row error report) and export to the contact admin."""

    resource_classes = [ContactResource]
    import_form_class = ContactImportForm
    confirm_form_class = ContactConfirmImportForm
    import_template_name = "admin/crm/contact/import.html"
    # A byte-order mark makes Excel read the file as UTF-8; import reads it as utf-8-sig.
    to_encoding = "utf-8-sig"

    def get_import_formats(self):
        return [FormulaEscapedCSV]

    def get_export_formats(self):
        return [FormulaEscapedCSV]

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        """Stream the CSV row by row instead of building it in memory (tablib).

        import-export's own export builds a Dataset of every row and then one string of
        the whole file: 60k contacts took 196 MB, and a million timed out. The rows,
        columns and cell rendering are the resource's own, so the file is the same.
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        resource_class = self.choose_export_resource_class(export_form, request)
        resource = resource_class(
            **self.get_export_resource_kwargs(request, export_form=export_form)
        )
        fields = self.get_export_resource_fields_from_form(export_form)
        rows = resource.export_rows(queryset, selected_fields=fields)
        response = StreamingHttpResponse(
            csv_stream(resource.get_export_headers(selected_fields=fields), rows),
            content_type="text/csv; charset=utf-8",
        )
        filename = self.get_export_filename(request, queryset, file_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        post_export.send(sender=None, model=self.model)
        return response

    def get_import_form_kwargs(self, request):
        return {**super().get_import_form_kwargs(request), "user": request.user}

    def get_confirm_form_kwargs(self, request, import_form=None):
        return {**super().get_confirm_form_kwargs(request, import_form), "user": request.user}

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial.update({name: import_form.cleaned_data.get(name) for name in OPTION_FIELDS})
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        if form is not None and form.is_bound and form.is_valid():
            return {"options": form.import_options()}
        return {}

    def import_action(self, request, **kwargs):
        """Offer the confirm step when some rows are invalid, as long as others are valid.

        import-export refuses to confirm a file with any invalid row; a marketer would
        rather import the good rows now and fix the listed ones later.
        """
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        result = context.get("result")
        if result is None or result.has_errors() or not result.valid_rows():
            return response
        if "confirm_form" not in context:
            context["confirm_form"] = self.create_confirm_form(request, import_form=context["form"])
        context["contact_import_options"] = context["form"].import_options()
        return response

    def generate_log_entries(self, result, request):
        # A result with errors was rolled back: there are no rows to log.
        if not result.has_errors():
            super().generate_log_entries(result, request)

    def add_success_message(self, result, request):
        if result.has_errors():
            messages.error(request, "Nothing was imported: an unexpected error stopped the import.")
            return
        totals = result.totals
        messages.success(
            request,
            f"Imported {totals[RowResult.IMPORT_TYPE_NEW]} new and "
            f"{totals[RowResult.IMPORT_TYPE_UPDATE]} updated contacts; "
            f"{totals[RowResult.IMPORT_TYPE_SKIP]} unchanged.",
        )
        if result.consent_recorded:
            messages.success(request, f"Recorded consent for {result.consent_recorded} contacts.")
        if result.invalid_rows:
            messages.warning(request, _invalid_rows_message(result.invalid_rows))
        if result.consent_withdrawn_rows:
            rows = ", ".join(str(number) for number in result.consent_withdrawn_rows)
            messages.warning(
                request,
                f"Consent was not recorded for rows {rows}: "
                "these people had withdrawn it, and an import never overrides a withdrawal.",
            )


def _invalid_rows_message(invalid_rows, limit: int = 20) -> str:
    reasons = [f"row {row.number}: {invalid_row_reason(row)}" for row in invalid_rows[:limit]]
    more = f"; and {len(invalid_rows) - limit} more" if len(invalid_rows) > limit else ""
    return f"{len(invalid_rows)} rows were not imported: {'; '.join(reasons)}{more}."


def invalid_row_reason(invalid_row) -> str:
    """One line naming each bad column and what is wrong with it."""
    return " ".join(
        message if column == NON_FIELD_ERRORS else f"{column}: {message}"
        for column, column_messages in invalid_row.error_dict.items()
        for message in column_messages
    )
