"""Segments over the API: the list, and each segment's current members (cursor-paginated).

Mounted in crm/api/urls.py:

    path("segments/", SegmentListView.as_view(), name="segment-list"),
    path("segments/<slug:key>/members/", SegmentMembersView.as_view(), name="segment-members"),
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from crm.api.pagination import ApiCursorPagination
from crm.api.permissions import IsServerKey
from crm.api.schema import ApiAutoSchema
from crm.api.serializers import ContactSerializer
from crm.models import Segment
from crm.segment_selectors import segment_members


class SegmentSerializer(serializers.ModelSerializer):
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    definition = serializers.JSONField(
        read_only=True, help_text="The conditions, as described in docs/segments.md."
    )

    class Meta:
        model = Segment
        fields = (
            "key",
            "name",
            "description",
            "owner",
            "definition",
            "member_count",
            "last_evaluated_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SegmentApiView(generics.ListAPIView):
    permission_classes = [IsServerKey]
    pagination_class = ApiCursorPagination
    schema = ApiAutoSchema()


class SegmentListView(SegmentApiView):
    """Every segment, newest first, with its tracked member count."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer

    @extend_schema(operation_id="segments_list", summary="List segments")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SegmentMembersView(SegmentApiView):
    """A segment's current members, newest contact first (as GET /contacts/ shows them)."""

    serializer_class = ContactSerializer

    def get_queryset(self):
        segment = get_object_or_404(Segment, key=self.kwargs["key"])
        return segment_members(segment=segment).prefetch_related("tags")

    @extend_schema(
        operation_id="segments_members_list",
        summary="List a segment's members",
        description=(
            "The contacts currently in the segment, as tracked: people enter within "
            "seconds of the activity or change that qualifies them, and time-based "
            "conditions are re-checked every 15 minutes."
        ),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
