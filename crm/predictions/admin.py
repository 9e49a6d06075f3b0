"""Predictions in the admin: runs with the calibration chart, predictions, the contact panel."""

import json
from functools import partial
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django_q.tasks import async_task

from crm import admin_hooks
from crm.admin.base import ReadOnlyMixin
from crm.charts import Series, bar_chart, csv_export_or_none, data_table, decimal
from crm.conditions.widget import ConditionBuilderWidget
from crm.predictions.insights import insights_report, segment_definition_for
from crm.predictions.models import (
    ContactPrediction,
    ContactSendTime,
    MilestoneRule,
    MissedMilestone,
    PredictionRun,
)
from crm.predictions.selectors import prediction_get, prediction_run_latest
from crm.predictions.send_times import best_send_hour
from crm.segments.catalog import ACTIVITY_MODE

CONVERSION_SUGGESTIONS = ("order_placed", "demo_requested", "signed_up", "form_submitted")
CALIBRATION_TASK = "crm.predictions.tasks.calibrate_predictions_task"


@admin.register(PredictionRun)
class PredictionRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("started_at", "kind", "status", "customers", "cutoff_at", "error")
    list_filter = ("kind", "status")
    search_fields = ("reason",)
    ordering = ("-started_at", "-pk")
    list_select_related = ()
    date_hierarchy = "started_at"

    @admin.display(description="Calibration error (total)")
    def error(self, run: PredictionRun) -> str:
        value = (run.results or {}).get("total_error_percent")
        return "—" if value is None else f"{value:+.1f}%"

    def get_urls(self):
        name = f"{self.model._meta.app_label}_{self.model._meta.model_name}"
        return [
            path(
                "insights/",
                self.admin_site.admin_view(self.insights_view),
                name=f"{name}_insights",
            ),
            path(
                "calibration/",
                self.admin_site.admin_view(self.calibration_view),
                name=f"{name}_calibration",
            ),
            *super().get_urls(),
        ]

    def insights_view(self, request: HttpRequest):
        """Which behaviours go with a conversion: lift, support, interval, corrected q."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Behaviour insights: what goes with converting",
            "opts": self.model._meta,
            "conversion_kinds": CONVERSION_SUGGESTIONS,
            **insights_view_context(request),
        }
        return TemplateResponse(request, "admin/predictions/insights.html", context)

    def calibration_view(self, request: HttpRequest):
        """The latest holdout check as a chart of predicted vs actual purchases."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            # Fitting takes seconds to minutes at scale: a worker does it.
            transaction.on_commit(partial(async_task, CALIBRATION_TASK))
            messages.info(request, "A calibration check was queued; reload in a minute.")
            return HttpResponseRedirect(request.path)
        run = prediction_run_latest(kind=PredictionRun.Kind.CALIBRATION)
        chart = calibration_chart(run) if run is not None else None
        charts = [chart] if chart is not None else []
        csv = csv_export_or_none(request, charts)
        if csv is not None:
            return csv
        context = {
            **self.admin_site.each_context(request),
            "title": "Calibration: predicted vs actual purchases",
            "opts": self.model._meta,
            "run": run,
            "chart": chart,
            "history": PredictionRun.objects.filter(
                kind=PredictionRun.Kind.CALIBRATION, status=PredictionRun.Status.OK
            )[:10],
        }
        return TemplateResponse(request, "admin/predictions/calibration.html", context)


def insights_view_context(request: HttpRequest) -> dict:
    """Parse the report's form (conversion kind, window) and run the report."""
    conversion = request.GET.get("conversion", "").strip()
    try:
        window = int(request.GET.get("window", "30"))
    except ValueError:
        window = 30
    window = min(max(window, 1), 365)
    report, error = None, ""
    if conversion:
        if not slug_re.match(conversion):
            error = "Name an activity kind such as order_placed."
        else:
            report = insights_report(conversion_kind=conversion, window_days=window)
    rows = []
    for insight in report.insights if report else ():
        definition = segment_definition_for(insight.kind, window)
        query = urlencode(
            {
                "name": f"Did {insight.kind} in the last {window} days",
                "definition": json.dumps(definition),
            }
        )
        rows.append((insight, f"{reverse('admin:crm_segment_add')}?{query}"))
    return {"conversion": conversion, "window": window, "report": report, "rows": rows,
            "error": error}  # fmt: skip


def calibration_chart(run: PredictionRun):
    """Mean predicted and actual purchases per group of past repeat orders."""
    groups = (run.results or {}).get("groups", [])
    if not groups:
        return None
    return bar_chart(
        key="calibration",
        title=f"Purchases in the {run.holdout_days} days after {run.cutoff_at:%Y-%m-%d}",
        description="Per contact, grouped by repeat orders before the cut-off.",
        series=[
            Series("Predicted", [(g["repeat_orders"], g["predicted"]) for g in groups]),
            Series("Actual", [(g["repeat_orders"], g["actual"]) for g in groups]),
        ],
        x_label="Repeat orders before the cut-off",
        value_format=decimal(2),
    )


@admin.register(ContactPrediction)
class ContactPredictionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "contact",
        "churn_risk_shown",
        "expected_purchases_90d",
        "next_order_on",
        "predicted_value_12m",
        "orders",
        "last_order_at",
    )
    list_filter = ("run__status",)
    list_select_related = ("contact",)
    raw_id_fields = ("contact", "run")
    search_fields = ("contact__email",)
    ordering = ("-value_percentile",)
    show_full_result_count = False

    @admin.display(description="Churn risk", ordering="churn_risk")
    def churn_risk_shown(self, prediction: ContactPrediction) -> str:
        percent = prediction.churn_risk_percent
        return "—" if percent is None else f"{percent}%"


def render_contact_predictions(request: HttpRequest, contact) -> str:
    """The contact's purchase predictions with their inputs, or why there are none."""
    if not request.user.has_perm("predictions.view_contactprediction"):
        return ""
    prediction = prediction_get(contact_id=contact.pk)
    if prediction is None:
        return ""
    return render_to_string(
        "admin/predictions/contact_panel.html",
        {
            "prediction": prediction,
            "calibration_url": reverse("admin:predictions_predictionrun_calibration"),
        },
        request=request,
    )


admin_hooks.register_contact_panel("Purchase predictions", render_contact_predictions)


def render_contact_send_time(request: HttpRequest, contact) -> str:
    """The contact's best send hour and whether it is their own or the audience's."""
    if not request.user.has_perm("predictions.view_contactprediction"):
        return ""
    best = best_send_hour(contact=contact)
    zone = contact.time_zone or "the site's time zone"
    if best.source == ContactSendTime.Source.CONTACT:
        source = f"from their own {best.events} opens and clicks"
    elif best.source == ContactSendTime.Source.AUDIENCE:
        source = "the audience's: too few opens and clicks of their own"
    else:
        source = "the default: nobody has opened an email yet"
    return format_html(
        '<p class="send-time-panel"><strong>{}:00</strong> in {} ({}).</p>',
        f"{best.hour:02d}",
        zone,
        source,
    )


admin_hooks.register_contact_panel("Best send time", render_contact_send_time)


@admin.register(MilestoneRule)
class MilestoneRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "rule_text", "creates_task", "is_active", "misses_link")
    list_filter = ("is_active", "creates_task")
    search_fields = ("name", "key")
    ordering = ("name",)
    list_select_related = ()
    raw_id_fields = ("task_owner",)
    prepopulated_fields = {"key": ("name",)}

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Y's and X's conditions are over the activity, in the one condition language.
        widgets = {
            **kwargs.pop("widgets", {}),
            "start_conditions": ConditionBuilderWidget(mode=ACTIVITY_MODE),
            "expected_conditions": ConditionBuilderWidget(mode=ACTIVITY_MODE),
        }
        return super().get_form(request, obj, change=change, widgets=widgets, **kwargs)

    @admin.display(description="Rule")
    def rule_text(self, rule: MilestoneRule) -> str:
        return rule.description

    @admin.display(description="Missed")
    def misses_link(self, rule: MilestoneRule) -> str:
        url = reverse("admin:predictions_missedmilestone_changelist")
        return format_html('<a href="{}?rule__id__exact={}">list</a>', url, rule.pk)

    def get_changeform_initial_data(self, request):
        # A new rule watches from now on: it does not flag everyone in the history.
        return {"watch_from": timezone.now(), **super().get_changeform_initial_data(request)}


@admin.register(MissedMilestone)
class MissedMilestoneAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("contact", "rule", "started_at", "due_at", "detected_at", "task")
    list_filter = ("rule",)
    list_select_related = ("contact", "rule", "task")
    raw_id_fields = ("contact", "task")
    search_fields = ("contact__email",)
    ordering = ("-detected_at", "-pk")
    show_full_result_count = False


# --- The customer-success home: who missed a milestone lately ------------------------------

HOME_MISSES = 20


def render_missed_milestones(request: HttpRequest):
    """The latest contacts who missed a milestone, linked to their contact page."""
    misses = list(
        MissedMilestone.objects.select_related("contact", "rule").order_by("-detected_at", "-pk")[
            :HOME_MISSES
        ]
    )
    return data_table(
        key="missed-milestones",
        title=f"Missed milestones (latest {HOME_MISSES})",
        columns=("Contact", "Milestone missed", "Due", "Noticed"),
        rows=[
            (
                str(miss.contact),
                miss.rule.description,
                miss.due_at.date(),
                miss.detected_at.date(),
            )
            for miss in misses
        ],
        row_links=[reverse("admin:crm_contact_change", args=[miss.contact_id]) for miss in misses],
        empty_text="Nobody missed a milestone.",
    )


admin_hooks.register_dashboard_panel(
    "missed-milestones",
    "Missed milestones",
    render_missed_milestones,
    roles=[admin_hooks.SUCCESS],
    permission="predictions.view_missedmilestone",
    order=20,
)
