"""Query-string filters for the list endpoints (django-filter)."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from crm.models import Company, Contact, Deal, DealStage


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A related object's id (documented as an integer, not a float)."""


@extend_schema_field(OpenApiTypes.INT)
class ScoreFilter(django_filters.NumberFilter):
    pass


class ContactFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(help_text="Exact address, any case.")
    external_id = django_filters.CharFilter()
    lifecycle_stage = django_filters.CharFilter(
        field_name="lifecycle_stage_id", help_text="A stage key such as engaged_lead."
    )
    owner = IdFilter(field_name="owner_id", help_text="A staff user's id.")
    company = IdFilter(field_name="company_id")
    score_min = ScoreFilter(field_name="lead_score", lookup_expr="gte")
    score_max = ScoreFilter(field_name="lead_score", lookup_expr="lte")
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="ISO 8601, e.g. 2025-01-31T00:00Z."
    )

    class Meta:
        model = Contact
        fields = ()


class CompanyFilter(django_filters.FilterSet):
    domain = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name.")
    country = django_filters.CharFilter()
    owner = IdFilter(field_name="owner_id")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Company
        fields = ()


class DealFilter(django_filters.FilterSet):
    stage = django_filters.CharFilter(field_name="stage__key", help_text="A deal stage key.")
    outcome = django_filters.ChoiceFilter(
        field_name="stage__outcome", choices=DealStage.Outcome.choices
    )
    owner = IdFilter(field_name="owner_id")
    contact = IdFilter(field_name="contact_id")
    company = IdFilter(field_name="company_id")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Deal
        fields = ()
