"""Consent topics, wording versions, the consent ledger and the suppression list."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from crm.admin.base import BigTableMixin, NoEditMixin, ReadOnlyMixin, adopt
from crm.admin.search import IndexedSearchMixin
from crm.emails import email_hash
from crm.models import ConsentEntry, ConsentText, ConsentTopic, Suppression, SuppressionLift
from crm.services import (
    consent_grant,
    consent_text_publish,
    consent_withdraw,
    suppression_add,
    suppression_lift,
)
from crm.services.suppressions import MIN_REASON_LENGTH


@admin.register(ConsentTopic)
class ConsentTopicAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("key", "name")
    ordering = ("name",)
    list_select_related = False


@admin.register(ConsentText)
class ConsentTextAdmin(NoEditMixin, admin.ModelAdmin):
    """Wording is versioned: publishing new text adds a version, old ones stay as proof."""

    list_display = ("topic", "version", "short_text", "created_at")
    list_filter = ("topic",)
    search_fields = ("text", "topic__key", "topic__name")
    ordering = ("topic__name", "-version")
    list_select_related = ("topic",)
    fields = ("topic", "text")

    @admin.display(description="text")
    def short_text(self, consent_text: ConsentText) -> str:
        return consent_text.text[:100]

    def save_model(self, request, obj, form, change):
        adopt(obj, consent_text_publish(topic=obj.topic, text=obj.text))


class ConsentEntryAddForm(forms.ModelForm):
    is_granted = forms.TypedChoiceField(
        label="Consent",
        choices=[(True, "Granted"), (False, "Withdrawn")],
        coerce=lambda value: value == "True",
        widget=forms.RadioSelect,
    )

    class Meta:
        model = ConsentEntry
        fields = ("contact", "topic", "is_granted", "lawful_basis", "consent_text", "source")
        help_texts = {
            "consent_text": "Leave empty to record the topic's latest wording.",
            "source": "Where the person said so, e.g. 'phone call' or 'signed paper form'.",
        }

    def clean(self):
        data = super().clean()
        text, topic = data.get("consent_text"), data.get("topic")
        if text and topic and text.topic_id != topic.pk:
            self.add_error("consent_text", f"That wording belongs to another topic, not {topic}.")
        return data


@admin.register(ConsentEntry)
class ConsentEntryAdmin(IndexedSearchMixin, NoEditMixin, BigTableMixin, admin.ModelAdmin):
    """The consent ledger: staff may append an entry, nobody may edit or delete one."""

    form = ConsentEntryAddForm
    list_display = (
        "contact",
        "topic",
        "is_granted",
        "method",
        "lawful_basis",
        "source",
        "occurred_at",
        "recorded_by",
    )
    list_filter = ("topic", "is_granted", "method", "lawful_basis")
    search_fields = ("=contact__email",)
    # The contact's current address, by the unique index; email_at_time has no index.
    search_contact_field = "contact"
    search_help_text = "A contact's whole (current) email address."
    ordering = ("-pk",)
    list_select_related = ("contact", "topic", "recorded_by")
    autocomplete_fields = ("contact",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "consent_text":
            # Each option's label names its topic.
            kwargs["queryset"] = ConsentText.objects.select_related("topic")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        common = {
            "contact": data["contact"],
            "topic": data["topic"],
            "method": ConsentEntry.Method.ADMIN,
            "source": data["source"],
            "recorded_by": request.user,
        }
        if data["is_granted"]:
            entry = consent_grant(
                **common, consent_text=data["consent_text"], lawful_basis=data["lawful_basis"]
            )
        else:
            entry = consent_withdraw(**common)
        adopt(obj, entry)


class SuppressionAddForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("email", "reason", "detail", "expires_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model allows an empty address only for rows whose person was erased.
        if "email" in self.fields:  # absent on the view-only page
            self.fields["email"].required = True

    def clean(self):
        data = super().clean()
        if data.get("expires_at") and data.get("reason") != Suppression.Reason.SOFT_BOUNCE:
            self.add_error("expires_at", "Only soft-bounce suppressions can end.")
        return data


@admin.register(Suppression)
class SuppressionAdmin(IndexedSearchMixin, NoEditMixin, BigTableMixin, admin.ModelAdmin):
    """Suppressions are sticky: staff add them, and lift only non-objections, with a reason."""

    form = SuppressionAddForm
    list_display = ("email", "reason", "source", "expires_at", "created_at", "created_by")
    list_filter = ("reason",)
    search_fields = ("email",)
    search_email_fields = ("email",)
    search_help_text = "A whole email address."
    ordering = ("-pk",)
    list_select_related = ("created_by",)
    actions = ("lift",)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        suppression = suppression_add(
            email=data["email"],
            reason=data["reason"],
            source="admin",
            detail=data["detail"],
            expires_at=data["expires_at"],
            created_by=request.user,
        )
        adopt(obj, suppression)

    def has_lift_permission(self, request):
        # Lifting removes the row, so it needs the model's delete permission.
        return request.user.has_perm("crm.delete_suppression")

    @admin.action(
        description="Lift selected suppressions (with a reason; never objections)",
        permissions=["lift"],
    )
    def lift(self, request, queryset):
        """Ask for the reason on an intermediate page, then lift each with it."""
        form = SuppressionLiftForm(request.POST if "lift_reason" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Lift suppressions?",
                "suppressions": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/crm/suppression/lift.html", context)
        lifted = 0
        for suppression in queryset:
            try:
                suppression_lift(
                    suppression=suppression,
                    lifted_by=request.user,
                    reason=form.cleaned_data["lift_reason"],
                )
            except ValidationError as error:
                self.message_user(request, f"{suppression}: {error.messages[0]}", messages.ERROR)
            else:
                lifted += 1
        if lifted:
            self.message_user(request, f"Lifted {lifted} suppression(s).", messages.SUCCESS)
        return None


class SuppressionLiftForm(forms.Form):
    lift_reason = forms.CharField(
        label="Reason",
        min_length=MIN_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the suppression was wrong or no longer applies. Kept with the record.",
    )


@admin.register(SuppressionLift)
class SuppressionLiftAdmin(ReadOnlyMixin, BigTableMixin, admin.ModelAdmin):
    """Every lifted suppression: append-only proof, keyed by the address's hash."""

    list_display = ("lifted_at", "reason", "via", "lifted_by", "note", "suppressed_at")
    list_filter = ("via", "reason")
    search_fields = ("=email_hash",)
    search_help_text = "Search by the full email address."
    ordering = ("-lifted_at", "-pk")
    list_select_related = ("lifted_by",)

    def get_search_results(self, request, queryset, search_term):
        # Rows hold the keyed hash, never the address: hash what staff typed.
        if "@" in search_term:
            return queryset.filter(email_hash=email_hash(search_term)), False
        return super().get_search_results(request, queryset, search_term)
