"""The contact admin: the page every team works from."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from crm import admin_hooks
from crm.admin.base import BigTableMixin, OwnerFieldMixin, adopt, searchable_fields
from crm.admin.contact_page import contact_page_context
from crm.admin.filters import ConsentFilter, CountryFilter, SegmentFilter, SuppressedFilter
from crm.admin.privacy import erase_contacts, export_contact_data, unsubscribe_contacts_from_all
from crm.admin.search import contact_search_condition
from crm.emails import normalise_email
from crm.imports import ContactImportExportMixin
from crm.models import Contact, Note, Task
from crm.services import (
    contact_update,
    contact_upsert,
    lifecycle_stage_change,
    note_add,
    task_create,
)
from crm.services.contacts import FIRST_TOUCH_FIELDS, PROFILE_FIELDS

#: Fields contact_update() accepts; the stage moves through lifecycle_stage_change().
UPDATABLE_FIELDS = (*PROFILE_FIELDS, "properties", "email")


class ContactAdminForm(forms.ModelForm):
    stage_change_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason for the stage change",
        help_text="Recorded in the stage history when you change the lifecycle stage.",
    )

    class Meta:
        model = Contact
        fields = (
            "email",
            *PROFILE_FIELDS,
            "tags",
            "lifecycle_stage",
            *FIRST_TOUCH_FIELDS,
            "properties",
        )

    def clean_email(self):
        # Say plainly who already has the address, instead of the database's constraint name.
        email = normalise_email(self.cleaned_data["email"])
        others = Contact.objects.filter(email=email).exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(f"A contact with the email {email} already exists.")
        return email


class ServiceInline(admin.TabularInline):
    """Lists the contact's rows read-only; new rows are saved by ContactAdmin's services."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_change_permission(self, request, obj=None):
        # Existing rows are edited on their own page; here they only show.
        return False


class TaskInline(OwnerFieldMixin, ServiceInline):
    model = Task
    fields = ("title", "owner", "due_at", "status")
    readonly_fields = ("status",)
    autocomplete_fields = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")


class NoteInline(ServiceInline):
    model = Note
    fields = ("body", "author", "created_at")
    readonly_fields = ("author", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


@admin.register(Contact)
class ContactAdmin(ContactImportExportMixin, BigTableMixin, admin.ModelAdmin):
    form = ContactAdminForm
    change_form_template = "admin/crm/contact/change_form.html"
    actions = (export_contact_data, unsubscribe_contacts_from_all, erase_contacts)

    def has_withdraw_consent_permission(self, request) -> bool:
        """Unsubscribing from all records consent withdrawals and adds a suppression."""
        return request.user.has_perms(["crm.add_consententry", "crm.add_suppression"])

    list_display = (
        "email",
        "name",
        "company",
        "lifecycle_stage",
        "owner",
        "country",
        "lead_score",
        "source",
        "created_at",
    )
    list_filter = (
        "lifecycle_stage",
        "owner",
        CountryFilter,
        ConsentFilter,
        SuppressedFilter,
        SegmentFilter,
        "source",
    )
    # Searched by get_search_results (crm/admin/search.py), which an index answers.
    search_fields = ("email", "first_name", "last_name", "company__name", "=external_id")
    search_help_text = (
        "A whole email address finds that contact; other words match inside the email, "
        "first or last name or company name (one or two letters: the start of a name), "
        "or the external id exactly."
    )
    # Newest first on the primary key index; created_at has no index of its own.
    ordering = ("-pk",)
    list_select_related = ("company", "lifecycle_stage", "owner")
    autocomplete_fields = ("company", "owner", "tags")
    inlines = (TaskInline, NoteInline)
    readonly_fields = (
        "lifecycle_stage_changed_at",
        "lead_score",
        "last_engaged_at",
        "vouched_by",
        "vouched_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("email", "first_name", "last_name", "phone", "job_title")}),
        ("Ownership", {"fields": ("company", "owner", "tags")}),
        (
            "Lifecycle",
            {
                "fields": (
                    "lifecycle_stage",
                    "stage_change_reason",
                    "lifecycle_stage_changed_at",
                    "lead_score",
                    "last_engaged_at",
                )
            },
        ),
        (
            "Location and language",
            {"fields": ("country", "country_source", "time_zone", "language")},
        ),
        # Folded away: read now and then, and the page stays short enough to find Save.
        ("First touch", {"fields": FIRST_TOUCH_FIELDS, "classes": ("collapse",)}),
        # Who vouched for the address: until someone trusted did, no email goes to it.
        ("Trust", {"fields": ("vouched_by", "vouched_at"), "classes": ("collapse",)}),
        (
            "More",
            {
                "fields": ("external_id", "properties", "created_at", "updated_at"),
                "classes": ("collapse",),
            },
        ),
    )

    @admin.display(description="name", ordering="last_name")
    def name(self, contact: Contact) -> str:
        return contact.full_name

    def get_search_results(self, request, queryset, search_term):
        condition = contact_search_condition(search_term)
        if condition is None:
            return queryset, False
        return queryset.filter(condition), False

    def get_autocomplete_fields(self, request):
        return searchable_fields(request, super().get_autocomplete_fields(request))

    def get_object(self, request, object_id, from_field=None):
        # The contact page's header shows the stage, the owner and the company: one join
        # with the contact, not a query for each.
        queryset = self.get_queryset(request).select_related("lifecycle_stage", "owner", "company")
        field = Contact._meta.pk if from_field is None else Contact._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Contact.DoesNotExist, ValidationError, ValueError):
            return None

    def get_readonly_fields(self, request, obj=None):
        # First-touch attribution is set when the contact is created and never rewritten.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, *FIRST_TOUCH_FIELDS) if obj else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and self.has_change_permission(request, obj):
            return fieldsets
        # Only someone changing an existing contact's stage has a reason to give.
        return [
            (name, {**options, "fields": _without(options["fields"], "stage_change_reason")})
            for name, options in fieldsets
        ]

    def get_changeform_initial_data(self, request):
        return {"source": Contact.Source.ADMIN, **super().get_changeform_initial_data(request)}

    def get_inlines(self, request, obj):
        return (*super().get_inlines(request, obj), *admin_hooks.contact_inlines())

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context.update(contact_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        if change:
            self._save_changes(request, obj, form)
        else:
            adopt(obj, self._create(form.cleaned_data))

    def _create(self, data: dict) -> Contact:
        fields = {
            name: data[name]
            for name in (*PROFILE_FIELDS, *FIRST_TOUCH_FIELDS)
            if data.get(name) not in (None, "")
        }
        return contact_upsert(
            email=data["email"],
            lifecycle_stage=data["lifecycle_stage"].key,
            vouched_by=Contact.VouchedBy.STAFF,
            properties=data.get("properties") or None,
            **fields,
        ).contact

    def _save_changes(self, request, contact: Contact, form) -> None:
        data = form.cleaned_data
        # The form already set the new stage on the object; only the service may move it.
        contact.lifecycle_stage_id = form.initial["lifecycle_stage"]
        changed = {name: data[name] for name in form.changed_data if name in UPDATABLE_FIELDS}
        if changed:
            contact_update(contact=contact, **changed)
        if "lifecycle_stage" in form.changed_data:
            lifecycle_stage_change(
                contact=contact,
                stage=data["lifecycle_stage"].key,
                source="admin",
                changed_by=request.user,
                reason=data.get("stage_change_reason", ""),
            )

    def save_formset(self, request, form, formset, change):
        contact = form.instance
        if formset.model is Note:
            for note in formset.save(commit=False):
                note_add(contact=contact, body=note.body, author=request.user)
        elif formset.model is Task:
            for task in formset.save(commit=False):
                task_create(
                    title=task.title,
                    contact=contact,
                    owner=task.owner,
                    due_at=task.due_at,
                    source="admin",
                )
        else:
            # Inlines other apps registered save the way their app decides.
            super().save_formset(request, form, formset, change)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # The list never shows the properties JSON, which can be large. Deferred here,
        # not in get_queryset, so the change page and CSV export still load it at once.
        return super().get_paginator(
            request, queryset.defer("properties"), per_page, orphans, allow_empty_first_page
        )


def _without(fields, name: str) -> tuple:
    return tuple(field for field in fields if field != name)
