"""Admin for the webhook inbox, the circuit breaker and the deliverability report."""

from anymail.signals import EventType
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from crm.admin.base import BigTableMixin
from crm.admin.search import IndexedSearchMixin
from crm.admin_hooks import register_report
from crm.charts import csv_export_or_none
from sequences.esp.breaker import breaker_rates, breaker_resume
from sequences.esp.classify import esp_slug
from sequences.esp.report import deliverability_by_day
from sequences.models import CircuitBreakerTrip, EspEvent

REPORT_DAYS = 30
#: The ESPs anymail receives tracking webhooks from, stored as esp_slug(esp_name).
ESP_CHOICES = tuple(
    (esp_slug(name), name)
    for name in (
        "Amazon SES",
        "Brevo",
        "MailerSend",
        "Mailgun",
        "Mailjet",
        "Mailtrap",
        "Mandrill",
        "Postal",
        "Postmark",
        "Resend",
        "SendGrid",
        "SendinBlue",
        "SparkPost",
        "Unisender Go",
    )
)


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter over a plain column from a fixed list: no SELECT DISTINCT over the inbox."""

    choices_list: tuple[tuple[str, str], ...] = ()

    def lookups(self, request, model_admin):
        return self.choices_list

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else None


class EspFilter(FixedChoicesFilter):
    title = "ESP"
    parameter_name = "esp"
    choices_list = ESP_CHOICES


class EventTypeFilter(FixedChoicesFilter):
    title = "event type"
    parameter_name = "event_type"
    choices_list = tuple(
        (value, value.replace("_", " "))
        for name, value in vars(EventType).items()
        if name.isupper() and isinstance(value, str)
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledgers written by the system: staff read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EspEvent)
class EspEventAdmin(IndexedSearchMixin, BigTableMixin, ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "esp",
        "event_type",
        "kind",
        "recipient",
        "outcome",
        "reason",
    )
    # Fields with choices only: a plain field's filter runs SELECT DISTINCT over the inbox.
    list_filter = ("outcome", "kind", EspFilter, EventTypeFilter)
    search_fields = ("recipient", "esp_message_id", "event_id")
    search_email_fields = ("recipient",)
    search_exact_fields = ("esp_message_id", "event_id")
    search_help_text = "A whole recipient address, the ESP's message id or event id, exactly."
    # Newest received first on the primary key index; occurred_at has no index of its own.
    ordering = ("-pk",)
    raw_id_fields = ("message",)


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
        # Imported here: admin_dashboard registers panels, this module only borrows a chart.
        from sequences.admin_dashboard import complaint_chart, daily_totals

        rows = deliverability_by_day(days=REPORT_DAYS)
        daily = daily_totals(rows, days=REPORT_DAYS)
        chart = complaint_chart(key="complaint-rate", rows=daily, days=REPORT_DAYS)
        csv = csv_export_or_none(request, [chart])
        if csv is not None:
            return csv
        open_trip = CircuitBreakerTrip.objects.filter(resumed_at__isnull=True).first()
        if open_trip is not None:
            self.message_user(request, "Marketing sends are paused.", messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "title": "Deliverability",
            "opts": self.model._meta,
            "rows": rows,
            "chart": chart,
            "days": REPORT_DAYS,
            "open_trip": open_trip,
            "rates": breaker_rates(now=timezone.now()),
        }
        return TemplateResponse(request, "admin/sequences/deliverability.html", context)


# Its own entry in the Reports menu (it used to hide under "Circuit breaker trips").
register_report(
    "Deliverability",
    "admin:sequences_deliverability",
    permission="sequences.view_circuitbreakertrip",
    order=10,
)
