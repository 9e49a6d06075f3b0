"""Privacy requests in the admin: export a contact's data, erase contacts, the erasure log."""

import json

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from crm.models import ConsentEntry, ErasureRecord
from crm.services import contact_erase, contact_export
from crm.services.preferences import Visitor, unsubscribe_all


@admin.action(description="Export the selected contacts' data (JSON)", permissions=["view"])
def export_contact_data(modeladmin, request, queryset):
    """Download every selected contact's data, as the API's export returns it."""
    exports = [contact_export(contact=contact) for contact in queryset.order_by("pk")]
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return HttpResponse(
        json.dumps(exports, cls=DjangoJSONEncoder, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="contact-export-{stamp}.json"'},
    )


@admin.action(
    description="Unsubscribe the selected contacts from all marketing",
    # Not "change": it writes the consent ledger and a suppression (docs/admin.md).
    permissions=["withdraw_consent"],
)
def unsubscribe_contacts_from_all(modeladmin, request, queryset):
    """Record a withdrawal of every topic and suppress: for objections by phone or letter."""
    source = f"admin: {request.user.get_username()}"
    for contact in queryset:
        unsubscribe_all(
            contact=contact, method=ConsentEntry.Method.ADMIN, source=source, visitor=Visitor()
        )
    modeladmin.message_user(
        request, f"Unsubscribed {queryset.count()} contact(s) from all marketing.", messages.SUCCESS
    )


@admin.action(description="Erase the selected contacts (privacy request)", permissions=["delete"])
def erase_contacts(modeladmin, request, queryset):
    """Ask for confirmation, then erase each contact and keep only the suppression hash."""
    if request.POST.get("confirm_erasure") != "yes":
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Erase contacts?",
            "contacts": queryset,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/contact/erase_confirmation.html", context)
    count = 0
    for contact in queryset:
        contact_erase(contact=contact, erased_by=request.user, requested_via="admin")
        count += 1
    modeladmin.message_user(
        request, f"Erased {count} contact(s); their addresses stay suppressed.", messages.SUCCESS
    )
    return None


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    """Who erased whom and when: read-only proof, no addresses."""

    list_display = ("erased_at", "contact_pk", "erased_by", "requested_via")
    list_filter = ("requested_via",)
    search_fields = ("email_hash", "=contact_pk")
    ordering = ("-erased_at",)
    list_select_related = ("erased_by",)
    readonly_fields = (
        "email_hash",
        "contact_pk",
        "erased_by",
        "requested_via",
        "deleted_counts",
        "erased_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
