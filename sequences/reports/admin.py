"""Admin pages of the revenue view: the sequences overview and each sequence's results.

"Sequence results" (a read-only proxy of Sequence) lists every sequence with its
figures and the cross-sequence reports; opening one shows its funnel, steps, variants,
exits, both attributions and the holdout lift. Every staff role may view it
(revenue.view_sequenceresult, migration 0002). Every figure is read from the
aggregates (selectors.py).
"""

import datetime

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date

from crm.charts import csv_export_or_none
from crm.models import Segment
from sequences.models import SequenceVersion
from sequences.reports import charts
from sequences.reports.best_time import best_time_charts
from sequences.reports.models import SequenceResult
from sequences.reports.selectors import (
    Period,
    engagement_by_topic,
    handoff_feedback,
    repeat_purchases,
    revenue_by_day,
    segment_time_to_convert,
    sequence_results,
    sequences_overview,
)

DEFAULT_DAYS = 90
#: Segments offered in the results page's filter (by name).
SEGMENTS = 500


def period_from(request) -> Period:
    """?since=YYYY-MM-DD&until=YYYY-MM-DD, or ?days=N back from today (default 90 days)."""
    since, until = (parse_date(request.GET.get(name) or "") for name in ("since", "until"))
    if since or until:
        return Period(since=since, until=until)
    try:
        days = max(int(request.GET.get("days", DEFAULT_DAYS)), 1)
    except ValueError:
        days = DEFAULT_DAYS
    today = timezone.now().date()  # report days are UTC days
    return Period(since=today - datetime.timedelta(days=days - 1), until=today)


@admin.register(SequenceResult)
class SequenceResultAdmin(admin.ModelAdmin):
    """Read-only: the results of sequences, for everyone who may view sequences."""

    list_display = ("name", "key", "status")
    ordering = ("name",)

    def _may_view(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self._may_view(request):
            raise PermissionDenied
        period = period_from(request)
        lines = sequences_overview(period=period)
        change = "admin:revenue_sequenceresult_change"
        links = [reverse(change, args=[line["pk"]]) for line in lines]
        currency = settings.REPORT_CURRENCY
        page_charts = [
            charts.revenue_chart(revenue_by_day(period=period), currency),
            charts.overview_table(lines, links, currency),
            charts.segment_table(segment_time_to_convert()),
            charts.repeat_table(repeat_purchases(period=period), currency),
            charts.topic_chart(engagement_by_topic(period=period)),
            charts.feedback_table(handoff_feedback(period=period)),
        ]
        csv = csv_export_or_none(request, page_charts)
        if csv is not None:
            return csv
        context = {
            **self.admin_site.each_context(request),
            "title": "Sequence results",
            "opts": self.model._meta,
            "charts": page_charts,
            "period": period,
            "currency": currency,
        }
        return TemplateResponse(request, "admin/revenue/overview.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Read-only: nothing to post here.
        if not self._may_view(request) or request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        sequence = SequenceResult.objects.filter(pk=object_id).first()
        if sequence is None:
            raise Http404("No such sequence.")
        period = period_from(request)
        versions = list(SequenceVersion.objects.filter(sequence=sequence).order_by("-number"))
        version_pk = _version(request, versions)
        segments = list(Segment.objects.order_by("name").only("pk", "key", "name")[:SEGMENTS])
        segment = _segment(request, segments)
        results = sequence_results(
            sequence=sequence, period=period, version_pk=version_pk, segment=segment
        )
        page_charts = charts.results_charts(results)
        page_charts.append(
            charts.feedback_table(handoff_feedback(period=period, sequence=sequence))
        )
        page_charts += best_time_charts(  # docs/predictions.md, "Best send time"
            sequence=sequence, since=period.since, until=period.until, version_pk=version_pk
        )
        csv = csv_export_or_none(request, page_charts)
        if csv is not None:
            return csv
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results: {sequence.name}",
            "opts": self.model._meta,
            "original": sequence,
            "charts": page_charts,
            "results": results,
            "period": period,
            "versions": versions,
            "version_pk": version_pk,
            "segments": segments,
            "segment": segment,
            "sequence_url": reverse("admin:sequences_sequence_change", args=[sequence.pk]),
            "json_url": f"/api/v1/reports/sequences/{sequence.key}/",
        }
        return TemplateResponse(request, "admin/revenue/results.html", context)


def _version(request, versions: list[SequenceVersion]) -> int | None:
    try:
        wanted = int(request.GET.get("version") or 0)
    except ValueError:
        return None
    return wanted if any(version.pk == wanted for version in versions) else None


def _segment(request, segments: list[Segment]) -> Segment | None:
    """?segment=<pk>: one of the offered segments, or None (everyone)."""
    wanted = request.GET.get("segment") or ""
    return next((segment for segment in segments if str(segment.pk) == wanted), None)
