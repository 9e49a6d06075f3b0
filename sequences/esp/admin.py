"""Admin for the webhook inbox, the circuit breaker and the deliverability report."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from sequences.esp.breaker import breaker_rates, breaker_resume
from sequences.esp.report import deliverability_by_day
from sequences.models import CircuitBreakerTrip, EspEvent

REPORT_DAYS = 30


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledgers written by the system: staff read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EspEvent)
class EspEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "esp",
        "event_type",
        "kind",
        "recipient",
        "outcome",
        "reason",
    )
    list_filter = ("outcome", "kind", "esp", "event_type")
    search_fields = ("recipient", "esp_message_id", "event_id")
    ordering = ("-occurred_at",)
    raw_id_fields = ("message",)
    show_full_result_count = False


@admin.register(CircuitBreakerTrip)
class CircuitBreakerTripAdmin(ReadOnlyAdmin):
    list_display = ("opened_at", "metric", "rate", "threshold", "sent", "resumed_at", "resumed_by")
    list_filter = ("metric",)
    search_fields = ("metric",)
    ordering = ("-opened_at",)
    actions = ["resume_marketing"]
    change_list_template = "admin/sequences/deliverability_trips.html"

    def has_resume_permission(self, request):
        return request.user.has_perm("sequences.change_circuitbreakertrip")

    @admin.action(description="Resume marketing sends (after review)", permissions=["resume"])
    def resume_marketing(self, request, queryset):
        resumed = sum(breaker_resume(trip=trip, user=request.user) for trip in queryset)
        self.message_user(request, f"Resumed {resumed} trip(s); marketing sends continue.")

    def get_urls(self):
        view = self.admin_site.admin_view(self.deliverability_view)
        return [
            path("deliverability/", view, name="sequences_deliverability"),
            *super().get_urls(),
        ]

    def deliverability_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        open_trip = CircuitBreakerTrip.objects.filter(resumed_at__isnull=True).first()
        if open_trip is not None:
            self.message_user(request, "Marketing sends are paused.", messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "title": "Deliverability",
            "opts": self.model._meta,
            "rows": deliverability_by_day(days=REPORT_DAYS),
            "days": REPORT_DAYS,
            "open_trip": open_trip,
            "rates": breaker_rates(now=timezone.now()),
        }
        return TemplateResponse(request, "admin/sequences/deliverability.html", context)
