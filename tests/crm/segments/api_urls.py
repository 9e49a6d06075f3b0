"""The segment endpoints alone, mounted as config/urls.py mounts crm.api.urls."""

from django.urls import include, path

from crm.api.segments import SegmentListView, SegmentMembersView

segment_patterns = [
    path("segments/", SegmentListView.as_view(), name="segment-list"),
    path("segments/<slug:key>/members/", SegmentMembersView.as_view(), name="segment-members"),
]

urlpatterns = [path("api/v1/", include(segment_patterns))]
