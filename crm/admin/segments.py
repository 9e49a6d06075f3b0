"""Segments in the admin: the builder, the live preview, count history and member export.

The builder (crm/static/crm/segment_builder.js) edits the definition JSON in the
form's `definition` field, so a segment saves like any admin form and power users
can edit the JSON directly; both are validated on save by crm.segments.
"""

import csv
import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join, json_script
from django_q.tasks import async_task

from crm import admin_hooks
from crm.admin.base import OwnerFieldMixin, adopt
from crm.conditions.widget import builder_options
from crm.models import ConsentTopic, Contact, Segment
from crm.segment_selectors import (
    segment_count_history,
    segment_members,
    segment_preview,
    segments_using,
)
from crm.segments.catalog import catalog_as_json
from crm.segments.validation import References, definition_problems
from crm.services.segments import EVALUATE_TASK, segment_create, segment_delete, segment_update
from crm.spreadsheets import escape_formula

#: Set by save_model when an evaluation was queued; the next page says "evaluating…".
EVALUATING_SESSION_KEY = "crm_segment_evaluating"

EXPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "lifecycle_stage",
    "country",
    "lead_score",
    "owner",
    "created_at",
)


class SegmentBuilderWidget(forms.Textarea):
    """The definition's JSON, with the visual builder drawn around it by JavaScript.

    The textarea (inside "View or edit as JSON") is what the form submits; the
    builder keeps it up to date.
    """

    def __init__(self, *args, builder: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.builder = builder or {}

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        return format_html(
            BUILDER_HTML,
            textarea_id=(attrs or {}).get("id", f"id_{name}"),
            textarea=textarea,
            config=json_script(self.builder, "segment-builder-config"),
        )

    class Media:
        js = ("crm/segment_builder.js",)
        css = {"all": ("crm/segment_builder.css",)}


BUILDER_HTML = """<div class="segment-builder" id="segment-builder" data-textarea="{textarea_id}">
  <div class="segment-builder-tree" id="segment-builder-tree"></div>
  <noscript><p>The builder needs JavaScript; edit the JSON below instead.</p></noscript>
  <details class="segment-builder-json" id="segment-builder-json">
    <summary>View or edit as JSON</summary>
    {textarea}
    <p>
      <button type="button" class="button segment-builder-apply-json"
        id="segment-builder-apply-json">Apply JSON to the builder</button>
      <span class="segment-builder-json-error" role="alert"></span>
    </p>
  </details>
  {config}
</div>"""


class SegmentAdminForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("name", "key", "description", "owner", "definition")
        help_texts = {
            "definition": "Build it with the conditions above, or edit the JSON "
            "(see docs/segments.md)."
        }

    def clean(self):
        data = super().clean()
        if "definition" in data:
            key = data.get("key") or self.instance.key
            problems = definition_problems(
                data["definition"], references=References.load(), segment_key=key or ""
            )
            for problem in problems:
                self.add_error("definition", str(problem))
        return data


def segment_builder_options(*, exclude_key: str = "") -> dict:
    """The choices the builder offers for each field, as [key, label] pairs."""
    return builder_options(exclude_segment=exclude_key)


@admin.register(Segment)
class SegmentAdmin(OwnerFieldMixin, admin.ModelAdmin):
    form = SegmentAdminForm
    change_form_template = "admin/crm/segment/change_form.html"
    list_display = ("name", "key", "member_count", "last_evaluated_at", "owner", "updated_at")
    list_filter = ("owner",)
    search_fields = ("name", "key", "description")
    ordering = ("name",)
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    actions = ("evaluate_now",)

    # Member count and last evaluation show in the Members panel below the form.
    fieldsets = (
        (None, {"fields": ("name", "key", "description", "owner")}),
        ("Conditions", {"fields": ("definition",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        # The key is the segment's identity: other segments and config files name it.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "key") if obj else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        # A widget per request: it carries this segment's key and the current options.
        builder = {
            "catalog": catalog_as_json(),
            "options": segment_builder_options(exclude_key=obj.key if obj else ""),
            "preview_url": reverse("admin:crm_segment_preview"),
            "segment_key": obj.key if obj else "",
        }
        widgets = {**kwargs.pop("widgets", {}), "definition": SegmentBuilderWidget(builder=builder)}
        return super().get_form(request, obj, change=change, widgets=widgets, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = {"definition": {"match": "all", "conditions": []}, "owner": request.user.pk}
        return {**initial, **segment_prefill_from_query(request)}

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change or "definition" in form.changed_data:
            # The evaluation runs in the background: the page after saving says
            # "evaluating…" and shows the count when it lands, not a stale 0.
            request.session[EVALUATING_SESSION_KEY] = True
        if change:
            fields = {name: data[name] for name in form.changed_data if name in data}
            fields.pop("key", None)
            adopt(obj, segment_update(segment=obj, **fields))
        else:
            fields = {name: data[name] for name in SegmentAdminForm.Meta.fields}
            adopt(obj, segment_create(**fields))

    def delete_model(self, request, obj):
        segment_delete(segment=obj)

    def get_deleted_objects(self, objs, request):
        # Segments that use this one make the deletion "protected": the admin lists them.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        for segment in objs:
            for user in segments_using(key=segment.key):
                protected.append(f"Segment {user.name} ({user.key}) uses {segment.name}")
        return deleted, model_count, perms_needed, protected

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            segment_delete(segment=segment)

    @admin.action(description="Re-evaluate membership now", permissions=["change"])
    def evaluate_now(self, request, queryset):
        for segment in queryset:
            async_task(EVALUATE_TASK, segment.pk)
        count = queryset.count()
        self.message_user(request, f"Re-evaluating {count} segment(s) in the background.")

    # --- Extra views: preview and export ----------------------------------------------------

    def get_urls(self):
        extra = [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="crm_segment_preview",
            ),
            path(
                "<int:object_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="crm_segment_status",
            ),
            path(
                "<int:object_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="crm_segment_export",
            ),
        ]
        return extra + super().get_urls()

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """POST {definition, segment_key, topic}: the count, a sample, timing, problems."""
        if request.method != "POST":
            return JsonResponse({"error": "POST a definition to preview it."}, status=405)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"problems": [{"position": "", "text": "Not valid JSON."}]})
        topic = ConsentTopic.objects.filter(key=payload.get("topic") or "").first()
        preview = segment_preview(
            definition=payload.get("definition"),
            segment_key=str(payload.get("segment_key") or ""),
            topic=topic,
        )
        return JsonResponse(preview_json(preview))

    def status_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """The member count and when it was counted, polled by the page while evaluating."""
        segment = get_object_or_404(Segment, pk=object_id)
        if not self.has_view_or_change_permission(request, segment):
            raise PermissionDenied
        evaluated = segment.last_evaluated_at
        return JsonResponse(
            {
                "member_count": segment.member_count,
                "last_evaluated_at": evaluated.isoformat() if evaluated else None,
                "last_evaluated_label": date_format(
                    timezone.localtime(evaluated), "DATETIME_FORMAT"
                )
                if evaluated
                else "",
            }
        )

    def export_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        """The segment's current members as CSV, formulas escaped for spreadsheets."""
        segment = get_object_or_404(Segment, pk=object_id)
        if not self.has_view_or_change_permission(request, segment):
            raise PermissionDenied
        members = segment_members(segment=segment).select_related("owner").order_by("pk")
        response = StreamingHttpResponse(
            _csv_rows(members.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.key}.csv"'
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["topics"] = ConsentTopic.objects.filter(is_active=True).order_by("name")
        if obj is not None:
            context["count_history"] = segment_count_history(segment=obj)
            context["members_url"] = reverse("admin:crm_contact_changelist") + f"?segment={obj.key}"
            context["export_url"] = reverse("admin:crm_segment_export", args=[obj.pk])
            context["status_url"] = reverse("admin:crm_segment_status", args=[obj.pk])
            # Never counted, or just saved with new conditions: the count is on its way.
            just_saved = request.session.pop(EVALUATING_SESSION_KEY, False)
            stale = obj.last_evaluated_at is None or obj.last_evaluated_at < obj.updated_at
            context["evaluating"] = obj.last_evaluated_at is None or (just_saved and stale)
        return super().render_change_form(request, context, add, change, form_url, obj)


def preview_json(preview) -> dict:
    if not preview.is_valid:
        return {"problems": [problem.as_json() for problem in preview.problems]}
    return {
        "problems": [],
        "count": preview.count,
        "estimated": preview.estimated,
        "sampled_percent": preview.sampled_percent,
        "milliseconds": preview.milliseconds,
        "topic": preview.topic.name if preview.topic else None,
        "sendable_count": preview.sendable_count,
        "sample": [
            {
                "id": contact.pk,
                "email": contact.email,
                "name": contact.full_name,
                "lifecycle_stage": contact.lifecycle_stage.name,
                "lead_score": contact.lead_score,
                "url": reverse("admin:crm_contact_change", args=[contact.pk]),
            }
            for contact in preview.sample
        ],
    }


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_rows(contacts):
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)  # a byte-order mark, so Excel reads UTF-8
    for contact in contacts:
        row = [
            contact.email,
            contact.first_name,
            contact.last_name,
            contact.lifecycle_stage_id,
            contact.country,
            contact.lead_score,
            contact.owner.get_username() if contact.owner else "",
            contact.created_at.isoformat(),
        ]
        yield writer.writerow([escape_formula(value) for value in row])


def segment_prefill_from_query(request: HttpRequest) -> dict:
    """?name=…&definition=<JSON> pre-fills a new segment (reports' "create segment" links).

    Nothing is saved: the builder shows the definition and validates it as usual.
    """
    prefill = {}
    if request.GET.get("name"):
        prefill["name"] = request.GET["name"][:200]
    try:
        definition = json.loads(request.GET.get("definition", ""))
    except ValueError:
        definition = None
    if isinstance(definition, dict):
        prefill["definition"] = definition
    return prefill


# --- The contact page: which segments this person is in -------------------------------------


def render_contact_segments(request: HttpRequest, contact: Contact) -> str:
    """A list of the contact's current segments, for users who may view segments."""
    if not request.user.has_perm("crm.view_segment"):
        return ""
    memberships = contact.segment_memberships.filter(exited_at__isnull=True).select_related(
        "segment"
    )
    rows = [
        (
            reverse("admin:crm_segment_change", args=[membership.segment_id]),
            membership.segment.name,
            membership.entered_at.strftime("%Y-%m-%d %H:%M"),
        )
        for membership in memberships.order_by("segment__name")
    ]
    if not rows:
        return format_html("<p>{}</p>", "Not in any segment.")
    items = format_html_join("", '<li><a href="{}">{}</a> since {}</li>', rows)
    return format_html("<ul>{}</ul>", items)


admin_hooks.register_contact_panel("Segments", render_contact_segments)
