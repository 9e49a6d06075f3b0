"""The activity log and the stage history: read-only, written only by services."""

from django.contrib import admin

from crm.admin.base import BigTableMixin, ReadOnlyMixin
from crm.admin.filters import ActivityKindFilter
from crm.admin.search import IndexedSearchMixin
from crm.models import Activity, LifecycleStageChange


@admin.register(Activity)
class ActivityAdmin(IndexedSearchMixin, ReadOnlyMixin, BigTableMixin, admin.ModelAdmin):
    list_display = ("kind", "contact", "anonymous_id", "occurred_at", "source")
    list_filter = (ActivityKindFilter, "occurred_at")
    # Exact matches only: a substring search over millions of rows cannot use an index.
    search_fields = ("=kind", "=contact__email", "=anonymous_id")
    search_contact_field = "contact"
    search_exact_fields = ("kind", "anonymous_id")
    search_help_text = "A contact's whole email address, a kind or a visitor id, exactly."
    # Newest recorded first on the primary key index; occurred_at has no index of its own.
    ordering = ("-pk",)
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # The list never shows the properties JSON; the detail page still loads it.
        return super().get_paginator(
            request, queryset.defer("properties"), per_page, orphans, allow_empty_first_page
        )


@admin.register(LifecycleStageChange)
class LifecycleStageChangeAdmin(IndexedSearchMixin, ReadOnlyMixin, BigTableMixin, admin.ModelAdmin):
    list_display = ("contact", "from_stage", "to_stage", "source", "changed_by", "changed_at")
    list_filter = ("to_stage", "from_stage", "changed_at")
    search_fields = ("=contact__email",)
    search_contact_field = "contact"
    search_help_text = "A contact's whole email address."
    ordering = ("-pk",)
    list_select_related = ("contact", "from_stage", "to_stage", "changed_by")
    raw_id_fields = ("contact",)
