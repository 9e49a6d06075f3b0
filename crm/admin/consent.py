"""Consent topics, wording versions, the consent ledger and the suppression list."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from crm.admin.base import BigTableMixin, NoEditMixin, adopt
from crm.admin.search import IndexedSearchMixin
from crm.models import ConsentEntry, ConsentText, ConsentTopic, Suppression
from crm.services import (
    consent_grant,
    consent_text_publish,
    consent_withdraw,
    suppression_add,
    suppression_lift,
)


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
    """Suppressions are sticky: staff add them, and lift only ones added in error."""

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

    @admin.action(description="Lift selected suppressions (added in error)", permissions=["lift"])
    def lift(self, request, queryset):
        lifted = 0
        for suppression in queryset:
            try:
                suppression_lift(suppression=suppression, lifted_by=request.user)
            except ValidationError as error:
                self.message_user(request, f"{suppression}: {error.messages[0]}", messages.ERROR)
            else:
                lifted += 1
        if lifted:
            self.message_user(request, f"Lifted {lifted} suppression(s).", messages.SUCCESS)
