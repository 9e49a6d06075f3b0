"""The sequences admin: build, review, preview, activate; watch enrollments and the ledger."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from crm.admin.base import BigTableMixin
from crm.admin.search import IndexedSearchMixin
from crm.admin_hooks import register_contact_inline
from crm.config_io import ConfigInvalid, config_import
from crm.models import Contact
from sequences.config_sections import sequences_export_yaml
from sequences.models import (
    EmailTemplate,
    Enrollment,
    EnrollmentEvent,
    OutboundMessage,
    Sequence,
    SequenceVersion,
    Step,
    Trigger,
)
from sequences.playbooks import PLAYBOOKS, playbook_install
from sequences.rendering import UnsafeTemplate
from sequences.review import sequence_findings, template_findings
from sequences.services import (
    outbound_resolve,
    sequence_activate,
    sequence_activation_review,
    sequence_archive,
    sequence_pause,
    sequence_resume,
    template_preview,
    template_send_test,
)


def import_summary(report) -> str:
    """One line per changed section: what an import created and updated."""
    parts = [
        f"{name}: {len(summary.created)} created, {len(summary.updated)} updated"
        for name, summary in report.sections.items()
    ]
    return "Imported (sequences stay drafts until activated). " + "; ".join(parts)


#: The status changes made on their own confirm pages (activate reviews first).
STATUS_CHANGES = {
    "activate": sequence_activate,
    "pause": sequence_pause,
    "resume": sequence_resume,
}
STATUS_WORDS = {"activate": "activated", "pause": "paused", "resume": "resumed"}


def _may_change(sequence: Sequence, verb: str, review) -> bool:
    """May this status change be offered now (activate: also no blockers in the review)?"""
    if verb == "pause":
        return sequence.status == Sequence.Status.ACTIVE
    if verb == "resume":
        return sequence.status == Sequence.Status.PAUSED
    # Activating an active sequence publishes its edited steps as a new version.
    if sequence.status == Sequence.Status.ARCHIVED:
        return False
    return review is None or review.can_activate


def findings_html(findings) -> str:
    if not findings:
        return format_html("<p>{}</p>", "No findings: ready to go.")
    rows = format_html_join(
        "", "<li><strong>{}</strong>: {}</li>", ((f.level, f.message) for f in findings)
    )
    return format_html("<ul>{}</ul>", rows)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("position", "key", "type", "template", "config")
    ordering = ("position",)
    autocomplete_fields = ("template",)


class TriggerInline(admin.TabularInline):
    model = Trigger
    extra = 0
    fields = (
        "type",
        "activity_kind",
        "lifecycle_stage",
        "conditions",
        "segment",
        "include_existing_members",
        "date_property",
        "days_before",
        "is_yearly",
        "churn_risk_above",
    )
    autocomplete_fields = ("segment",)


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "status", "topic", "is_transactional", "owner", "priority")
    list_filter = ("status", "is_transactional", "topic")
    search_fields = ("name", "key", "description")
    ordering = ("-priority", "name")
    list_select_related = ("topic", "owner")
    autocomplete_fields = ("audience_segment",)
    readonly_fields = ("current_version", "variant_winners", "review")
    inlines = (TriggerInline, StepInline)
    actions = ("activate", "pause", "resume", "archive", "export_yaml")
    change_list_template = "admin/sequences/sequence/change_list.html"
    change_form_template = "admin/sequences/sequence/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "key", "owner", "description", "status", "current_version")}),
        (
            "Who may get it",
            {
                "fields": (
                    "topic",
                    "is_transactional",
                    "audience_segment",
                    "audience_conditions",
                )
            },
        ),
        (
            "Rules",
            {
                "fields": (
                    "priority",
                    "reenrollment",
                    "reenrollment_min_gap_days",
                    "max_duration_days",
                    "on_send_failure",
                    "variant_winners",
                    "goal_conditions",
                    "exit_conditions",
                )
            },
        ),
        ("Quality review", {"fields": ("review",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Status changes only through the Activate / Pause / Resume pages, which review and
        # version; a new sequence is always a draft.
        return (*self.readonly_fields, "status")

    @admin.display(description="Findings")
    def review(self, obj):
        return findings_html(sequence_findings(obj)) if obj and obj.pk else "Save first."

    def _each(self, request, queryset, service, verb: str):
        for sequence in queryset:
            try:
                service(sequence=sequence)
            except ValidationError as exc:
                self.message_user(
                    request, f"{sequence}: not {verb}: {'; '.join(exc.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{sequence}: {verb}.", messages.SUCCESS)

    def _to_confirm_page(self, request, queryset, verb: str):
        # One sequence at a time: each change is shown (review, who enters) before it is made.
        if queryset.count() != 1:
            self.message_user(
                request,
                f"Choose one sequence to {verb}: its page shows what will happen first.",
                messages.WARNING,
            )
            return None
        url = reverse(f"admin:sequences_sequence_{verb}", args=[queryset.get().pk])
        return HttpResponseRedirect(url)

    @admin.action(description="Activate… (review, then confirm)", permissions=["change"])
    def activate(self, request, queryset):
        return self._to_confirm_page(request, queryset, "activate")

    @admin.action(description="Pause… (hold contacts in place)", permissions=["change"])
    def pause(self, request, queryset):
        return self._to_confirm_page(request, queryset, "pause")

    @admin.action(description="Resume…", permissions=["change"])
    def resume(self, request, queryset):
        return self._to_confirm_page(request, queryset, "resume")

    @admin.action(description="Archive", permissions=["change"])
    def archive(self, request, queryset):
        self._each(request, queryset, sequence_archive, "archived")

    @admin.action(description="Export as YAML (with their templates)", permissions=["view"])
    def export_yaml(self, request, queryset):
        response = HttpResponse(
            sequences_export_yaml(sequences=queryset), content_type="application/yaml"
        )
        response["Content-Disposition"] = 'attachment; filename="sequences.yaml"'
        return response

    def get_urls(self):
        view = self.admin_site.admin_view(self.install_playbook_view)
        import_view = self.admin_site.admin_view(self.import_yaml_view)
        status_urls = [
            path(
                f"<path:object_id>/{verb}/",
                self.admin_site.admin_view(self.status_view),
                {"verb": verb},
                name=f"sequences_sequence_{verb}",
            )
            for verb in STATUS_CHANGES
        ]
        return [
            path("install-playbook/", view, name="sequences_sequence_install_playbook"),
            path("import-yaml/", import_view, name="sequences_sequence_import_yaml"),
            *status_urls,
            *super().get_urls(),
        ]

    def status_view(self, request, object_id, verb):
        """Activate, pause or resume: GET shows what will happen, POST does it."""
        sequence = self.get_object(request, object_id)
        if sequence is None:
            raise Http404("No such sequence.")
        if not self.has_change_permission(request, sequence):
            raise PermissionDenied
        change_url = reverse("admin:sequences_sequence_change", args=[sequence.pk])
        review = sequence_activation_review(sequence=sequence) if verb == "activate" else None
        if request.method == "POST":
            try:
                if verb == "activate":
                    version = sequence_activate(sequence=sequence, user=request.user)
                    done = f"“{sequence}” is active, version {version.number}."
                else:
                    STATUS_CHANGES[verb](sequence=sequence)
                    done = f"“{sequence}” is {STATUS_WORDS[verb]}."
            except ValidationError as exc:
                self.message_user(
                    request,
                    f"“{sequence}” was not {STATUS_WORDS[verb]}: {'; '.join(exc.messages)}",
                    messages.ERROR,
                )
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} “{sequence}”",
            "opts": self.model._meta,
            "original": sequence,
            "verb": verb,
            "review": review,
            "allowed": _may_change(sequence, verb, review),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/sequences/sequence/status_change.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk and self.has_change_permission(request, obj):
            context["status_actions"] = [
                (verb.capitalize(), reverse(f"admin:sequences_sequence_{verb}", args=[obj.pk]))
                for verb in STATUS_CHANGES
                if _may_change(obj, verb, None)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def import_yaml_view(self, request):
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        errors = []
        upload = request.FILES.get("file")
        if request.method == "POST" and upload is not None:
            try:
                report = config_import(
                    upload.read().decode("utf-8", errors="replace"), user=request.user
                )
            except ConfigInvalid as exc:
                errors = exc.errors
            else:
                self.message_user(request, import_summary(report))
                return HttpResponseRedirect(reverse("admin:sequences_sequence_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import sequences from YAML",
            "opts": self.model._meta,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/sequences/sequence/import_yaml.html", context)

    def install_playbook_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("playbook") in PLAYBOOKS:
            try:
                sequence = playbook_install(key=request.POST["playbook"], owner=request.user)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, f"Installed “{sequence}” as a draft.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Install a playbook",
            "opts": self.model._meta,
            "playbooks": [(key, playbook["name"]) for key, playbook in PLAYBOOKS.items()],
        }
        return TemplateResponse(request, "admin/sequences/sequence/install_playbook.html", context)


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "subject", "is_marketing", "updated_at")
    list_filter = ("is_marketing",)
    search_fields = ("name", "key", "subject")
    ordering = ("name",)
    readonly_fields = ("review", "preview_link")
    # A call-to-action URL typed without a scheme means https (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = (
        "name",
        "key",
        "is_marketing",
        "subject",
        "preheader",
        "html",
        "text",
        "cta_label",
        "cta_url",
        "blocks",
        "review",
        "preview_link",
    )

    @admin.display(description="Quality review")
    def review(self, obj):
        return findings_html(template_findings(obj)) if obj and obj.pk else "Save first."

    @admin.display(description="Preview")
    def preview_link(self, obj):
        if not (obj and obj.pk):
            return "-"
        url = reverse("admin:sequences_emailtemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview for a contact / send test to me</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.preview_view)
        return [
            path("<int:pk>/preview/", view, name="sequences_emailtemplate_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        template = get_object_or_404(EmailTemplate, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        contact_id = request.POST.get("contact") or request.GET.get("contact")
        contact = Contact.objects.filter(pk=contact_id).first() if contact_id else None
        rendered = None
        if contact is not None:
            try:
                rendered = template_preview(template=template, contact=contact)
            except UnsafeTemplate as exc:
                # Over the render budget (or unsafe): say why instead of a 500 or a stall.
                self.message_user(request, f"Cannot render this template: {exc}", messages.ERROR)
        sending = request.method == "POST" and self.has_change_permission(request, template)
        if rendered is not None and sending:
            try:
                template_send_test(template=template, contact=contact, user=request.user)
                self.message_user(request, f"Test sent to {request.user.email}.")
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {template}",
            "opts": self.model._meta,
            "original": template,
            "contact": contact,
            "rendered": rendered,
            "can_send": self.has_change_permission(request, template),
        }
        return TemplateResponse(request, "admin/sequences/emailtemplate/preview.html", context)


class NoEditAdmin(admin.ModelAdmin):
    """Logs and snapshots: services write them, the admin only shows them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EnrollmentEventInline(ReadOnlyInline):
    model = EnrollmentEvent
    fields = ("occurred_at", "step", "kind", "reason")
    readonly_fields = fields


class OutboundMessageInline(ReadOnlyInline):
    model = OutboundMessage
    fk_name = "enrollment"
    fields = ("step", "variant", "state", "reason", "esp_message_id", "attempts", "sent_at")
    readonly_fields = fields


@admin.register(Enrollment)
class EnrollmentAdmin(IndexedSearchMixin, BigTableMixin, NoEditAdmin):
    list_display = (
        "contact",
        "sequence",
        "state",
        "reason",
        "current_step",
        "due_at",
        "needs_review",
        "enrolled_at",
    )
    list_filter = ("state", "needs_review", "sequence")
    search_fields = ("contact__email", "sequence__key")
    search_contact_field = "contact"
    search_exact_fields = ("sequence__key",)
    search_help_text = "A contact's whole email address, or a sequence key."
    # Newest first on the primary key index (enrolled_at has none); counts are capped.
    ordering = ("-pk",)
    list_select_related = ("contact", "sequence")
    raw_id_fields = ("contact",)
    inlines = (EnrollmentEventInline, OutboundMessageInline)


@admin.register(EnrollmentEvent)
class EnrollmentEventAdmin(IndexedSearchMixin, BigTableMixin, NoEditAdmin):
    list_display = ("occurred_at", "enrollment", "step", "kind", "reason")
    # No filter by kind: kinds are free slugs, so its choices would be a SELECT DISTINCT
    # over every event. An enrollment's page lists its events.
    search_fields = ("enrollment__contact__email",)
    search_contact_field = "enrollment__contact"
    search_help_text = "A contact's whole email address."
    ordering = ("-pk",)
    list_select_related = ("enrollment",)
    raw_id_fields = ("enrollment",)


class ResolveUnknownForm(forms.Form):
    """What staff say about `unknown` emails: the outcome and why (kept with each row)."""

    resolution = forms.ChoiceField(
        choices=[
            (OutboundMessage.Resolution.STAFF_SENT, "The ESP has it: mark sent"),
            (OutboundMessage.Resolution.STAFF_FAILED, "It did not go out: mark failed"),
            (
                OutboundMessage.Resolution.STAFF_RESEND,
                "The ESP certainly did not get it: send it again",
            ),
        ],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label="Reason",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How you know (e.g. found in the ESP's activity log). Kept with each message.",
    )


@admin.register(OutboundMessage)
class OutboundMessageAdmin(IndexedSearchMixin, BigTableMixin, NoEditAdmin):
    list_display = (
        "uuid",
        "kind",
        "contact",
        "step",
        "variant",
        "state",
        "reason",
        "attempts",
        "sent_at",
    )
    list_filter = ("state", "kind", "is_marketing", "resolution")
    search_fields = ("uuid", "esp_message_id", "contact__email")
    search_contact_field = "contact"
    # uuid is unique (indexed); esp_message_id has no index, but is what an ESP quotes.
    search_exact_fields = ("uuid", "esp_message_id")
    search_help_text = "A contact's whole email address, a message uuid or the ESP's message id."
    ordering = ("-pk",)
    list_select_related = ("contact",)
    raw_id_fields = ("contact", "enrollment", "resolved_by")
    actions = ["resolve_unknown"]

    def has_resolve_permission(self, request):
        return request.user.has_perm("sequences.change_outboundmessage")

    def changelist_view(self, request, extra_context=None):
        unknown = OutboundMessage.objects.filter(state=OutboundMessage.State.UNKNOWN).count()
        if unknown:
            self.message_user(
                request,
                f"{unknown} email(s) are unknown: the ESP may or may not have them. Their "
                "enrollments wait. Filter by state, then use “Resolve unknown emails”.",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Resolve unknown emails (with a reason)", permissions=["resolve"])
    def resolve_unknown(self, request, queryset):
        rows = list(queryset.filter(state=OutboundMessage.State.UNKNOWN))
        if not rows:
            self.message_user(request, "None of these emails is unknown.", messages.WARNING)
            return None
        form = ResolveUnknownForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Resolve unknown emails",
                "opts": self.model._meta,
                "rows": rows,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/sequences/outboundmessage/resolve.html", context
            )
        resolution, note = form.cleaned_data["resolution"], form.cleaned_data["note"]
        done = 0
        for row in rows:
            try:
                outbound_resolve(message=row, resolution=resolution, note=note, user=request.user)
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
                continue
            self.log_change(request, row, f"Resolved unknown: {resolution}: {note}")
            done += 1
        self.message_user(request, f"Resolved {done} of {len(rows)} unknown email(s).")
        return None


@admin.register(SequenceVersion)
class SequenceVersionAdmin(NoEditAdmin):
    list_display = ("sequence", "number", "created_at", "created_by")
    search_fields = ("sequence__name", "sequence__key")
    ordering = ("-created_at",)
    list_select_related = ("sequence", "created_by")


@register_contact_inline
class ContactEnrollmentInline(ReadOnlyInline):
    model = Enrollment
    fields = ("sequence", "state", "reason", "current_step", "due_at", "enrolled_at")
    readonly_fields = fields
    verbose_name_plural = "sequence enrollments"
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        # A contact being added has no enrollments; showing the inline would demand its
        # management form from every add request.
        return obj is not None and super().has_view_permission(request, obj)


# The webhook inbox, circuit breaker and deliverability report register themselves.
from sequences.esp import admin as esp_admin  # noqa: E402, F401
