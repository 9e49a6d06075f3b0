"""/api/v1/reports/sequences/: each sequence's funnel, attribution and holdout as JSON.

For BI tools; server keys only; read from the aggregates like the admin pages.
?since=YYYY-MM-DD&until=YYYY-MM-DD limit the days counted (both included).
"""

from django.conf import settings
from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.permissions import IsServerKey
from crm.api.serializers import ApiErrorSerializer
from sequences.models import Sequence
from sequences.reports.selectors import Period, sequence_results, sequences_overview


class PeriodSerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day counted (YYYY-MM-DD).")
    until = serializers.DateField(required=False, help_text="Last day counted (YYYY-MM-DD).")


class LiftSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="significant, not yet significant, or no holdout data yet."
    )
    is_significant = serializers.BooleanField()
    difference = serializers.FloatField(
        required=False, help_text="Mailed minus held-out conversion rate."
    )
    low = serializers.FloatField(required=False, help_text="95% interval, lower end.")
    high = serializers.FloatField(required=False, help_text="95% interval, upper end.")
    relative = serializers.FloatField(required=False, allow_null=True)
    p_value = serializers.FloatField(required=False)


class RevenueLiftSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="significant, not yet significant, no revenue yet, or no holdout data yet."
    )
    is_significant = serializers.BooleanField()
    difference = serializers.FloatField(
        required=False, help_text="Mailed minus held-out revenue per contact (currency)."
    )
    low = serializers.FloatField(required=False, help_text="95% Welch interval, lower end.")
    high = serializers.FloatField(required=False, help_text="95% Welch interval, upper end.")
    p_value = serializers.FloatField(required=False)


class GroupSerializer(serializers.Serializer):
    contacts = serializers.IntegerField()
    converted = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)
    revenue = serializers.FloatField()
    revenue_per_contact = serializers.FloatField(allow_null=True)


class HoldoutSerializer(serializers.Serializer):
    percent = serializers.IntegerField()
    mailed = GroupSerializer()
    holdout = GroupSerializer()
    lift = LiftSerializer(help_text="Conversion rate, mailed minus held out (Newcombe).")
    revenue_lift = RevenueLiftSerializer(
        help_text="Revenue per contact, mailed minus held out (Welch)."
    )


class IncrementalSerializer(serializers.Serializer):
    conversions = serializers.FloatField(allow_null=True)
    revenue = serializers.FloatField(allow_null=True)


class SequenceSummarySerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    topic = serializers.CharField()
    status = serializers.CharField()
    enrolled = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField(help_text="Human opens: each message once.")
    machine_opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    converted = serializers.IntegerField(help_text="Mailed enrollments that reached the goal.")
    attributed_conversions = serializers.IntegerField()
    attributed_revenue = serializers.FloatField()
    incremental = IncrementalSerializer()
    holdout = HoldoutSerializer()
    handoffs = serializers.IntegerField()
    handoffs_accepted = serializers.IntegerField()
    deals_opened = serializers.IntegerField()
    deals_won = serializers.IntegerField()
    deals_won_amount = serializers.FloatField()


class SequenceListSerializer(serializers.Serializer):
    currency = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    results = SequenceSummarySerializer(many=True)


class StageSerializer(serializers.Serializer):
    stage = serializers.CharField()
    count = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    amount = serializers.FloatField(required=False)


class VariantSerializer(serializers.Serializer):
    variant = serializers.CharField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    click_rate = serializers.FloatField(allow_null=True)
    attributed_revenue = serializers.FloatField()


class StepSerializer(serializers.Serializer):
    step = serializers.CharField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    machine_opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    click_rate = serializers.FloatField(allow_null=True)
    kept_from_previous = serializers.FloatField(allow_null=True)
    exits_here = serializers.IntegerField()
    attributed_conversions = serializers.IntegerField()
    attributed_revenue = serializers.FloatField()
    repeat_orders = serializers.IntegerField()
    handoffs = serializers.IntegerField()
    handoffs_accepted = serializers.IntegerField()
    handoffs_recycled = serializers.IntegerField()
    handoffs_rejected = serializers.IntegerField()
    variants = VariantSerializer(many=True)
    variants_p_value = serializers.FloatField(allow_null=True)
    variants_significant = serializers.BooleanField()


class ExitSerializer(serializers.Serializer):
    state = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    step = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class TouchSerializer(serializers.Serializer):
    conversions = serializers.IntegerField()
    revenue = serializers.FloatField()
    window_days = serializers.IntegerField()
    opens_count = serializers.BooleanField()
    open_window_days = serializers.IntegerField()


class AttributionSerializer(serializers.Serializer):
    touch = TouchSerializer()
    incremental = IncrementalSerializer()


class SalesSerializer(serializers.Serializer):
    handoffs = serializers.IntegerField()
    handoffs_accepted = serializers.IntegerField()
    handoffs_recycled = serializers.IntegerField()
    handoffs_rejected = serializers.IntegerField()
    deals_opened = serializers.IntegerField()
    deals_opened_amount = serializers.FloatField()
    deals_won = serializers.IntegerField()
    deals_won_amount = serializers.FloatField()


class SequenceReportSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    funnel = StageSerializer(many=True)
    steps = StepSerializer(many=True)
    exits = ExitSerializer(many=True)
    attribution = AttributionSerializer()
    holdout = HoldoutSerializer()
    sales = SalesSerializer()


PERIOD_PARAMETERS = [
    OpenApiParameter(
        "since", OpenApiTypes.DATE, description="First day counted (UTC), YYYY-MM-DD."
    ),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATE,
        description="Last day counted (UTC), YYYY-MM-DD. Before `since`: an empty period.",
    ),
]
BAD_PERIOD = OpenApiResponse(ApiErrorSerializer, description="since or until is not a date.")


def _period(request) -> Period:
    serializer = PeriodSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return Period(**serializer.validated_data)


class SequenceReportsView(APIView):
    """Every sequence's results: funnel totals, attribution both ways, holdout lift."""

    permission_classes = [IsServerKey]

    @extend_schema(
        operation_id="reports_sequences_list",
        summary="Results of every sequence",
        parameters=PERIOD_PARAMETERS,
        responses={200: SequenceListSerializer, 400: BAD_PERIOD},
    )
    def get(self, request):
        period = _period(request)
        lines = sequences_overview(period=period)
        for line in lines:
            line.pop("pk", None)
        data = {
            "currency": settings.REPORT_CURRENCY,
            "since": period.since,
            "until": period.until,
            "results": lines,
        }
        return Response(SequenceListSerializer(data).data)


class SequenceReportView(APIView):
    """One sequence's results: funnel, steps, variants, exits, attribution, holdout, sales."""

    permission_classes = [IsServerKey]

    @extend_schema(
        operation_id="reports_sequences_retrieve",
        summary="Results of one sequence",
        parameters=PERIOD_PARAMETERS,
        responses={200: SequenceReportSerializer, 400: BAD_PERIOD},
    )
    def get(self, request, key: str):
        period = _period(request)
        sequence = Sequence.objects.filter(key=key).first()
        if sequence is None:
            raise Http404(f"No sequence {key!r}.")
        results = sequence_results(sequence=sequence, period=period)
        data = {
            **results,
            "key": sequence.key,
            "name": sequence.name,
            "since": period.since,
            "until": period.until,
        }
        return Response(SequenceReportSerializer(data).data)


app_name = "reports_api"
urlpatterns = [
    path("reports/sequences/", SequenceReportsView.as_view(), name="sequence-report-list"),
    path(
        "reports/sequences/<slug:key>/",
        SequenceReportView.as_view(),
        name="sequence-report-detail",
    ),
]
