"""The deal pipeline: stages and deals. Stage moves go through deal_move_stage()."""

from django import forms
from django.contrib import admin

from crm.admin.base import BigTableMixin, OwnerFieldMixin, adopt
from crm.models import Deal, DealStage
from crm.services import deal_create, deal_move_stage


@admin.register(DealStage)
class DealStageAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "position", "win_probability", "outcome")
    list_filter = ("outcome",)
    search_fields = ("key", "name")
    ordering = ("position", "key")
    list_select_related = False


class DealAdminForm(forms.ModelForm):
    class Meta:
        model = Deal
        fields = (
            "name",
            "contact",
            "company",
            "owner",
            "stage",
            "amount",
            "currency",
            "expected_close_on",
            "lost_reason",
        )

    def clean(self):
        # The service refuses this too; checking here puts the message on the field.
        data = super().clean()
        stage = data.get("stage")
        lost = stage is not None and stage.outcome == DealStage.Outcome.LOST
        if lost and not data.get("lost_reason", "").strip():
            self.add_error("lost_reason", "Say why the deal was lost.")
        return data


@admin.register(Deal)
class DealAdmin(OwnerFieldMixin, BigTableMixin, admin.ModelAdmin):
    form = DealAdminForm
    list_display = (
        "name",
        "contact",
        "company",
        "stage",
        "amount",
        "currency",
        "owner",
        "expected_close_on",
        "closed_at",
    )
    list_filter = ("stage", "stage__outcome", "owner", "expected_close_on")
    search_fields = ("name", "contact__email", "company__name")
    ordering = ("-pk",)
    list_select_related = ("contact", "company", "stage", "owner")
    autocomplete_fields = ("contact", "company", "owner")
    readonly_fields = ("closed_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "contact", "company", "owner")}),
        ("Pipeline", {"fields": ("stage", "lost_reason", "expected_close_on", "closed_at")}),
        ("Value", {"fields": ("amount", "currency")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            adopt(obj, deal_create(**{name: data[name] for name in DealAdminForm.Meta.fields}))
            return
        if "stage" not in form.changed_data:
            # Name, amount, owner and dates have no side effects and no service.
            super().save_model(request, obj, form, change)
            return
        # Save the other edits under the old stage, then move it so the move is recorded.
        obj.stage_id = form.initial["stage"]
        super().save_model(request, obj, form, change)
        adopt(obj, deal_move_stage(deal=obj, stage=data["stage"], lost_reason=data["lost_reason"]))
