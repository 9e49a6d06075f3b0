"""CSV import and export of contacts in the admin, routed through crm's services.

Import (our own two views on django-import-export's URLs and buttons): the upload reads
the file once, checks every cell with lean per-column parsers and plans the rows against
the database (crm.services.imports.contact_import_preview); the checked rows are kept in
a `ContactImport` row and the preview page carries only its token. Confirm applies those
rows set-based (contact_import_confirm), re-checking only what the database may have
changed since the preview, and writes one admin log entry. A row that fails validation
is listed with its spreadsheet row number and the reasons, and the other rows still
import. Consent is granted only when the person importing picks a topic and confirms
its wording; no column of the file can grant it.

Export: django-import-export's page and resource, streamed row by row
(crm.spreadsheets.csv_stream), so a million contacts export in constant memory, and no
cell runs as a formula.
"""

import csv
import json
import logging
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter

from django import forms
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Max, QuerySet
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from import_export import fields, resources, widgets
from import_export.admin import ImportExportMixin
from import_export.resources import Diff
from import_export.results import Result, RowResult
from import_export.signals import post_export

from crm.models import ConsentEntry, ConsentText, ConsentTopic, Contact, ContactImport, Tag
from crm.services.imports import (
    EXPORT_ONLY_COLUMNS,
    IMPORT_COLUMNS,
    INVALID,
    PLAIN_COLUMNS,
    ContactImportRefused,
    ContactImportRow,
    consent_source_for,
    contact_import_confirm,
    contact_import_csv_read,
    contact_import_preview,
    contacts_import_batch,
    gc_paused,
    normalise_header,
    read_cell,
)
from crm.spreadsheets import FormulaEscapedCSV, csv_stream

logger = logging.getLogger(__name__)

__all__ = ["EXPORT_ONLY_COLUMNS", "IMPORT_COLUMNS", "ContactImportExportMixin", "ContactResource"]

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
    """Return the row number a spreadsheet shows for data row `number` (counted from 1).

    People look the row up in a spreadsheet, where the header is row 1.
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
        return ConsentEntry.LawfulBasis(self.lawful_basis or "consent").label

    def consent_source(self, file_name: str) -> str:
        """The ledger's `source`: the stated source plus the file, within the column's 300."""
        return consent_source_for(self.source, file_name)


# --- What the import page shows ----------------------------------------------------------------


@dataclass
class InvalidRow:
    """A row left out: its spreadsheet row number and the reasons, by column."""

    number: int
    error_dict: dict[str, list[str]]


@dataclass
class PreviewRow:
    import_type: str
    diff: list | None = None


@dataclass
class ContactImportResult:
    """A preview or a confirmed import, as the page and the messages show it."""

    base_errors: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=lambda: {"new": 0, "update": 0, "skip": 0})
    invalid_rows: list[InvalidRow] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    shown: list[PreviewRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    consent_recorded: int = 0
    consent_withdrawn_rows: list[int] = field(default_factory=list)
    consent_suppressed_rows: list[int] = field(default_factory=list)
    diff_headers: list[str] = field(default_factory=list)

    @classmethod
    def from_batch(cls, batch, *, ignored_columns=(), with_diffs=False) -> "ContactImportResult":
        result = cls(
            ignored_columns=list(ignored_columns),
            consent_recorded=batch.consent_recorded,
            consent_withdrawn_rows=list(batch.consent_withdrawn_rows),
            consent_suppressed_rows=list(batch.consent_suppressed_rows),
            diff_headers=[column_label(column) for column in IMPORT_COLUMNS],
        )
        totals = result.totals
        for outcome in batch.outcomes:
            if outcome.status == INVALID:
                result.invalid_rows.append(InvalidRow(outcome.number, outcome.errors))
                continue
            totals[outcome.status] += 1
            result.statuses.append(outcome.status)
            if with_diffs and outcome.after is not None:
                diff = SnapshotDiff(
                    _render_snapshot(outcome.before, IMPORT_COLUMNS),
                    _render_snapshot(outcome.after, IMPORT_COLUMNS),
                    new=outcome.before is None,
                ).as_html()
                result.shown.append(PreviewRow(outcome.status, diff))
        return result

    def has_errors(self) -> bool:
        return bool(self.base_errors)

    def has_validation_errors(self) -> bool:
        return bool(self.invalid_rows)

    @property
    def valid_count(self) -> int:
        return len(self.statuses)

    def valid_rows(self) -> list[PreviewRow]:
        return [PreviewRow(status) for status in self.statuses]

    def preview_rows(self) -> list[PreviewRow]:
        """The rows the preview shows: the first PREVIEW_ROWS valid ones, with their diff."""
        return self.shown


class SnapshotDiff(Diff):
    """import-export's preview diff, from the service's before/after snapshots of a row."""

    def __init__(self, left: list[str], right: list[str], new: bool):
        self.left, self.right, self.new = left, right, new


def _render_snapshot(snapshot: dict | None, columns) -> list[str]:
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


# --- Export (django-import-export's resource) ----------------------------------------------------


class _ResourceImportResult(Result):
    """import-export's result for ContactResource.import_data, with spreadsheet row numbers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ignored_columns: list[str] = []
        self.consent_recorded = 0
        self.consent_withdrawn_rows: list[int] = []

    def append_invalid_row(self, number, row, validation_error):
        super().append_invalid_row(spreadsheet_row(number), row, validation_error)


class JSONObjectWidget(widgets.JSONWidget):
    """Properties as JSON with sorted keys, and an empty cell (not "None") when there are none."""

    def render(self, value, obj=None, **kwargs):
        return json.dumps(value, sort_keys=True) if value else ""


class ContactResource(resources.ModelResource):
    """Contacts as CSV columns. The admin exports with it; import_data() is for scripts and
    imports in one pass through contacts_import_batch (the admin's import does not use it)."""

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

    @classmethod
    def get_result_class(cls):
        return _ResourceImportResult

    def get_import_fields(self):
        return [f for f in super().get_import_fields() if f.column_name not in EXPORT_ONLY_COLUMNS]

    # --- import (scripts) -----------------------------------------------------------------

    def import_data(self, dataset, dry_run=False, raise_errors=False, **kwargs):
        """Import a tablib Dataset in one pass (contacts_import_batch); dry runs roll back."""
        if self.options is None:
            raise ValueError("Pass ContactImportOptions: an import states its source.")
        result = self.get_result_class()()
        headers = [normalise_header(header) for header in dataset.headers or []]
        known = IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS
        result.ignored_columns = [h for h in headers if h and h not in known]
        if "email" not in headers:
            result.append_base_error(
                self.get_error_result_class()(ValueError("The file needs an 'email' column."))
            )
            return result
        rows = [
            ContactImportRow(
                number=spreadsheet_row(index),
                values={
                    name: read_cell(cell)
                    for name, cell in zip(headers, data_row, strict=False)
                    if name
                },
            )
            for index, data_row in enumerate(dataset, 1)
        ]
        options = self.options
        try:
            batch = contacts_import_batch(
                rows=rows,
                source=options.source,
                consent_topic=options.consent_topic,
                consent_text=options.consent_text,
                lawful_basis=options.lawful_basis,
                consent_source=options.consent_source(kwargs.get("file_name") or ""),
                recorded_by=kwargs.get("user"),
            )
        except Exception as error:
            logger.exception("Contact import failed")
            self.handle_import_error(result, error, raise_errors)
            return result
        types = {
            "new": RowResult.IMPORT_TYPE_NEW,
            "update": RowResult.IMPORT_TYPE_UPDATE,
            "skip": RowResult.IMPORT_TYPE_SKIP,
        }
        for outcome in batch.outcomes:
            row_result = self.get_row_result_class()()
            if outcome.status == INVALID:
                row_result.import_type = RowResult.IMPORT_TYPE_INVALID
                row_result.validation_error = ValidationError(outcome.errors)
                result.append_invalid_row(outcome.number - 1, {}, row_result.validation_error)
            else:
                row_result.import_type = types[outcome.status]
                row_result.object_id = outcome.contact_id
            result.increment_row_result_total(row_result)
            result.append_row_result(row_result)
        result.consent_recorded = batch.consent_recorded
        result.consent_withdrawn_rows = batch.consent_withdrawn_rows
        return result

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


# --- Admin forms ----------------------------------------------------------------------------


class ConsentTopicChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, topic):
        if topic.latest_version is None:
            return f"{topic.name} (no wording published)"
        return f"{topic.name} (wording v{topic.latest_version})"


class ContactImportForm(forms.Form):
    """The file, where the contacts come from, and the consent to record (none unless chosen)."""

    import_file = forms.FileField(label="File to import", help_text=IMPORT_HELP_TEXT)
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
        cleaned["consent_text"] = None
        if topic is None:
            return cleaned
        if self.user is not None and not self.user.has_perm("crm.add_consententry"):
            self.add_error("consent_topic", "You may import contacts but not record consent.")
        if not cleaned.get("consent_confirmed"):
            self.add_error("consent_confirmed", "Confirm the consent, or choose no topic.")
        # The wording the preview shows is the one recorded: the staged import keeps it,
        # so a version published between preview and confirm is never recorded unseen.
        text = topic.texts.order_by("-version").first()
        if text is None:
            self.add_error("consent_topic", "Publish this topic's consent wording first.")
        cleaned["consent_text"] = text
        return cleaned

    def import_options(self) -> ContactImportOptions:
        data = self.cleaned_data
        return ContactImportOptions(
            source=data["source"],
            consent_topic=data.get("consent_topic"),
            consent_text=data.get("consent_text"),
            lawful_basis=data.get("lawful_basis") or ConsentEntry.LawfulBasis.CONSENT,
        )


class ContactConfirmImportForm(forms.Form):
    """The confirm step carries only the staged import's token: the rows and the options
    the preview showed are kept on the server, so nothing can be changed in between."""

    import_token = forms.CharField(widget=forms.HiddenInput, max_length=64)


# --- Admin ----------------------------------------------------------------------------------


class ContactImportExportMixin(ImportExportMixin):
    """Adds import (preview with a per-row error report, then confirm) and export."""

    resource_classes = [ContactResource]
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

    # --- import: upload and preview -------------------------------------------------------

    def import_action(self, request, **kwargs):
        """The upload form; posted, the preview: counts, consent, left-out rows, first rows.

        The file is read and every row checked once, here; Confirm applies the checked
        rows the preview kept (contact_import_confirm). The confirm step is offered when
        some rows are invalid, as long as others are valid: a marketer would rather import
        the good rows now and fix the listed ones later.
        """
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ContactImportForm(
            request.POST if request.method == "POST" else None,
            request.FILES if request.method == "POST" else None,
            user=request.user,
        )
        context = {}
        if request.method == "POST" and form.is_valid():
            context.update(self._preview(request, form))
        return self._import_page(request, form, context)

    def _preview(self, request, form: ContactImportForm) -> dict:
        upload = form.cleaned_data["import_file"]
        options = form.import_options()
        try:
            text = upload.read().decode("utf-8-sig")
            with gc_paused():
                csv_rows = contact_import_csv_read(text)
        except UnicodeDecodeError:
            return {"result": ContactImportResult(base_errors=[NOT_UTF8])}
        except ValidationError as error:
            return {"result": ContactImportResult(base_errors=error.messages)}
        except csv.Error as error:
            message = f"This is not a CSV file: {error}."
            return {"result": ContactImportResult(base_errors=[message])}
        if not csv_rows.rows:
            return {"result": ContactImportResult(base_errors=[NO_ROWS])}
        batch, staged = contact_import_preview(
            rows=csv_rows.rows,
            source=options.source,
            consent_topic=options.consent_topic,
            consent_text=options.consent_text,
            lawful_basis=options.lawful_basis,
            file_name=upload.name,
            user=request.user,
            ignored_columns=csv_rows.ignored_columns,
            preview_rows=PREVIEW_ROWS,
        )
        result = ContactImportResult.from_batch(
            batch, ignored_columns=csv_rows.ignored_columns, with_diffs=True
        )
        context = {"result": result}
        if result.valid_count and staged is not None:
            context.update(
                confirm_form=ContactConfirmImportForm(initial={"import_token": staged.token}),
                contact_import_options=options,
                contact_import_file_name=upload.name,
                contact_import_summary=import_preview_summary(result),
            )
        elif staged is not None:
            staged.delete()
        return context

    def _import_page(self, request, form, context: dict) -> TemplateResponse:
        context.update(self.admin_site.each_context(request))
        context.update(
            title="Import",
            form=form,
            opts=self.model._meta,
            media=self.media + form.media,
            import_error_display=self.import_error_display,
            fields_list=[("Contacts", list(IMPORT_COLUMNS))],
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    # --- import: confirm ------------------------------------------------------------------

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Apply the rows the preview checked; refuse a stale, used or foreign token."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        token = request.POST.get("import_token", "")
        topic_id = (
            ContactImport.objects.filter(token=token, created_by=request.user)
            .values_list("consent_topic_id", flat=True)
            .first()
        )
        if topic_id is not None and not request.user.has_perm("crm.add_consententry"):
            messages.error(request, "You may import contacts but not record consent.")
            return self._back_to_upload()
        try:
            batch, staged = contact_import_confirm(token=token, user=request.user)
        except ContactImportRefused as refused:
            messages.error(request, str(refused))
            return self._back_to_upload()
        except Exception:
            # Not bad data but a bug: the transaction rolled the whole file back.
            logger.exception("Contact import failed")
            messages.error(request, "Nothing was imported: an unexpected error stopped the import.")
            return self._back_to_upload()
        result = ContactImportResult.from_batch(batch)
        self._log_import(request, result, staged)
        self._success_messages(request, result)
        return HttpResponseRedirect(
            reverse("admin:crm_contact_changelist", current_app=self.admin_site.name)
        )

    def _back_to_upload(self):
        return HttpResponseRedirect(
            reverse("admin:crm_contact_import", current_app=self.admin_site.name)
        )

    def _log_import(self, request, result: ContactImportResult, staged: ContactImport) -> None:
        """One admin log entry for the whole import, not one per row.

        The audit trail is this entry (who imported which file, when, with what totals
        and source) plus what each contact keeps: its source and entry point, and for
        consent the ledger's entries, each naming the import, the wording and the person
        who recorded it.
        """
        totals = result.totals
        if not totals["new"] and not totals["update"]:
            return
        message = import_totals_message(totals) + f" Source: {staged.source}."
        if result.consent_recorded:
            message += f" Consent recorded for {result.consent_recorded}."
        if result.invalid_rows:
            message += f" {len(result.invalid_rows)} invalid rows left out."
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(self.model),
            object_id=None,
            object_repr=f"CSV import {staged.file_name}"[:200],
            action_flag=ADDITION if totals["new"] else CHANGE,
            change_message=message,
        )

    def _success_messages(self, request, result: ContactImportResult) -> None:
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
        if result.consent_suppressed_rows:
            numbers = result.consent_suppressed_rows
            messages.warning(request, suppressed_rows_message(numbers))


NOT_UTF8 = "The file is not UTF-8 text: save it as “CSV UTF-8” and upload it again."
NO_ROWS = "The file has no rows below its header row."


def suppressed_rows_message(numbers: list[int]) -> str:
    return ngettext(
        "Consent was not recorded for row %(rows)s: this address is suppressed because "
        "the person objected (unsubscribed from everything, complained or asked to be "
        "erased), and an import never overrides that.",
        "Consent was not recorded for rows %(rows)s: these addresses are suppressed "
        "because the people objected (unsubscribed from everything, complained or asked "
        "to be erased), and an import never overrides that.",
        len(numbers),
    ) % {"rows": ", ".join(str(number) for number in numbers)}


def import_totals_message(totals: dict) -> str:
    """ "Imported 1 new contact, 2 updated, 1 unchanged." with the right plural."""
    new = totals["new"]
    return ngettext(
        "Imported %(new)d new contact, %(updated)d updated, %(unchanged)d unchanged.",
        "Imported %(new)d new contacts, %(updated)d updated, %(unchanged)d unchanged.",
        new,
    ) % {"new": new, "updated": totals["update"], "unchanged": totals["skip"]}


def import_preview_summary(result) -> str:
    """What confirming will do, counted, e.g. "3 contacts will be imported (2 new, ...)"."""
    totals = result.totals
    ready = totals["new"] + totals["update"] + totals["skip"]
    text = ngettext(
        "%(ready)d row will be imported: %(new)d new, %(updated)d updated, "
        "%(unchanged)d unchanged.",
        "%(ready)d rows will be imported: %(new)d new, %(updated)d updated, "
        "%(unchanged)d unchanged.",
        ready,
    ) % {
        "ready": ready,
        "new": totals["new"],
        "updated": totals["update"],
        "unchanged": totals["skip"],
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
