"""Admin for API keys: create (the key is shown once), rename, set origins, revoke.

Registered when crm/admin/__init__.py imports this module.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from crm.models import ApiKey
from crm.services import api_key_create, api_key_revoke
from crm.services.api_keys import api_key_origins_normalise


class OriginsField(forms.CharField):
    """Allowed origins edited as one per line, stored as a JSON list."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        lines = (value or "").splitlines()
        try:
            return api_key_origins_normalise(lines)
        except ValidationError as error:  # keyed by the model field; the form wants its messages
            raise ValidationError(error.messages) from None


class ApiKeyForm(forms.ModelForm):
    allowed_origins = OriginsField(
        required=False,
        help_text="Browser keys only: one site per line, e.g. https://www.example.com.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "kind", "allowed_origins", "rate_limit_per_minute")

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind", self.instance.kind)
        origins = cleaned.get("allowed_origins")
        if kind == ApiKey.Kind.BROWSER and origins == []:  # None: the field had its own error
            self.add_error("allowed_origins", "A browser key needs at least one allowed origin.")
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "kind",
        "display_prefix",
        "is_active",
        "rate_limit_per_minute",
        "last_used_at",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix")
    ordering = ("-created_at",)
    list_select_related = ("created_by",)
    readonly_fields = (
        "display_prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "kind", "allowed_origins", "rate_limit_per_minute")
        return (
            "name",
            "kind",
            "display_prefix",
            "allowed_origins",
            "rate_limit_per_minute",
            *self.readonly_fields[1:],
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # A key's kind is what it was issued as; a different kind is a new key.
        return ("kind", *self.readonly_fields)

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: activities name the key that recorded them (source "api:<prefix>").
        return False

    @admin.display(description="Key", ordering="prefix")
    def display_prefix(self, obj):
        return obj.display_prefix

    @admin.display(description="Active", boolean=True, ordering="revoked_at")
    def is_active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if change:
            # Name, origins and rate limit are plain settings with no service behind them.
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = api_key_create(
            name=data["name"],
            kind=data["kind"],
            allowed_origins=data["allowed_origins"],
            rate_limit_per_minute=data["rate_limit_per_minute"],
            created_by=request.user,
        )
        _adopt(obj, created.api_key)
        self.message_user(
            request,
            f"Copy this key now; it is not shown again: {created.key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys (for good)", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


def _adopt(obj: ApiKey, saved: ApiKey) -> None:
    """Make the admin's unsaved object stand for the row the service saved."""
    for model_field in saved._meta.concrete_fields:
        setattr(obj, model_field.attname, getattr(saved, model_field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db
