"""Query-string filters for the list endpoints (django-filter).

Every list's FilterSet derives from ApiFilterSet, and every id filter is an IdFilter,
so a bad value is a 400 naming the parameter on every list, never a 500 from the
database (an id past 64 bits) nor silently ignored (an empty date).
"""

import datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from crm.models import Company, Contact, Deal, DealStage

#: Primary keys are 64-bit (BigAutoField): anything past this cannot name a row.
MAX_ID = 2**63 - 1
#: Scores are 32-bit integers in the database.
MIN_SCORE, MAX_SCORE = -(2**31), 2**31 - 1


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A related object's id: a positive 64-bit integer, or a 400."""

    field_class = IdField


class ScoreField(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", MIN_SCORE)
        kwargs.setdefault("max_value", MAX_SCORE)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "minimum": MIN_SCORE, "maximum": MAX_SCORE})
class ScoreFilter(django_filters.NumberFilter):
    field_class = ScoreField


class SinceField(IsoDateTimeField):
    def clean(self, value):
        moment = super().clean(value)
        if moment is None:
            return None
        # In UTC: PostgreSQL refuses offsets past ±15:59 that ISO 8601 text may carry.
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("This date is out of range.") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class SinceFilter(django_filters.IsoDateTimeFilter):
    """A lower bound on a timestamp, ISO 8601, compared in UTC."""

    field_class = SinceField


class ApiFilterSet(django_filters.FilterSet):
    """A FilterSet that refuses an unknown parameter, and an empty typed one
    (`?updated_since=`), with a 400.

    Django forms treat an empty value as "not given"; the schema says a date or a
    number, so the API says what is wrong instead of silently listing everything.
    """

    #: Parameters every list takes besides its filters (pagination, DRF's format).
    LIST_PARAMETERS = frozenset({"cursor", "page_size", "format"})

    def is_valid(self):
        valid = super().is_valid()
        # A misspelt filter (`?ownr=3`) would otherwise list everything without a word.
        known = set(self.filters) | self.LIST_PARAMETERS
        for name in sorted(set(self.data) - known):
            # Params, not formatting: django-filter applies `message % params` to the text.
            self.form.add_error(
                None,
                ValidationError(
                    "Unknown parameter %(name)r; this list takes: %(known)s.",
                    params={"name": name, "known": ", ".join(sorted(known))},
                ),
            )
            valid = False
        for name, filter_ in self.filters.items():
            if isinstance(filter_, django_filters.CharFilter) or name not in self.data:
                continue
            if any(value == "" for value in self.data.getlist(name)):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class ContactFilter(ApiFilterSet):
    email = django_filters.CharFilter(help_text="Exact address, any case.")
    external_id = django_filters.CharFilter()
    lifecycle_stage = django_filters.CharFilter(
        field_name="lifecycle_stage_id", help_text="A stage key such as engaged_lead."
    )
    owner = IdFilter(field_name="owner_id", help_text="A staff user's id.")
    company = IdFilter(field_name="company_id")
    score_min = ScoreFilter(field_name="lead_score", lookup_expr="gte")
    score_max = ScoreFilter(field_name="lead_score", lookup_expr="lte")
    updated_since = SinceFilter(
        field_name="updated_at", lookup_expr="gte", help_text="ISO 8601, e.g. 2025-01-31T00:00Z."
    )

    class Meta:
        model = Contact
        fields = ()


class CompanyFilter(ApiFilterSet):
    domain = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name.")
    country = django_filters.CharFilter()
    owner = IdFilter(field_name="owner_id")
    updated_since = SinceFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Company
        fields = ()


class DealFilter(ApiFilterSet):
    stage = django_filters.CharFilter(field_name="stage__key", help_text="A deal stage key.")
    outcome = django_filters.ChoiceFilter(
        field_name="stage__outcome", choices=DealStage.Outcome.choices
    )
    owner = IdFilter(field_name="owner_id")
    contact = IdFilter(field_name="contact_id")
    company = IdFilter(field_name="company_id")
    updated_since = SinceFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Deal
        fields = ()
