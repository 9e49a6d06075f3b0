"""Changelist filters that need more than a field's values: consent, suppression, kinds."""

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet

from crm.models import Activity, ConsentTopic, Segment, SegmentMembership
from crm.selectors import consent_latest_granted, contact_is_suppressed_expression


class ConsentFilter(admin.SimpleListFilter):
    """Contacts by their current consent for one topic: granted, withdrawn or never asked."""

    title = "consent"
    parameter_name = "consent"
    states = {"granted": "granted", "withdrawn": "withdrawn", "never": "never asked"}

    def lookups(self, request, model_admin):
        return [
            (f"{topic.key}:{state}", f"{topic.name}: {label}")
            for topic in ConsentTopic.objects.order_by("name")
            for state, label in self.states.items()
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet | None:
        if not self.value():
            return None
        key, _, state = self.value().partition(":")
        topic = ConsentTopic.objects.filter(key=key).first()
        if topic is None or state not in self.states:
            return queryset.none()
        latest = queryset.alias(latest_consent=consent_latest_granted(topic))
        if state == "never":
            return latest.filter(latest_consent__isnull=True)
        return latest.filter(latest_consent=(state == "granted"))


class SuppressedFilter(admin.SimpleListFilter):
    """Contacts whose address is actively suppressed, or not."""

    title = "suppressed"
    parameter_name = "suppressed"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet | None:
        if self.value() not in ("yes", "no"):
            return None
        suppressed = queryset.alias(is_suppressed=contact_is_suppressed_expression())
        return suppressed.filter(is_suppressed=(self.value() == "yes"))


class ActivityKindFilter(admin.SimpleListFilter):
    """The documented kinds, listed without a DISTINCT over millions of activities."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return Activity.Kind.choices

    def queryset(self, request, queryset: QuerySet) -> QuerySet | None:
        return queryset.filter(kind=self.value()) if self.value() else None


class SegmentFilter(admin.SimpleListFilter):
    """Contacts who are current members of a segment (tracked membership, by index)."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request, model_admin):
        return list(Segment.objects.order_by("name").values_list("key", "name"))

    def queryset(self, request, queryset: QuerySet) -> QuerySet | None:
        if not self.value():
            return None
        members = SegmentMembership.objects.filter(
            segment__key=self.value(), exited_at__isnull=True, contact=OuterRef("pk")
        )
        return queryset.filter(Exists(members))
