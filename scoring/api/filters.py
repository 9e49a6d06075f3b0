"""Query-string filters for the handoff list (django-filter)."""

import django_filters

from crm.api.filters import ApiFilterSet, IdFilter, SinceFilter
from scoring.models import Handoff


class HandoffFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Handoff.Status.choices)
    is_open = django_filters.BooleanFilter(method="filter_open", help_text="Only open handoffs.")
    owner = IdFilter(field_name="owner_id", help_text="A staff user's id.")
    contact = IdFilter(field_name="contact_id")
    rule = django_filters.CharFilter(field_name="rule__key", help_text="A handoff rule key.")
    created_since = SinceFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Handoff
        fields = ()

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        open_ = {"status__in": Handoff.OPEN_STATUSES}
        return queryset.filter(**open_) if value else queryset.exclude(**open_)
