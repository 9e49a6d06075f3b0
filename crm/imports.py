"""CSV import and export of contacts (django-import-export), routed through crm's services.

Import: the whole file goes through crm.services.imports.contacts_import_batch, which
applies the API's rules (email matched trimmed and case-insensitively, non-empty values
overwrite, tags add, properties merge, first-touch attribution kept) a chunk of rows at
a time with a fixed number of queries. A row that fails validation is listed with its
spreadsheet row number and the reasons, and the other rows still import. Consent is
granted only when the person importing picks a topic and confirms it; no column of the
file can grant it.

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
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Max, QuerySet
from django.http import StreamingHttpResponse
from django.utils.translation import ngettext
from import_export import fields, resources, widgets
from import_export.admin import ImportExportMixin
from import_export.forms import ConfirmImportForm, ImportForm
from import_export.resources import Diff
from import_export.results import Result, RowResult
from import_export.signals import post_export

from crm.models import ConsentEntry, ConsentText, ConsentTopic, Contact, Tag
from crm.services.imports import (
    INVALID,
    PLAIN_COLUMNS,
    ContactImportRow,
    contacts_import_batch,
)
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
TAG_SEPARATORS = re.compile(r"[,;]")
#: Rows the preview shows (with their changes); the summary above it counts every row, and
#: every invalid row is listed. Rendering 100,000 rows made a page nobody reads and cost
#: more CPU than importing them.
PREVIEW_ROWS = 100
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

    def preview_rows(self):
        """The rows the preview shows: the first PREVIEW_ROWS valid ones (they have a diff)."""
        return self.valid_rows()[:PREVIEW_ROWS]

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

    def import_data_inner(
        self, dataset, dry_run, raise_errors, using_transactions, collect_failed_rows, **kwargs
    ):
        """Import the whole file through contacts_import_batch(), not row by row.

        import-export's loop costs ~30 queries a row through the upsert services; the
        batch service validates every row in Python and writes each chunk of rows with a
        fixed number of queries. The result is import-export's, row for row, so the
        preview, the confirm step and the per-row report work as before. import_data()
        runs this in a transaction and rolls it back for the preview (dry run).
        """
        result = self.get_result_class()()
        result.diff_headers = [column_label(header) for header in self.get_diff_headers()]
        result.total_rows = len(dataset)
        try:
            self.before_import(dataset, **kwargs)
            self._check_import_id_fields(dataset.headers)
        except Exception as error:
            self.handle_import_error(result, error, raise_errors)
            return result
        headers = dataset.headers
        raw_rows = [dict(zip(headers, data_row, strict=False)) for data_row in dataset]
        options = self.options
        try:
            batch = contacts_import_batch(
                rows=[
                    ContactImportRow(number=spreadsheet_row(index), values=_read_row(row))
                    for index, row in enumerate(raw_rows, 1)
                ],
                source=options.source,
                consent_topic=options.consent_topic,
                consent_text=options.consent_text,
                lawful_basis=options.lawful_basis,
                consent_source=options.consent_source(kwargs.get("file_name") or ""),
                recorded_by=kwargs.get("user"),
            )
        except Exception as error:
            # Not bad data but a bug: show it, and import_data() rolls the whole file back.
            logger.exception("Contact import failed")
            self.handle_import_error(result, error, raise_errors)
            return result
        columns = [f.column_name for f in self.get_import_fields()]
        diffs_left = PREVIEW_ROWS if dry_run else 0
        for index, (row, outcome) in enumerate(zip(raw_rows, batch.outcomes, strict=True), 1):
            row_result = self._row_result(outcome, columns, with_diff=diffs_left > 0)
            if row_result.diff is not None:
                diffs_left -= 1
            result.increment_row_result_total(row_result)
            if row_result.validation_error is not None:
                result.append_invalid_row(index, row, row_result.validation_error)
            result.append_row_result(row_result)
        result.consent_recorded = batch.consent_recorded
        result.consent_withdrawn_rows = batch.consent_withdrawn_rows
        self.after_import(dataset, result, **kwargs)
        return result

    def _row_result(self, outcome, columns: list[str], *, with_diff: bool) -> RowResult:
        row_result = self.get_row_result_class()()
        if outcome.status == INVALID:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = ValidationError(outcome.errors)
            return row_result
        row_result.import_type = {
            "new": RowResult.IMPORT_TYPE_NEW,
            "update": RowResult.IMPORT_TYPE_UPDATE,
            "skip": RowResult.IMPORT_TYPE_SKIP,
        }[outcome.status]
        if with_diff:
            # Only the preview shows the diff, and only for its first PREVIEW_ROWS rows:
            # rendering it for every row of a big file cost more than the import itself.
            row_result.diff = SnapshotDiff(
                _render_snapshot(outcome.before, columns),
                _render_snapshot(outcome.after, columns),
                new=outcome.before is None,
            ).as_html()
        row_result.object_id = outcome.contact.pk
        row_result.object_repr = str(outcome.contact)
        row_result.instance = outcome.contact
        return row_result

    def after_import(self, dataset, result, **kwargs):
        # Not ModelResource's: it resets the id sequence, which could hand out ids that
        # concurrent API writes already hold. The service inserts through the sequence.
        result.ignored_columns = self._ignored_columns

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


class SnapshotDiff(Diff):
    """import-export's preview diff, from the service's before/after snapshots of a row.

    import-export's Diff reads every field of the instance through the resource (a tag
    query per row); the snapshots already hold the values.
    """

    def __init__(self, left: list[str], right: list[str], new: bool):
        self.left, self.right, self.new = left, right, new


def _render_snapshot(snapshot: dict | None, columns: list[str]) -> list[str]:
    if snapshot is None:
        return [""] * len(columns)
    rendered = {
        **snapshot,
        "tags": ",".join(snapshot["tags"]),
        "properties": json.dumps(snapshot["properties"], sort_keys=True)
        if snapshot["properties"]
        else "",
    }
    return [str(rendered.get(column) or "") for column in columns]


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
        context["contact_import_summary"] = import_preview_summary(result)
        return response

    def generate_log_entries(self, result, request):
        """One admin log entry for the whole import, not one per row.

        import-export logs every imported contact (a LogEntry and its repr per row: a
        fifth of a large import's CPU). The audit trail is this entry (who imported
        which file, when, with what totals and source) plus what each contact keeps:
        its source and entry point, and for consent the ledger's entries, each naming
        the import, the wording and the person who recorded it.
        A result with errors was rolled back: there is nothing to log.
        """
        if result.has_errors() or self.get_skip_admin_log():
            return
        totals = result.totals
        new, updated = totals[RowResult.IMPORT_TYPE_NEW], totals[RowResult.IMPORT_TYPE_UPDATE]
        if not new and not updated:
            return
        file_name = request.POST.get("original_file_name", "")
        message = import_totals_message(totals)
        if request.POST.get("source"):
            message += f" Source: {request.POST['source']}."
        if result.consent_recorded:
            message += f" Consent recorded for {result.consent_recorded}."
        if result.invalid_rows:
            message += f" {len(result.invalid_rows)} invalid rows left out."
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(self.model),
            object_id=None,
            object_repr=f"CSV import {file_name}"[:200],
            action_flag=ADDITION if new else CHANGE,
            change_message=message,
        )

    def add_success_message(self, result, request):
        if result.has_errors():
            messages.error(request, "Nothing was imported: an unexpected error stopped the import.")
            return
        messages.success(request, import_totals_message(result.totals))
        if result.consent_recorded:
            messages.success(
                request,
                ngettext(
                    "Recorded consent for %(count)d contact.",
                    "Recorded consent for %(count)d contacts.",
                    result.consent_recorded,
                )
                % {"count": result.consent_recorded},
            )
        if result.invalid_rows:
            messages.warning(request, _invalid_rows_message(result.invalid_rows))
        if result.consent_withdrawn_rows:
            numbers = result.consent_withdrawn_rows
            messages.warning(
                request,
                ngettext(
                    "Consent was not recorded for row %(rows)s: this person had withdrawn it, "
                    "and an import never overrides a withdrawal.",
                    "Consent was not recorded for rows %(rows)s: these people had withdrawn "
                    "it, and an import never overrides a withdrawal.",
                    len(numbers),
                )
                % {"rows": ", ".join(str(number) for number in numbers)},
            )


def import_totals_message(totals: dict) -> str:
    """ "Imported 1 new contact, 2 updated, 1 unchanged." with the right plural."""
    new = totals[RowResult.IMPORT_TYPE_NEW]
    return ngettext(
        "Imported %(new)d new contact, %(updated)d updated, %(unchanged)d unchanged.",
        "Imported %(new)d new contacts, %(updated)d updated, %(unchanged)d unchanged.",
        new,
    ) % {
        "new": new,
        "updated": totals[RowResult.IMPORT_TYPE_UPDATE],
        "unchanged": totals[RowResult.IMPORT_TYPE_SKIP],
    }


def import_preview_summary(result) -> str:
    """What confirming will do, counted, e.g. "3 contacts will be imported (2 new, ...)"."""
    totals = result.totals
    ready = len(result.valid_rows())
    text = ngettext(
        "%(ready)d row will be imported: %(new)d new, %(updated)d updated, "
        "%(unchanged)d unchanged.",
        "%(ready)d rows will be imported: %(new)d new, %(updated)d updated, "
        "%(unchanged)d unchanged.",
        ready,
    ) % {
        "ready": ready,
        "new": totals[RowResult.IMPORT_TYPE_NEW],
        "updated": totals[RowResult.IMPORT_TYPE_UPDATE],
        "unchanged": totals[RowResult.IMPORT_TYPE_SKIP],
    }
    left_out = len(result.invalid_rows)
    if left_out:
        text += " " + ngettext(
            "%(count)d row is left out (listed below).",
            "%(count)d rows are left out (listed below).",
            left_out,
        ) % {"count": left_out}
    return text


#: Column headers in words for the preview; anything else is its name with spaces.
COLUMN_LABELS = {
    "email": "Email",
    "external_id": "External id",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
}


def column_label(column: str) -> str:
    """first_name → "First name"; the file's own header stays what the person wrote."""
    return COLUMN_LABELS.get(column) or column.replace("_", " ").strip().capitalize()


def _invalid_rows_message(invalid_rows, limit: int = 20) -> str:
    reasons = [f"row {row.number}: {invalid_row_reason(row)}" for row in invalid_rows[:limit]]
    more = f"; and {len(invalid_rows) - limit} more" if len(invalid_rows) > limit else ""
    count = len(invalid_rows)
    head = ngettext("%(count)d row was not imported", "%(count)d rows were not imported", count) % {
        "count": count
    }
    return f"{head}: {'; '.join(reasons)}{more}."


def invalid_row_reason(invalid_row) -> str:
    """One line naming each bad column and what is wrong with it."""
    return " ".join(
        message if column == NON_FIELD_ERRORS else f"{column}: {message}"
        for column, column_messages in invalid_row.error_dict.items()
        for message in column_messages
    )
